"""The test-time transform (torchvision v2), built from the model's own input size and normalisation.

Per image, transforms stop at uint8 pixels (a quarter of float32's bytes between loader and model); the
conversion to the model's normalised float input runs once per batch (`model_input`), where it is a few
vectorised ops instead of one small op per image.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from styleid.models.spec import ModelSpec


def interpolation(name: str) -> InterpolationMode:
    return InterpolationMode.BICUBIC if name == "bicubic" else InterpolationMode.BILINEAR


class ToPixels:
    """PIL image -> uint8 (3, H, W) tensor, through NumPy's view of the pixels: the same values as T.ToImage in a
    third of its time (it runs once per image)."""

    def __call__(self, img):
        if isinstance(img, torch.Tensor):
            return img
        pixels = np.asarray(img.convert("RGB") if img.mode != "RGB" else img)
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy())  # one copy: channels first, contiguous, writable


def to_pixels() -> ToPixels:
    """The last per-image step of every transform."""
    return ToPixels()


class ModelInput:
    """uint8 pixels (a batch or one image) -> the model's float input: x / 255, normalised with the backbone's mean/std
    when the model asks for it, as one scale and one shift per channel (two passes over the batch, not four)."""

    def __init__(self, spec: ModelSpec):
        mean = torch.tensor(spec.mean if spec.normalize_input else (0.0, 0.0, 0.0), dtype=torch.float64)
        std = torch.tensor(spec.std if spec.normalize_input else (1.0, 1.0, 1.0), dtype=torch.float64)
        self.scale = (1.0 / (255.0 * std)).float().view(3, 1, 1)
        self.shift = (-mean / std).float().view(3, 1, 1)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dtype != torch.uint8:
            raise TypeError(f"model input is made from uint8 pixels, got {pixels.dtype}")
        return torch.addcmul(self.shift.to(pixels.device), pixels.float(), self.scale.to(pixels.device))


def model_input(spec: ModelSpec) -> ModelInput:
    return ModelInput(spec)


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
