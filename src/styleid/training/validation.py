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
from styleid.search.adapt import ADAPTATIONS, adapt_pair, choose, gain_key, val_key


def rankings(q: np.ndarray, g: np.ndarray, adapt: str = "none") -> np.ndarray:
    """The whole gallery ranked for each query (validation sets are small)."""
    q, g = adapt_pair(l2_normalize(q), l2_normalize(g), adapt)
    return metrics.rank_by_scores(q @ g.T)


def adapt_scores(q: np.ndarray, q_people: list[str], g: np.ndarray, g_people: list[str], seed: int = 0) -> dict[str, float]:
    """val_score and val_map (plain), val_score_<adapt> and val_map_<adapt> for each adaptation, with val_<adapt>_gain_low/high:
    the paired bootstrap 95% interval of its score's gain over plain (what embed.adapt auto chooses from: search.adapt.choose)."""
    ranked = {adapt: rankings(q, g, adapt) for adapt in ADAPTATIONS}
    row = {}
    for adapt, r in ranked.items():
        measured = metrics.evaluate(r, q_people, g_people)
        row[val_key(adapt)], row[val_key(adapt, "map")] = measured["score"], measured["mAP"]
    for adapt in ADAPTATIONS[1:]:
        row[gain_key(adapt, "low")], row[gain_key(adapt, "high")] = metrics.difference_interval(ranked["none"], ranked[adapt], q_people,
                                                                                                g_people, seed)
    return row


def validate(val: dict[str, torch.Tensor], loss_fn: nn.Module, holdout_labels: torch.Tensor | None, val_query_people: list[str],
             val_gallery_people: list[str], device: torch.device) -> dict[str, float]:
    """val_loss on the training people's held-out images; val_score, val_map (and under each adaptation) on the unseen validation people."""
    row = {}
    if holdout_labels is not None:
        row["val_loss"] = float(loss_fn(val["holdout"].to(device), holdout_labels.to(device)))
    if val_query_people and val_gallery_people:
        row.update(adapt_scores(val["val_query"].numpy(), val_query_people, val["val_gallery"].numpy(), val_gallery_people))
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
    best_value: tuple[float, ...] = (-math.inf,)
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict | None = field(default=None, repr=False)

    def value(self, row: dict) -> tuple[float, ...]:
        """Compared as tuples. val_score: the score as the test will embed (under embed.adapt auto's choice for this epoch),
        then its mAP, which still tells checkpoints apart when validation's recalls saturate (every query right at 1)."""
        if self.metric == "val_score":
            adapt = choose(row)
            return row.get(val_key(adapt), 0.0), row.get(val_key(adapt, "map"), 0.0)
        return (-row.get("val_loss", 0.0),) if self.metric == "val_loss" else (row["epoch"],)

    def update(self, improved: bool, value: tuple[float, ...], epoch: int, model: nn.Module) -> None:
        if improved:
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
