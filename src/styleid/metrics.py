"""Retrieval metrics on rankings: pure functions, no I/O.

A ranking is a list of gallery indices, best first. A query whose person has no image in the
gallery counts as a miss for every recall and has AP 0 (it cannot be answered right), and
is counted in `n_queries_without_match`. Ties in scores are broken by gallery order (stable sort).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCORE_WEIGHTS = {1: 600.0, 5: 300.0, 10: 100.0}  # the competition's score = 600 R@1 + 300 R@5 + 100 R@10
BOOTSTRAP_RESAMPLES = 2000  # resamples of the test people for the 95% intervals
BOOTSTRAP_CHUNK = 100  # resamples drawn at once


def rank_by_scores(scores: np.ndarray) -> np.ndarray:
    """Gallery indices sorted by descending score, ties kept in gallery order."""
    return np.argsort(-np.asarray(scores), axis=1, kind="stable")


def relevance(rankings: np.ndarray, query_people: Sequence[str], gallery_people: Sequence[str]) -> np.ndarray:
    """Boolean matrix: relevance[q, r] is True when the r-th result of query q shows the same person.

    A negative id is FAISS's padding (an approximate index found fewer candidates): never relevant.
    """
    rankings = np.asarray(rankings)
    gallery = np.asarray(gallery_people, dtype=object)
    query = np.asarray(query_people, dtype=object)[:, None]
    real = rankings >= 0
    return (gallery[np.where(real, rankings, 0)] == query) & real


def recall_at_k(rel: np.ndarray, k: int) -> float:
    """Share of queries with at least one right person among their first k results."""
    if rel.shape[0] == 0:
        return 0.0
    return float(rel[:, :k].any(axis=1).mean())


def average_precision(rel_row: np.ndarray, n_relevant: int) -> float:
    if n_relevant == 0:
        return 0.0
    hits = np.cumsum(rel_row)
    precision = hits / np.arange(1, len(rel_row) + 1)
    return float((precision * rel_row).sum() / n_relevant)


def _n_relevant(query_people: Sequence[str], gallery_people: Sequence[str]) -> list[int]:
    """Each query's person's images in the whole gallery (what its AP divides by)."""
    counts: dict[str, int] = {}
    for person in gallery_people:
        counts[person] = counts.get(person, 0) + 1
    return [counts.get(p, 0) for p in query_people]


def _per_query_ap(rel: np.ndarray, n_relevant: Sequence[int]) -> np.ndarray:
    return np.array([average_precision(row, n) for row, n in zip(rel, n_relevant)], dtype=float)


def mean_average_precision(rel: np.ndarray, n_relevant: Sequence[int]) -> float:
    """mAP over the ranked lists; each AP divides by the person's images in the whole gallery."""
    if rel.shape[0] == 0:
        return 0.0
    return float(np.mean(_per_query_ap(rel, n_relevant)))


def score(recalls: dict[int, float]) -> float:
    return float(sum(w * recalls[k] for k, w in SCORE_WEIGHTS.items()))


def _per_query_score(rel: np.ndarray) -> np.ndarray:
    """Each query's share of the score: 600 if right at 1, 300 more if right within 5, 100 more within 10."""
    return sum(w * rel[:, :k].any(axis=1) for k, w in SCORE_WEIGHTS.items()).astype(float)


def _resample_people(values: dict[str, np.ndarray], query_people: Sequence[str], seed: int, resamples: int) -> dict[str, np.ndarray]:
    """Each per-query value's mean over `resamples` draws of the people with replacement (one person's queries go together)."""
    people = sorted(set(query_people))
    index = {p: i for i, p in enumerate(people)}
    owner = np.array([index[p] for p in query_people])
    counts = np.bincount(owner, minlength=len(people)).astype(float)
    sums = {name: np.bincount(owner, weights=v, minlength=len(people)) for name, v in values.items()}
    rng = np.random.default_rng([seed, 53])
    means: dict[str, list[np.ndarray]] = {name: [] for name in sums}
    for start in range(0, resamples, BOOTSTRAP_CHUNK):  # bounded memory for test sets of many people
        draws = rng.integers(0, len(people), size=(min(BOOTSTRAP_CHUNK, resamples - start), len(people)))
        weights = np.stack([np.bincount(row, minlength=len(people)) for row in draws]).astype(float)  # times each person is drawn
        n = weights @ counts
        for name, s in sums.items():
            means[name].append((weights @ s) / n)
    return {name: np.concatenate(v) for name, v in means.items()}


