"""Face detection and cropping (MTCNN from facenet-pytorch; its weights ship inside the wheel).

Each image becomes a square crop around its largest detected face, with a margin, resized to
`size`. Where no face is found (common on caricatures and cartoons) the crop is the centred
square instead, and the caller counts it. Crops are cached by image content and settings, so
a dataset is aligned once per setting however often it is re-split.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from PIL import Image

from styleid.fileio import atomic_path
from styleid.images import load_rgb

log = logging.getLogger(__name__)

MIN_FACE_PROB = 0.9  # MTCNN's own confidence below which a box is not trusted as a face


@dataclass(frozen=True)
class AlignSettings:
    method: str  # none | mtcnn
    size: int  # side of the crop, px
    margin: float  # context around the face box, as a share of its side

    def key(self) -> str:
        return f"{self.method}:{self.size}:{self.margin}"


@dataclass(frozen=True)
class Aligned:
    crop: Image.Image
    found: bool  # False: no face, the centred crop was used


class FaceAligner:
    def __init__(self, settings: AlignSettings):
        from facenet_pytorch import MTCNN

        self.settings = settings
        self.detector = MTCNN(select_largest=True, keep_all=False, post_process=False, device="cpu")

    def face_box(self, image: Image.Image) -> tuple[float, float, float, float] | None:
        boxes, probs = self.detector.detect(image)
        if boxes is None:
            return None
        best = max(range(len(boxes)), key=lambda i: (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]))
        if probs[best] is None or probs[best] < MIN_FACE_PROB:
            return None
        return tuple(float(v) for v in boxes[best])

    def __call__(self, image: Image.Image) -> Aligned:
        box = self.face_box(image)
        square = _face_square(box, image.size, self.settings.margin) if box else _centre_square(image.size)
        crop = image.crop(square).resize((self.settings.size, self.settings.size), Image.Resampling.BICUBIC)
        return Aligned(crop, box is not None)


def _centre_square(size: tuple[int, int]) -> tuple[int, int, int, int]:
    w, h = size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return left, top, left + side, top + side


def _face_square(box: tuple[float, float, float, float], size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """A square around the box, grown by `margin`, moved (and shrunk if needed) to stay inside the image."""
    w, h = size
    x1, y1, x2, y2 = box
    side = min(max(x2 - x1, y2 - y1) * (1 + margin), w, h)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(cx - side / 2, 0), w - side)
    top = min(max(cy - side / 2, 0), h - side)
    return round(left), round(top), round(left + side), round(top + side)


def crop_name(file: Path, settings: AlignSettings) -> str:
    """Cache key: the image's bytes and the settings (a changed file or setting is a new crop)."""
    digest = hashlib.sha1(file.read_bytes())
    digest.update(settings.key().encode())
    return digest.hexdigest()[:20] + ".jpg"


def align_files(files: Iterable[Path], out_dir: Path, settings: AlignSettings) -> tuple[dict[str, str], int, int]:
    """Align every file into out_dir (reusing cached crops); returns (file -> crop, aligned now, fallbacks).

    Fallbacks are counted over all files, cached ones included, from the noface.txt list kept beside the crops.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    noface_file = out_dir / "noface.txt"
    noface = set(noface_file.read_text().split()) if noface_file.is_file() else set()
    aligner: FaceAligner | None = None
    mapping: dict[str, str] = {}
    computed = fallbacks = 0
    for file in files:
        name = crop_name(file, settings)
        target = out_dir / name
        if not target.is_file():
            aligner = aligner or FaceAligner(settings)
            result = aligner(load_rgb(file))
            with atomic_path(target) as tmp:
                result.crop.save(tmp, format="JPEG", quality=95)
            computed += 1
            if not result.found:
                noface.add(name)
                log.debug("align: no face in %s; centred crop", file)
        fallbacks += name in noface
        mapping[file.as_posix()] = target.as_posix()
    with atomic_path(noface_file) as tmp:
        tmp.write_text("\n".join(sorted(noface)) + "\n")
    return mapping, computed, fallbacks
