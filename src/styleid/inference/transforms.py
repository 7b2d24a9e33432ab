"""The test-time transform (torchvision v2), built from the model's own input size and normalisation."""

from __future__ import annotations

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from styleid.models.embedder import ModelSpec


def interpolation(name: str) -> InterpolationMode:
    return InterpolationMode.BICUBIC if name == "bicubic" else InterpolationMode.BILINEAR


def to_model_input(spec: ModelSpec) -> list:
    """PIL image -> float tensor in [0, 1], normalised with the backbone's mean/std when the model asks for it."""
    steps: list = [T.ToImage(), T.ToDtype(torch.float32, scale=True)]
    if spec.normalize_input:
        steps.append(T.Normalize(spec.mean, spec.std))
    return steps


def eval_transform(spec: ModelSpec) -> T.Compose:
    """Resize the whole image (then an optional centre crop): faces sit in the middle of the frame."""
    size = spec.input_size
    resize = int(round(size / spec.crop_pct))
    return T.Compose([T.Resize((resize, resize), interpolation=interpolation(spec.interpolation), antialias=True), T.CenterCrop(size),
                      *to_model_input(spec)])
