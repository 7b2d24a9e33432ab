"""Image transforms (torchvision v2) built from the model's own input size and normalisation."""

from __future__ import annotations

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from styleid.models.embedder import ModelSpec


def _interp(name: str) -> InterpolationMode:
    return InterpolationMode.BICUBIC if name == "bicubic" else InterpolationMode.BILINEAR


def _tail(spec: ModelSpec) -> list:
    steps: list = [T.ToImage(), T.ToDtype(torch.float32, scale=True)]
    if spec.normalize_input:
        steps.append(T.Normalize(spec.mean, spec.std))
    return steps


def eval_transform(spec: ModelSpec) -> T.Compose:
    """Resize the whole image (then an optional centre crop): faces sit in the middle of the frame."""
    size = spec.input_size
    resize = int(round(size / spec.crop_pct))
    return T.Compose([T.Resize((resize, resize), interpolation=_interp(spec.interpolation), antialias=True), T.CenterCrop(size), *_tail(spec)])


def train_transform(spec: ModelSpec, augment: bool) -> T.Compose:
    if not augment:
        return eval_transform(spec)
    size = spec.input_size
    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.85, 1.15), interpolation=_interp(spec.interpolation), antialias=True),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.3, 0.3, 0.3, 0.05)], p=0.8),
        T.RandomGrayscale(p=0.1),
        *_tail(spec),
    ])
