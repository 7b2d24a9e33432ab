"""Searching a folder index with photos: embedded with the index's own model, scored by cosine similarity,
each match marked "same person" above the card's calibrated threshold, "unsure" below it."""

from __future__ import annotations

import numpy as np

from styleid.gallery.folder_index import FolderIndex


def verdict(score: float, threshold: float | None) -> str:
    return "unknown" if threshold is None else "same person" if score >= threshold else "unsure"


def rank(queries: np.ndarray, labels: list[str], index: FolderIndex, top_k: int) -> tuple[list[dict], str]:
    """Each embedded query's top_k gallery images (rank, cosine score, verdict, gallery row and file), and what the score is."""
    match = index.card.get("match") or {}
    threshold = match.get("threshold")
    ids, scores = index.search(queries, top_k)
    results = [{"photo": label, "matches": [{"rank": r, "score": round(float(s), 4), "verdict": verdict(float(s), threshold), "row": int(i),
                                              "id": index.entries[i]["id"], "name": index.paths[i], "file": str(index.file(i)),
                                              **({"label": index.entries[i]["label"]} if "label" in index.entries[i] else {})}
                                             for r, (i, s) in enumerate(zip(row_ids, row_scores), start=1) if i >= 0]}
               for label, row_ids, row_scores in zip(labels, ids, scores)]
    how = "cosine similarity to the photo" + (f"; same person at {threshold} or more ({match.get('false_match_rate', 0):.0%} false matches "
                                              "on the validation people)" if threshold is not None else "; no calibrated threshold in this model's card")
    return results, how
