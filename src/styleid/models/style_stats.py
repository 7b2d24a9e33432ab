"""Style statistics: each channel's mean and standard deviation at several depths of a frozen backbone.

What the image looks like (paint, pencil, camera) rather than who is in it: instance statistics of
feature maps are how style transfer describes style (Gatys et al.; Huang and Belongie's AdaIN). A face
network's final embedding is trained to ignore exactly this, so the domain classifier reads these
instead (more accurately than from the embedding on ourcar: see the README's domains section).
"""

from __future__ import annotations

import torch
from torch import nn


def style_layers(backbone: nn.Module) -> list[nn.Module]:
    """The modules whose outputs describe style: the backbone's own list, or timm's feature_info stages."""
    if hasattr(backbone, "style_modules"):
        return backbone.style_modules()
    info = getattr(backbone, "feature_info", None)
    modules = dict(backbone.named_modules())
    names = [d.get("module") for d in info if isinstance(d, dict)] if isinstance(info, list) else []
    return [modules[n] for n in names if n in modules]


class StyleStatistics(nn.Module):
    """backbone -> concatenated (mean, std) per channel of each style layer's output (the last layer if none is listed)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self._outputs: list[torch.Tensor] = []
        for layer in style_layers(backbone):
            layer.register_forward_hook(lambda module, args, out: self._outputs.append(out))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self._outputs = []
        pooled = self.backbone(images)
        maps = [o for o in self._outputs if isinstance(o, torch.Tensor) and o.ndim == 4]
        if not maps:
            return pooled
        return torch.cat([torch.cat([m.mean((2, 3)), m.std((2, 3), correction=0)], dim=1) for m in maps], dim=1)
