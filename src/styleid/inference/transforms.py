"""The test-time transform (torchvision v2), built from the model's own input size and normalisation.

Per image, transforms stop at uint8 pixels (a quarter of float32's bytes between loader and model); the
conversion to the model's normalised float input runs once per batch (`model_input`), where it is a few
vectorised ops instead of one small op per image.
"""

from __future__ import annotations

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from styleid.models.embedder import ModelSpec


def interpolation(name: str) -> InterpolationMode:
    return InterpolationMode.BICUBIC if name == "bicubic" else InterpolationMode.BILINEAR


def to_pixels() -> T.ToImage:
    """PIL image -> uint8 (3, H, W) tensor: the last per-image step of every transform."""
    return T.ToImage()


def model_input(spec: ModelSpec) -> T.Compose:
    """uint8 pixels (a batch or one image) -> float in [0, 1], normalised with the backbone's mean/std when the model asks for it."""
    steps: list = [T.ToDtype(torch.float32, scale=True)]
    if spec.normalize_input:
        steps.append(T.Normalize(spec.mean, spec.std))
    return T.Compose(steps)


def prepare_batch(spec: ModelSpec | None, images: torch.Tensor) -> torch.Tensor:
    """A batch as the model takes it: uint8 pixels are converted with `spec`; float tensors are taken as already converted."""
    if images.dtype != torch.uint8:
        return images
    if spec is None:
        raise TypeError("uint8 pixels need the model's spec to become its input; compose the transform with model_input(spec)")
    return model_input(spec)(images)


def eval_transform(spec: ModelSpec) -> T.Compose:
    """Resize the whole image (then an optional centre crop) to uint8 pixels: faces sit in the middle of the frame."""
    size = spec.input_size
    resize = int(round(size / spec.crop_pct))
    return T.Compose([T.Resize((resize, resize), interpolation=interpolation(spec.interpolation), antialias=True), T.CenterCrop(size),
                      to_pixels()])


def eval_input_transform(spec: ModelSpec) -> T.Compose:
    """eval_transform then model_input, per image: for modules without a spec, such as a bare backbone."""
    return T.Compose([eval_transform(spec), model_input(spec)])
