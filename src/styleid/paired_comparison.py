"""Compare two runs on the same test set: the score (or mAP) gain and its paired bootstrap interval.

Two runs' own intervals overlap long before their difference is noise: the same hard people pull
both scores down together. Resampling the people once for both rankings (paired) measures the gain
itself, which is what "B beats A" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from styleid import metrics
from styleid.artifacts import EMBEDDINGS, RETRIEVED
from styleid.errors import StyleidError
from styleid.fileio import read_json

MEASURE_FORMAT = {"score": ".1f", "mAP": ".3f"}  # how a measure's values are printed for people
QUERIES, GALLERY = EMBEDDINGS / "query.json", EMBEDDINGS / "gallery.json"  # relative to a run's root, as RETRIEVED


@dataclass
class Run:
    root: Path
    ids: np.ndarray  # (queries, top_k) gallery rows, -1 = none
    queries: list[tuple[str, str]]  # (image key, person), in row order
    gallery: list[tuple[str, str]]


@dataclass
class Comparison:
    base_value: float  # the measure's value for each run
    other_value: float
    gain: float  # measure(other) - measure(base)
    gain_low: float  # 95% paired bootstrap interval of the gain
    gain_high: float
    n_queries: int
    n_people: int
    measure: str = "score"
    better: int = 0  # queries whose own share of the measure rose in other
    worse: int = 0  # ... and fell: a gain within the noise is often many fixed and some broken
    first_fixed: int = 0  # queries whose first result is right in other and wrong in base
    first_broken: int = 0  # ... wrong in other and right in base

    @property
    def verdict(self) -> str:
        if self.gain_low > 0:
            return "better beyond the noise"
        if self.gain_high < 0:
            return "worse beyond the noise"
        return "within the noise"


def _keyed(entries: list[dict]) -> list[tuple[str, str]]:
    """(key, person) per image. The key is the image's name in its dataset; where two sources share a name, the file too."""
    names = [e["name"] for e in entries]
    unique = len(set(names)) == len(names)
    return [(e["name"] if unique else f"{e['name']}|{e['file']}", e["person"]) for e in entries]


def load_run(root: Path) -> Run:
    """A finished run (its retrieve and embed outputs), named by its project folder."""
    for rel in (RETRIEVED, QUERIES, GALLERY):
        if not (root / rel).is_file():
            raise StyleidError(f"{root / rel}: missing; run `dvc repro` in {root} first (or `dvc exp apply` the experiment)")
    try:
        ids = np.load(root / RETRIEVED)["ids"]
    except (OSError, ValueError, KeyError) as exc:
        raise StyleidError(f"{root / RETRIEVED}: unreadable ({exc}); rerun `dvc repro retrieve` in {root}") from None
    queries, gallery = _keyed(read_json(root / QUERIES)), _keyed(read_json(root / GALLERY))
    if ids.shape[0] != len(queries):
        raise StyleidError(f"{root / RETRIEVED}: {ids.shape[0]} rankings for {len(queries)} queries; rerun `dvc repro retrieve` in {root}")
    return Run(root, ids, queries, gallery)


def _keys(images: list[tuple[str, str]]) -> set[str]:
    return {key for key, _ in images}


def _same_people(base: Run, other: Run) -> None:
    """The same images belong to the same people in both runs, up to names (several sources tag names: s0:...)."""
    other_person = dict(other.queries + other.gallery)
    pairs = {(other_person[key], person) for key, person in base.queries + base.gallery}
    if len({o for o, _ in pairs}) != len(pairs) or len({b for _, b in pairs}) != len(pairs):
        raise StyleidError(f"{other.root}: its test images belong to other people than in {base.root}; compare runs of the same test set")


def _aligned(base: Run, other: Run) -> np.ndarray:
    """other's rankings with its rows in base's query order and its ids as base's gallery rows."""
    if _keys(base.queries) != _keys(other.queries) or _keys(base.gallery) != _keys(other.gallery):
        raise StyleidError(f"{other.root}: its test queries or gallery differ from {base.root}'s; compare runs of the same test set "
                           "(the same data.source/data.test_source, split and seed)")
    if not all(person for _, person in base.queries + base.gallery):
        raise StyleidError(f"{base.root}: the test set has no ground truth (unlabelled); nothing to compare")
    _same_people(base, other)
    row = {key: i for i, (key, _) in enumerate(other.queries)}
    to_base = {key: i for i, (key, _) in enumerate(base.gallery)}
    remap = np.array([to_base[key] for key, _ in other.gallery] + [-1])  # index -1 (no result) stays -1
    ids = other.ids[[row[key] for key, _ in base.queries]]
    return remap[np.where(ids < 0, len(other.gallery), ids)]


