"""The embedder cut in two: a trunk (the lower layers, which stay as they are) and a top (the last stages and the head).

Self-training runs the trunk once per image view and caches what it gives; the fine-tune then trains only the top on
that cache, so each epoch costs the top's forward and backward passes, not the whole network's. `top_stages` counts the
backbone's stages from its end (facenet: 1 = the bottleneck, 2 = + block8, 3 = + repeat_3 ...; timm EfficientNet and
MobileNet families: their conv head, then their last block groups). A backbone that cannot be cut, or a count that
reaches its first stage, puts the whole model in the top (the cache then holds the model's input).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from styleid.models.embedder import Embedder

FACENET_ORDER = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b", "repeat_1", "mixed_6a",
                 "repeat_2", "mixed_7a", "repeat_3", "block8", "avgpool_1a")
FACENET_TOP_STARTS = ("avgpool_1a", "block8", "repeat_3", "mixed_7a", "repeat_2", "mixed_6a", "repeat_1")  # top_stages 1, 2, ...


@dataclass
class Split:
    """trunk(model input) -> cached features; top(features) -> the embedding; `trains`: the top's modules."""

    model: Embedder
    trunk: nn.Module
    top: nn.Module
    trains: list[nn.Module]
    whole: bool  # the top is the whole model
    scope: str = ""  # the top's first module as the ONNX export names it (inference/onnx_trunk.py cuts the export there)

    def parameters(self) -> list[nn.Parameter]:
        return list(dict.fromkeys(p for m in self.trains for p in m.parameters()))


class _FaceNetPart(nn.Module):
    """facenet's modules from `start` to `stop` in FACENET_ORDER; `head`: then its bottleneck and the embedder's head."""

    def __init__(self, model: Embedder, start: int, stop: int, head: bool):
        super().__init__()
        self.names, self.head = FACENET_ORDER[start:stop], head
        self.model = [model]  # a list: not a submodule, so this part's state is the model's own

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model[0]
        net = model.backbone.net
        for name in self.names:
            x = getattr(net, name)(x)
        if not self.head:
            return x
        return model.head(net.last_bn(net.last_linear(net.dropout(x.flatten(1)))))


class _EfficientNetPart(nn.Module):
    """A timm EfficientNet/MobileNet cut before block group `cut` (None: before its conv head)."""

    def __init__(self, model: Embedder, cut: int, top: bool):
        super().__init__()
        self.cut, self.is_top = cut, top
        self.model = [model]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model[0]
        b = model.backbone
        if not self.is_top:
            x = b.bn1(b.conv_stem(x))
            for block in b.blocks[: self.cut]:
                x = block(x)
            return x
        for block in b.blocks[self.cut:]:
            x = block(x)
        return model.head(b.forward_head(b.bn2(b.conv_head(x))))


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def split(model: Embedder, top_stages: int) -> Split:
    """`model` as trunk and top (sharing its parameters: training the top trains the model)."""
    backbone = model.backbone
    head = [model.head]
    if hasattr(backbone, "net") and 1 <= top_stages <= len(FACENET_TOP_STARTS):
        start = FACENET_ORDER.index(FACENET_TOP_STARTS[top_stages - 1])
        net = backbone.net
        trains = [getattr(net, name) for name in FACENET_ORDER[start:]] + [net.last_linear, net.last_bn, *head]
        return Split(model, _FaceNetPart(model, 0, start, False), _FaceNetPart(model, start, len(FACENET_ORDER), True), trains, False,
                     f"/backbone/{FACENET_ORDER[start]}/")
    blocks = getattr(backbone, "blocks", None)
    if all(hasattr(backbone, a) for a in ("conv_stem", "bn1", "conv_head", "bn2", "forward_head")) and isinstance(blocks, nn.Sequential) \
            and 1 <= top_stages <= len(blocks):
        cut = len(blocks) - (top_stages - 1)
        trains = [*blocks[cut:], backbone.conv_head, backbone.bn2, getattr(backbone, "global_pool", _Identity()), *head]
        scope = f"/backbone/blocks/blocks.{cut}/" if cut < len(blocks) else "/backbone/conv_head/"
        return Split(model, _EfficientNetPart(model, cut, False), _EfficientNetPart(model, cut, True), trains, False, scope)
    return Split(model, _Identity(), model, [model], True)
