"""Adapting embeddings to the test set without labels (transductive).

center: each domain's embeddings minus that domain's own mean, then L2-normalised. Photos and renders
sit in different regions of the embedding space; the offset between the regions is the same for every
person, so removing each side's mean (computed from the queries and the gallery themselves, never from
labels) leaves what tells people apart. The training run measures it on the validation people
(val_score vs val_score_center, and the paired bootstrap interval of the difference) and records its
choice in model.json; embed.adapt auto follows it.

Centring is the prior, and validation can only veto it. A few dozen validation people cannot tell a
few points apart, and a choice made on such a difference is a coin flip whose cost is lopsided:
uncentred, a photo's nearest neighbours are other photos, so re-rankers built on shared neighbours
(retrieve.rerank kreciprocal) have nothing to work with across the domains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from styleid.fileio import read_json
from styleid.inference.normalize import l2_normalize

ADAPTATIONS = ("none", "center")


def center(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    return l2_normalize(np.asarray(x, np.float32) - np.asarray(mean, np.float32)[None, :])


def adapt_pair(queries: np.ndarray, gallery: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Both sides adapted with their own statistics (method: one of ADAPTATIONS)."""
    if method == "none":
        return queries, gallery
    return center(queries, queries.mean(0)), center(gallery, gallery.mean(0))


def val_key(method: str, measure: str = "score") -> str:
    """The training history's name for a validation measure (score, map) under `method`: val_score, val_score_center, val_map, ..."""
    return f"val_{measure}" if method == "none" else f"val_{measure}_{method}"


def gain_key(method: str, end: str) -> str:
    """The training history's name for one end (low, high) of the 95% interval of `method`'s score gain over none."""
    return f"val_{method}_gain_{end}"


PRIOR = "center"  # what embed.adapt auto uses unless the validation people show it is worse beyond their noise


def choose(row: dict[str, float]) -> str:
    """The adaptation for embed.adapt auto, from a validation row: PRIOR unless it was not measured, or the
    upper end of its gain's 95% interval over none (val_center_gain_high) is below zero."""
    if val_key(PRIOR) not in row:
        return "none"
    return "none" if row.get(gain_key(PRIOR, "high"), 0.0) < 0 else PRIOR


def resolve(setting: str, model_dir: Path) -> str:
    """embed.adapt as the test gets it: auto -> what the training run chose (model_dir/model.json's "adapt")."""
    return setting if setting != "auto" else read_json(Path(model_dir) / "model.json").get("adapt", "none")
