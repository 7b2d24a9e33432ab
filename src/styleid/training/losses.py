"""Training objectives by name. Each maps embeddings + labels to a scalar loss and may own parameters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropy(nn.Module):
    """The reference: a linear classifier over the embedding, trained with cross-entropy."""

    def __init__(self, dim: int, n_classes: int):
        super().__init__()
        self.classifier = nn.Linear(dim, n_classes)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.classifier(embeddings), labels)


def create_loss(name: str, dim: int, n_classes: int) -> nn.Module:
    if name == "cross_entropy":
        return CrossEntropy(dim, n_classes)
    if name == "arcface":
        from pytorch_metric_learning import losses

        return losses.ArcFaceLoss(num_classes=n_classes, embedding_size=dim, margin=28.6, scale=30)
    raise ValueError(f"unknown loss {name!r}")
