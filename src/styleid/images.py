"""Safe image listing and loading: odd files load correctly or are skipped with a reason."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
MAX_PIXELS = 64_000_000  # decompression-bomb limit: larger images are refused, not decoded
MIN_SIDE = 8  # smaller images carry no identity; skipped

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class BadImage(Exception):
    """An image file that cannot be used; the message says why."""


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted; hidden files and non-images are ignored."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))  # alpha composited on white
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0  # 16-bit: its full range is white
        return Image.fromarray((arr.clip(0, top) / top * 255).round().astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def _decode_jpeg(data: bytes) -> Image.Image | None:
    """A colour or grey JPEG through OpenCV's libjpeg-turbo: the same pixels as Pillow's decode (both run libjpeg-turbo's
    default IDCT and upsampling; tested), EXIF rotation applied, in less time. None: let Pillow decode it."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    return Image.frombuffer("RGB", (bgr.shape[1], bgr.shape[0]), bgr, "raw", "BGR", 0, 1)  # BGR -> RGB as Pillow copies it


def decode_rgb(data: bytes) -> Image.Image:
    """Encoded image bytes -> RGB, the one decoder of every entry point (pipeline, index, `styleid search`, the server):
    EXIF rotation applied, 16-bit scaled to its range, CMYK, palette and grey converted, alpha on white, an animation's
    first frame, at most MAX_PIXELS. Raises BadImage with the reason otherwise."""
    if not data:
        raise BadImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise BadImage(f"{img.width}x{img.height} exceeds the {MAX_PIXELS:,}-pixel limit")
                rgb = _decode_jpeg(data) if img.format == "JPEG" and img.mode in ("RGB", "L") else None
                if rgb is None:
                    img.seek(0)  # an animation: its first frame
                    img.load()
                    rgb = _to_rgb(ImageOps.exif_transpose(img))
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"too large: it exceeds the {MAX_PIXELS:,}-pixel limit") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise BadImage(f"not a readable image ({exc.__class__.__name__}: {exc})") from None
    if min(rgb.size) < MIN_SIDE:
        raise BadImage(f"{rgb.width}x{rgb.height} is smaller than {MIN_SIDE}px")
    return rgb


def load_rgb(path: str | Path) -> Image.Image:
    """Decode an image file to RGB (decode_rgb); raise BadImage with a reason otherwise."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadImage(f"not readable ({exc.strerror or exc})") from None
    return decode_rgb(data)


def read_image(path: Path) -> Image.Image:
    """A pipeline image (checked at fetch) decoded; one changed since then is BadImage naming it and the fix."""
    try:
        return load_rgb(path)
    except BadImage as exc:
        raise BadImage(f"{path}: {exc}; rerun `dvc repro` so fetch rechecks the data") from None


def read_photo(path: str | Path) -> Image.Image:
    """A photo a person named on the command line: decoded, or one line naming it and what to give instead."""
    from styleid.errors import StyleidError

    try:
        return load_rgb(path)
    except BadImage as exc:
        raise StyleidError(f"{path}: {exc}; give a JPEG, PNG or WebP photo") from None


def check_image(path: str | Path) -> tuple[int, int]:
    """Fully decode an image and return (width, height); raise BadImage otherwise."""
    img = load_rgb(path)
    return img.size


def median_side(paths: Sequence[str | Path], sample: int = 256) -> int:
    """Median of min(width, height) over up to `sample` evenly spaced images (headers only); 0 when none."""
    if not paths:
        return 0
    step = max(1, len(paths) // sample)
    sides = []
    for path in list(paths)[::step][:sample]:
        with Image.open(path) as img:
            sides.append(min(img.size))
    return int(np.median(sides))
