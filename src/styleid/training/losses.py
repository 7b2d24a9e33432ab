"""Training objectives by name, from pytorch-metric-learning (the reference's cross-entropy head aside).

Every objective maps (embeddings, labels) to a scalar loss. Classification-style losses own
class proxies (their `parameters()`), which the optimiser gives their own learning rate; pair
losses come with the miner that picks the pairs they learn from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from styleid.registry import Registry

LOSSES: Registry = Registry("loss")  # train.loss chooses: name -> factory(dim, n_classes, config) -> loss module


@dataclass(frozen=True)
class LossConfig:
    arc_margin: float = 28.6  # ArcFace angular margin, degrees
    arc_scale: float = 30.0  # ArcFace logit scale
    subcenters: int = 3  # sub-centres per class for subcenter_arcface
    ms_epsilon: float = 0.1  # multi-similarity miner: pair slack
    supcon_temperature: float = 0.1  # SupCon temperature
    triplet_margin: float = 0.2  # triplet margin (cosine distance)


class CrossEntropy(nn.Module):
    """The reference: a linear classifier over the embedding, trained with cross-entropy."""

    def __init__(self, dim: int, n_classes: int):
        super().__init__()
        self.classifier = nn.Linear(dim, n_classes)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.classifier(embeddings), labels)


class Mined(nn.Module):
    """A pair/triplet loss fed by its miner (mining skipped outside training, e.g. for val_loss)."""

    def __init__(self, loss: nn.Module, miner: nn.Module | None):
        super().__init__()
        self.loss, self.miner = loss, miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        pairs = self.miner(embeddings, labels) if self.miner is not None and self.training else None
        return self.loss(embeddings, labels, pairs)


@LOSSES.register("cross_entropy")
def _cross_entropy(dim: int, n_classes: int, config: LossConfig) -> nn.Module:
    return CrossEntropy(dim, n_classes)


@LOSSES.register("arcface")
def _arcface(dim: int, n_classes: int, config: LossConfig) -> nn.Module:
    from pytorch_metric_learning import losses

    return losses.ArcFaceLoss(num_classes=n_classes, embedding_size=dim, margin=config.arc_margin, scale=config.arc_scale)


@LOSSES.register("subcenter_arcface")
def _subcenter_arcface(dim: int, n_classes: int, config: LossConfig) -> nn.Module:
    from pytorch_metric_learning import losses

    return losses.SubCenterArcFaceLoss(num_classes=n_classes, embedding_size=dim, margin=config.arc_margin,
                                       scale=config.arc_scale, sub_centers=config.subcenters)


@LOSSES.register("multi_similarity")
def _multi_similarity(dim: int, n_classes: int, config: LossConfig) -> nn.Module:
    from pytorch_metric_learning import losses, miners

    return Mined(losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner(epsilon=config.ms_epsilon))


@LOSSES.register("supcon")
def _supcon(dim: int, n_classes: int, config: LossConfig) -> nn.Module:
    from pytorch_metric_learning import losses

    return Mined(losses.SupConLoss(temperature=config.supcon_temperature), None)


@LOSSES.register("triplet")
def _triplet(dim: int, n_classes: int, config: LossConfig) -> nn.Module:
    from pytorch_metric_learning import distances, losses, miners

    cosine = distances.CosineSimilarity()
    return Mined(losses.TripletMarginLoss(margin=config.triplet_margin, distance=cosine),
                 miners.TripletMarginMiner(margin=config.triplet_margin, type_of_triplets="hard", distance=cosine))


def create_loss(name: str, dim: int, n_classes: int, config: LossConfig = LossConfig()) -> nn.Module:
    return LOSSES.get(name)(dim, n_classes, config)


def per_sample_mean(loss: nn.Module) -> bool:
    """True when the loss is a mean of per-image terms (the proxy losses), false for pair/triplet losses."""
    return not isinstance(loss, Mined)


def distributed_loss(loss: Mined) -> Mined:
    """The same loss over every rank's embeddings (pytorch-metric-learning's distributed wrappers).

    The wrapped loss comes back multiplied by the world size, so DDP's gradient average gives the
    gradient of the loss over the whole global batch.
    """
    from pytorch_metric_learning.utils.distributed import DistributedLossWrapper, DistributedMinerWrapper

    miner = DistributedMinerWrapper(loss.miner) if loss.miner is not None else None
    return Mined(DistributedLossWrapper(loss.loss), miner)
