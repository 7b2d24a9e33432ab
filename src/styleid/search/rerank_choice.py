"""retrieve.rerank auto: the run's own validation people choose the re-ranker, as they choose embed.adapt and self_train.use.

The embed stage embeds the validation photos and renders as it embeds the test (the same model, runtime and
adaptation); here each re-ranker orders the validation gallery for the validation photos, exactly as the retrieve stage
would order the test's, and is compared, paired, with no re-ranking. A re-ranker is chosen only when its gain is beyond
the paired bootstrap noise: in score, or, where no validation query's score moved (a saturated set), in mAP. Among
several such, the largest mean gain wins; with none, nothing is re-ranked. A gallery of one render a person (as the
synthetic default's) gives re-ranking nothing to gather, so it stays off there; galleries with several renders a person
are where k-reciprocal neighbourhoods pay.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import faiss
import numpy as np

from styleid import metrics
from styleid.params import RetrieveParams
from styleid.search.rerank import KRECIPROCAL_MAX
from styleid.search.retriever import retrieve

CANDIDATES = ("aqe", "kreciprocal")  # kreciprocal becomes kreciprocal_local for a test set past KRECIPROCAL_MAX images


def candidates(test_images: int) -> list[str]:
    """The re-rankers auto weighs for a test of this many queries + gallery images (the exact k-reciprocal only where it fits)."""
    return [("kreciprocal_local" if c == "kreciprocal" and test_images > KRECIPROCAL_MAX else c) for c in CANDIDATES]


def ranking(queries: np.ndarray, gallery: np.ndarray, settings: RetrieveParams, rerank: str) -> np.ndarray:
    """Every gallery image ranked for every query, by exact search then `rerank`, as the retrieve stage ranks the test."""
    index = faiss.IndexFlatIP(gallery.shape[1])
    index.add(np.ascontiguousarray(gallery, np.float32))
    ids, _ = retrieve(index, np.ascontiguousarray(queries, np.float32), len(gallery), dataclasses.replace(settings, rerank=rerank),
                      lambda: gallery)
    return ids


def beyond_noise(row: dict) -> bool:
    """metrics.gains_beyond_noise on a candidate's row."""
    return metrics.gains_beyond_noise(row.get("gain_low", 0.0), row.get("gain_high", 0.0), row.get("map_gain_low", 0.0))


def choose(settings: RetrieveParams, queries: np.ndarray, gallery: np.ndarray, query_people: Sequence[str],
           gallery_people: Sequence[str], test_images: int, seed: int) -> dict:
    """{"rerank": the choice, "rerank_checked": each candidate's validation figures} (queries, gallery: the validation people's
    adapted embeddings)."""
    if len(queries) == 0 or len(gallery) == 0:
        return {"rerank": "none", "rerank_checked": "no validation people: nothing re-ranked"}
    base = ranking(queries, gallery, settings, "none")
    before = metrics.evaluate(base, query_people, gallery_people)
    base_score = metrics.per_query("score", base, query_people, gallery_people)
    checked: dict[str, dict] = {"none": {"val_score": before["score"], "val_map": round(before["mAP"], 4)}}
    for name in candidates(test_images):
        after = ranking(queries, gallery, settings, name)
        m = metrics.evaluate(after, query_people, gallery_people)
        low, high = metrics.difference_interval(base, after, query_people, gallery_people, seed=seed)
        map_low, map_high = metrics.difference_interval(base, after, query_people, gallery_people, seed=seed, measure="mAP")
        moved = bool(np.any(metrics.per_query("score", after, query_people, gallery_people) != base_score))
        checked[name] = {"val_score": m["score"], "val_map": round(m["mAP"], 4), "gain_low": low, "gain_high": high, "score_moved": moved,
                         "map_gain_low": map_low, "map_gain_high": map_high}
    kept = [n for n in checked if n != "none" and beyond_noise(checked[n])]
    gain = {n: (checked[n]["val_score"] - before["score"], checked[n]["val_map"]) for n in kept}
    return {"rerank": max(kept, key=lambda n: gain[n]) if kept else "none", "rerank_checked": checked}
