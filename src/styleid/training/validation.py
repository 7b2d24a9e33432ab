"""Validation after each epoch and the choice of the checkpoint to keep, as plain functions."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from styleid import metrics
from styleid.inference.normalize import l2_normalize
from styleid.search.adapt import ADAPTATIONS, adapt_pair, val_score_key


def retrieval_score(q: np.ndarray, q_people: list[str], g: np.ndarray, g_people: list[str], adapt: str = "none") -> float:
    q, g = adapt_pair(l2_normalize(q), l2_normalize(g), adapt)
    return metrics.evaluate(metrics.rank_by_scores(q @ g.T)[:, :10], q_people, g_people)["score"]


def validate(val: dict[str, torch.Tensor], loss_fn: nn.Module, holdout_labels: torch.Tensor | None, val_query_people: list[str],
             val_gallery_people: list[str], device: torch.device) -> dict[str, float]:
    """val_loss on the training people's held-out images; val_score (and val_score_<adapt>) on the unseen validation people."""
    row = {}
    if holdout_labels is not None:
        row["val_loss"] = float(loss_fn(val["holdout"].to(device), holdout_labels.to(device)))
    if val_query_people and val_gallery_people:
        for adapt in ADAPTATIONS:  # val_score (plain), val_score_center, ...: what embed.adapt auto chooses from
            row[val_score_key(adapt)] = retrieval_score(val["val_query"].numpy(), val_query_people, val["val_gallery"].numpy(),
                                                        val_gallery_people, adapt)
    return row


def selection_metric(select_by: str, has_val_people: bool, has_holdout: bool) -> str:
    """What picks the checkpoint: train.select_by when its data exist, else val_score, else the last epoch."""
    if (select_by == "val_score" and has_val_people) or (select_by == "val_loss" and has_holdout):
        return select_by
    return "val_score" if has_val_people else "last"


@dataclass
class Selection:
    """The best epoch so far by `metric` (higher is better; val_loss counts negated), and epochs since it."""

    metric: str
    best_value: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict | None = field(default=None, repr=False)

    def value(self, row: dict) -> float:
        return {"val_score": row.get("val_score", 0.0), "val_loss": -row.get("val_loss", 0.0), "last": row["epoch"]}[self.metric]

    def update(self, improved: bool, value: float, epoch: int, model: nn.Module) -> None:
        if improved:
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