def compare(base: Run, other: Run, seed: int = 0, measure: str = "score") -> Comparison:
    if measure not in metrics.MEASURE_DIGITS:  # score: what the competition counts; mAP: moves where the score sits at its ceiling
        raise StyleidError(f"measure {measure!r}: unknown; use one of {', '.join(metrics.MEASURE_DIGITS)}")
    other_ids = _aligned(base, other)
    query_people = [p for _, p in base.queries]
    gallery_people = [p for _, p in base.gallery]
    value_base = metrics.evaluate(base.ids, query_people, gallery_people)[measure]
    value_other = metrics.evaluate(other_ids, query_people, gallery_people)[measure]
    low, high = metrics.difference_interval(base.ids, other_ids, query_people, gallery_people, seed, measure=measure)
    change = metrics.per_query(measure, other_ids, query_people, gallery_people) - metrics.per_query(measure, base.ids, query_people, gallery_people)
    first_base, first_other = (metrics.relevance(ids[:, :1], query_people, gallery_people)[:, 0] for ids in (base.ids, other_ids))
    return Comparison(value_base, value_other, round(value_other - value_base, metrics.MEASURE_DIGITS[measure]), low, high, len(query_people),
                      len(set(query_people)), measure, better=int((change > 0).sum()), worse=int((change < 0).sum()),
                      first_fixed=int((first_other & ~first_base).sum()), first_broken=int((first_base & ~first_other).sum()))


def ideal(base: Run, queries: np.ndarray | None = None) -> Run:
    """base with every right gallery image moved to the top of each ranking (the rest keep base's order): what a
    perfect model would return. `queries` (row indices) limits the fix to those queries; the others keep base's ranking."""
    gallery_people = np.array([p for _, p in base.gallery])
    ids = base.ids.copy()
    for row in range(len(ids)) if queries is None else queries:
        person = base.queries[row][1]
        right = np.flatnonzero(gallery_people == person)
        rest = [i for i in base.ids[row] if i >= 0 and gallery_people[i] != person]
        ids[row] = np.concatenate([right, rest, np.full(ids.shape[1], -1)])[: ids.shape[1]]
    return Run(base.root, ids, base.queries, base.gallery)


@dataclass
class Headroom:
    perfect: Comparison  # a perfect ranking against base
    misses: int  # base's queries a perfect ranking improves (for the score: those whose first result is wrong)
    fewest_fixes: int | None  # fewest of those a model must fix (breaking none) for a gain beyond the noise; None: not even all
    draws: int  # random sets of misses tried for each count of fixes


def headroom(base: Run, seed: int = 0, measure: str = "score", draws: int = 20) -> Headroom:
    """How much gain this test set can show over base. Near the ceiling (few misses) even a perfect model's gain can
    be within the noise. Which misses a model fixes matters (one person's or many people's), so each count of fixes
    is tried on `draws` seeded random sets of misses, and the median lower bound of their intervals decides."""
    best = ideal(base)
    query_people, gallery_people = [p for _, p in base.queries], [p for _, p in base.gallery]
    now, then = (metrics.per_query(measure, run.ids, query_people, gallery_people) for run in (base, best))
    misses = np.flatnonzero(now < then)
    perfect = compare(base, best, seed, measure)

    def beyond_noise(n: int) -> bool:  # the rankings share base's rows and gallery: no need for compare's alignment
        rng = np.random.default_rng([seed, n])
        fixed = (ideal(base, rng.choice(misses, n, replace=False)).ids for _ in range(draws))
        return np.median([metrics.difference_interval(base.ids, ids, query_people, gallery_people, seed, measure=measure)[0] for ids in fixed]) > 0

    if perfect.gain_low <= 0:
        return Headroom(perfect, len(misses), None, draws)
    low, high = 0, len(misses)  # bisect (more fixes, more gain): beyond_noise(high) holds, low's does not (0 fixes: no gain)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if beyond_noise(mid) else (mid, high)
    return Headroom(perfect, len(misses), high, draws)
