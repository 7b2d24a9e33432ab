"""Adapting embeddings to the test set without labels (transductive).

center: each domain's embeddings minus that domain's own mean, then L2-normalised. Photos and renders
sit in different regions of the embedding space; the offset between the regions is the same for every
person, so removing each side's mean (computed from the queries and the gallery themselves, never from
labels) leaves what tells people apart. The training run measures it on the validation people
(val_score vs val_score_center) and records its choice in model.json; embed.adapt auto follows it.
"""

from __future__ import annotations

import numpy as np

from styleid.inference.normalize import l2_normalize

ADAPTATIONS = ("none", "center")


def center(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    return l2_normalize(np.asarray(x, np.float32) - np.asarray(mean, np.float32)[None, :])


def adapt_pair(queries: np.ndarray, gallery: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Both sides adapted with their own statistics (method: one of ADAPTATIONS)."""
    if method == "none":
        return queries, gallery
    return center(queries, queries.mean(0)), center(gallery, gallery.mean(0))


def val_score_key(method: str) -> str:
    """The training history's name for the validation score under `method`: val_score, val_score_center, ..."""
    return "val_score" if method == "none" else f"val_score_{method}"


def choose(val_scores: dict[str, float]) -> str:
    """The adaptation with the best validation score; none unless another is strictly better."""
    best = "none"
    for method in ADAPTATIONS:
        if method in val_scores and val_scores[method] > val_scores.get(best, -np.inf):
            best = method
    return best
