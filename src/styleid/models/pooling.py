"""Generalised-mean (GeM) pooling: between average (p=1) and max (p->inf), p learned.

timm's SelectAdaptivePool2d has no GeM, so the backbone is built unpooled and this pools it.
"""

from __future__ import annotations

import torch
from torch import nn


class GeM(nn.Module):
    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)


def use_gem(backbone: nn.Module, p: float) -> None:
    """Swap the backbone's global average pooling for GeM (timm models and facenet)."""
    if hasattr(backbone, "net"):  # facenet: its avgpool_1a, then flatten in its forward
        backbone.net.avgpool_1a = nn.Sequential(GeM(p), nn.Unflatten(1, (-1, 1, 1)))
        return
    backbone.reset_classifier(0, global_pool="")
    backbone.global_pool = GeM(p)
    backbone.forward_head = lambda x, pre_logits=False: backbone.global_pool(x)