def bootstrap_intervals(rankings: np.ndarray, query_people: Sequence[str], gallery_people: Sequence[str], seed: int,
                        resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, float]:
    """Percentile bootstrap intervals for score and recall@1, resampling test *people* with replacement.

    People, not queries, are the unit: one person's queries are not independent draws, and a new
    set of people is what a rerun elsewhere (or another dataset) brings.
    """
    if not query_people:
        return {}
    rel = relevance(rankings, query_people, gallery_people)
    means = _resample_people({"score": _per_query_score(rel), "recall@1": rel[:, :1].any(axis=1).astype(float)},
                             query_people, seed, resamples)
    out = {}
    for name, digits in (("score", 3), ("recall@1", 6)):
        low, high = np.percentile(means[name], [2.5, 97.5])
        out[f"{name}_ci95_low"], out[f"{name}_ci95_high"] = round(float(low), digits), round(float(high), digits)
    return out


MEASURE_DIGITS = {"score": 3, "mAP": 6}  # the measures a gain can be taken in, and the decimals each is reported to


def per_query(measure: str, rankings: np.ndarray, query_people: Sequence[str], gallery_people: Sequence[str]) -> np.ndarray:
    """Each query's share of `measure`: "score" (600 / 300 / 100 for right at 1 / within 5 / within 10) or "mAP" (its AP)."""
    rel = relevance(rankings, query_people, gallery_people)
    if measure == "score":
        return _per_query_score(rel)
    return _per_query_ap(rel, _n_relevant(query_people, gallery_people))


def difference_interval(rankings_a: np.ndarray, rankings_b: np.ndarray, query_people: Sequence[str], gallery_people: Sequence[str],
                        seed: int, resamples: int = BOOTSTRAP_RESAMPLES, measure: str = "score") -> tuple[float, float]:
    """95% interval of measure(b) - measure(a) (score or mAP) for two rankings of the same queries: paired, the same people drawn for both."""
    if not query_people:
        return 0.0, 0.0
    gain = per_query(measure, rankings_b, query_people, gallery_people) - per_query(measure, rankings_a, query_people, gallery_people)
    low, high = np.percentile(_resample_people({"gain": gain}, query_people, seed, resamples)["gain"], [2.5, 97.5])
    digits = MEASURE_DIGITS[measure]
    return round(float(low), digits), round(float(high), digits)


def gains_beyond_noise(gain_low: float, gain_high: float, map_gain_low: float) -> bool:
    """The rule every `auto` switch decides by, on paired 95% intervals of a change's gain: the score gains beyond its noise,
    or mAP (which weighs where every right image ranks) gains beyond its noise while the score is not worse beyond its own."""
    return gain_low > 0 or (map_gain_low > 0 and gain_high >= 0)


def evaluate(rankings: np.ndarray, query_people: Sequence[str], gallery_people: Sequence[str], ks: Sequence[int] = (1, 5, 10)) -> dict:
    """recall@k, mAP and score for full or truncated rankings."""
    rankings = np.asarray(rankings)
    rel = relevance(rankings, query_people, gallery_people) if rankings.size else np.zeros((len(query_people), 0), bool)
    n_relevant = _n_relevant(query_people, gallery_people)
    recalls = {k: recall_at_k(rel, k) for k in sorted(set(ks) | set(SCORE_WEIGHTS))}
    out = {f"recall@{k}": round(v, 6) for k, v in recalls.items()}
    out["mAP"] = round(mean_average_precision(rel, n_relevant), 6)
    out["score"] = round(score(recalls), 3)
    out["n_queries"] = len(query_people)
    out["n_gallery"] = len(gallery_people)
    out["n_queries_without_match"] = int(sum(n == 0 for n in n_relevant))
    return out


def recall_curve(rankings: np.ndarray, query_people: Sequence[str], gallery_people: Sequence[str], max_k: int) -> list[float]:
    rel = relevance(rankings, query_people, gallery_people)
    return [recall_at_k(rel, k) for k in range(1, max_k + 1)]


def per_person_recall(rankings: np.ndarray, query_people: Sequence[str], gallery_people: Sequence[str], k: int = 1) -> list[tuple[str, int, float]]:
    """(person, n_queries, recall@k), worst first."""
    rel = relevance(rankings, query_people, gallery_people)[:, :k].any(axis=1)
    rows: dict[str, list[bool]] = {}
    for person, hit in zip(query_people, rel):
        rows.setdefault(person, []).append(bool(hit))
    table = [(p, len(h), float(np.mean(h))) for p, h in rows.items()]
    return sorted(table, key=lambda r: (r[2], r[0]))
