"""Stylize renderers: turn a natural photo into a cartoon, sketch, painting, poster or colour shift.

Used to build galleries for one-domain datasets (open protocol) and as training augmentation.
Each renderer is a pure function of (image, rng): the same seed gives the same picture.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
from PIL import Image, ImageOps

from styleid.registry import Registry

Renderer = Callable[[Image.Image, np.random.Generator], Image.Image]
RENDERERS: Registry[Renderer] = Registry("style")  # split.test_styles and augment.styles choose from these


def _bgr(img: Image.Image) -> np.ndarray:
    return cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2BGR)


def _pil(bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


@RENDERERS.register("cartoon")
def cartoon(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Edge-preserving smoothing, a few flat colours and dark outlines."""
    bgr = _bgr(img)
    smooth = cv2.edgePreservingFilter(bgr, flags=cv2.RECURS_FILTER, sigma_s=float(rng.uniform(40, 80)), sigma_r=0.4)
    levels = int(rng.integers(4, 8))
    flat = (smooth // (256 // levels)) * (256 // levels) + (128 // levels)
    gray = cv2.medianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 5)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, int(rng.integers(3, 7)))
    return _pil(cv2.bitwise_and(flat.astype(np.uint8), flat.astype(np.uint8), mask=edges))


@RENDERERS.register("sketch")
def sketch(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A pencil sketch: colour dodge of the grey image by its blurred negative."""
    gray = cv2.cvtColor(_bgr(img), cv2.COLOR_BGR2GRAY)
    sigma = float(rng.uniform(3, 8))
    blur = cv2.GaussianBlur(255 - gray, (0, 0), sigma)
    dodge = cv2.divide(gray, 255 - blur, scale=256)
    return Image.fromarray(dodge).convert("RGB")


@RENDERERS.register("painterly")
def painterly(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """OpenCV's stylization filter: soft, painted-looking regions."""
    out = cv2.stylization(_bgr(img), sigma_s=float(rng.uniform(30, 90)), sigma_r=float(rng.uniform(0.3, 0.6)))
    return _pil(out)


@RENDERERS.register("posterize")
def posterize(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Few colour levels after a light blur, like a screen print."""
    smooth = cv2.bilateralFilter(_bgr(img), 7, 60, 60)
    return ImageOps.posterize(_pil(smooth), int(rng.integers(2, 4)))


@RENDERERS.register("colour_shift")
def colour_shift(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate the hue and change saturation: skin and hair take unnatural colours."""
    hsv = cv2.cvtColor(_bgr(img), cv2.COLOR_BGR2HSV).astype(np.int32)
    hsv[..., 0] = (hsv[..., 0] + int(rng.integers(30, 150))) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1.2, 2.0), 0, 255)
    return _pil(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR))


def stylize(img: Image.Image, style: str, rng: np.random.Generator) -> Image.Image:
    """Render `img` in `style` (one of RENDERERS); the result has the input's size."""
    return RENDERERS.get(style)(img.convert("RGB"), rng)
