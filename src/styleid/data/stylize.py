"""Stylize renderers: turn a natural photo into a cartoon, sketch, painting, poster, colour shift, pen-and-ink hatching,
line art or flat shading in a made-up palette.

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


def _ink_colour(rng: np.random.Generator) -> np.ndarray:
    """A dark ink (black, sepia, blue-black or green-black), BGR."""
    return np.array([(20, 20, 20), (30, 50, 90), (80, 40, 20), (40, 60, 30)][int(rng.integers(4))], np.float32)


def _paper(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    return np.broadcast_to(rng.uniform(225, 255, 3).astype(np.float32), (*shape, 3))


def _inked(base: np.ndarray, ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """`base` (BGR float) with `ink` (0..1 coverage) laid on it in one of the dark inks."""
    return _pil(np.clip(base * (1 - ink[..., None]) + _ink_colour(rng) * ink[..., None], 0, 255).astype(np.uint8))


def _outlines(gray: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """Dark contours of `gray` (0..1 ink coverage), drawn with a random line weight for the image's size."""
    blur = cv2.GaussianBlur(gray, (0, 0), max(0.8, side / 120))
    low = float(rng.uniform(30, 70))
    edges = cv2.Canny(blur, low, low * 2.5)
    width = max(1, int(round(side / 96 * rng.uniform(0.6, 2.2))))
    if width > 1:
        edges = cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    return edges.astype(np.float32) / 255


@RENDERERS.register("hatching")
def hatching(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Pen-and-ink: tones become layers of parallel hatch lines (darker, more layers at more angles) under outlines."""
    gray = cv2.cvtColor(_bgr(img), cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    side = min(h, w)
    tone = cv2.GaussianBlur(gray, (0, 0), max(0.8, side / 96)).astype(np.float32) / 255
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    spacing = max(3.0, side / rng.uniform(20, 36))
    base = rng.uniform(0, np.pi)
    ink = np.zeros((h, w), np.float32)
    for k, threshold in enumerate(sorted(rng.uniform(0.25, 0.8, int(rng.integers(2, 5))), reverse=True)):
        angle = base + k * np.pi / 4
        phase = np.mod(xx * np.cos(angle) + yy * np.sin(angle), spacing)
        lines = (phase < max(1.0, spacing * rng.uniform(0.2, 0.4))).astype(np.float32)
        ink = np.maximum(ink, lines * (tone < threshold))
    ink = np.maximum(ink, _outlines(gray, rng, side))
    return _inked(_paper((h, w), rng), ink, rng)


@RENDERERS.register("ink")
def ink_drawing(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Line art: contours with a random line weight, the darkest regions filled solid (spot blacks), nothing else."""
    gray = cv2.cvtColor(_bgr(img), cv2.COLOR_BGR2GRAY)
    side = min(gray.shape)
    ink = _outlines(gray, rng, side)
    smooth = cv2.GaussianBlur(gray, (0, 0), max(1.0, side / 64))
    ink = np.maximum(ink, (smooth < np.percentile(smooth, rng.uniform(3, 15))).astype(np.float32))
    return _inked(_paper(gray.shape, rng), ink, rng)


@RENDERERS.register("palette")
def palette(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Flat shading in a made-up palette: smoothed brightness in 3-6 bands, each band one colour of a random ramp
    (dark to light, so the face's shading survives while skin and hair take any colours), thin outlines on top."""
    bgr = _bgr(img)
    side = min(bgr.shape[:2])
    gray = cv2.cvtColor(cv2.bilateralFilter(bgr, 7, 50, 50), cv2.COLOR_BGR2GRAY).astype(np.float32)
    bands = int(rng.integers(3, 7))
    edges = np.percentile(gray, np.linspace(0, 100, bands + 1)[1:-1])
    level = np.digitize(gray, edges)
    dark, light = rng.uniform(0, 110, 3), rng.uniform(150, 255, 3)
    ramp = dark + (light - dark) * np.linspace(0, 1, bands)[:, None] + rng.normal(0, 25, (bands, 3))
    out = np.clip(ramp, 0, 255)[level].astype(np.float32)
    line = _outlines(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), rng, side) * float(rng.uniform(0.5, 1.0))
    return _inked(out, line, rng)


def stylize(img: Image.Image, style: str, rng: np.random.Generator) -> Image.Image:
    """Render `img` in `style` (one of RENDERERS); the result has the input's size."""
    return RENDERERS.get(style)(img.convert("RGB"), rng)
