"""Face detection and cropping (MTCNN from facenet-pytorch; its weights ship inside the wheel).

Each image becomes a square crop around its largest detected face, with a margin, resized to
`size`; a render made from a photo is cropped where the face is in that photo. Where no face is
found (common on caricatures and cartoons) the crop is the centred square instead, and the caller
counts it. Crops are cached by image content and settings, so a dataset is aligned once per setting
however often it is re-split.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from PIL import Image

from styleid.data.manifest import RENDERED
from styleid.errors import FACENET_INSTALL, require
from styleid.fileio import atomic_path
from styleid.images import load_rgb
from styleid.progress import bar

log = logging.getLogger(__name__)

MIN_FACE_PROB = 0.9  # MTCNN's own confidence below which a box is not trusted as a face
AUTO_SAMPLE = 48  # photos looked at to decide whether a dataset needs alignment
AUTO_MAX_FACE_SHARE = 0.75  # face box side / image side below this: wide shots, align them
AUTO_MIN_FOUND = 0.5  # ...but only when MTCNN finds a face in at least this share of them (else crops would mostly be fallbacks)
CROP_JPEG_QUALITY = 95  # the cached crops' JPEG quality (scripts/bench.py embeds crops made the same way)


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
        self.settings = settings
        self.detector = require("facenet_pytorch", FACENET_INSTALL).MTCNN(select_largest=True, keep_all=False, post_process=False, device="cpu")

    def face_box(self, image: Image.Image) -> tuple[float, float, float, float] | None:
        boxes, probs = self.detector.detect(image)
        if boxes is None:
            return None
        best = max(range(len(boxes)), key=lambda i: (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]))
        if probs[best] is None or probs[best] < MIN_FACE_PROB:
            return None
        return tuple(float(v) for v in boxes[best])

    def __call__(self, image: Image.Image, framing: Image.Image | None = None) -> Aligned:
        """framing: the photo a render was drawn from (same framing): its face box crops the render, where a
        detector trained on photos finds faces in few drawings; the render's own detection is the fallback."""
        box = _scaled(self.face_box(framing), framing.size, image.size) if framing is not None else None
        box = box or self.face_box(image)
        square = _face_square(box, image.size, self.settings.margin) if box else _centre_square(image.size)
        crop = image.crop(square).resize((self.settings.size, self.settings.size), Image.Resampling.BICUBIC)
        return Aligned(crop, box is not None)


def _scaled(box: tuple[float, float, float, float] | None, size: tuple[int, int], to: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """A box found in an image of `size`, in the coordinates of one of size `to` (a render keeps its photo's size)."""
    if box is None:
        return None
    sx, sy = to[0] / size[0], to[1] / size[1]
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


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


NOFACE = ".noface"  # <crop>.noface beside a crop marks a centred fallback: one file per crop, so two workers never lose each other's marks


def crop_name(file: Path, settings: AlignSettings, framing: Path | None = None) -> str:
    """Cache key: the image's bytes, the settings and the bytes of the photo that frames it, if any (a changed
    file, setting or framing photo is a new crop)."""
    digest = hashlib.sha1(file.read_bytes())
    digest.update(settings.key().encode())
    if framing is not None:
        digest.update(b"framed by:" + framing.read_bytes())
    return digest.hexdigest()[:20] + ".jpg"


def align_files(files: Iterable[Path], out_dir: Path, settings: AlignSettings,
                framing: dict[Path, Path] | None = None) -> tuple[dict[str, str], int, int]:
    """Align every file into out_dir (reusing cached crops); returns (file -> crop, aligned now, fallbacks).

    framing: render -> the photo it was rendered from; the render is cropped where the face is in that photo.
    Fallbacks are counted over all files, cached ones included, from the <crop>.noface marks beside the crops.
    """
    framing = framing or {}
    out_dir.mkdir(parents=True, exist_ok=True)
    aligner: FaceAligner | None = None
    mapping: dict[str, str] = {}
    computed = fallbacks = 0
    files = list(files)
    for file in bar(files, desc="align", unit="image", leave=False, mininterval=2.0, hide=len(files) < 100):  # live count and ETA
        photo = framing.get(file)
        name = crop_name(file, settings, photo)
        target = out_dir / name
        if not target.is_file():
            aligner = aligner or FaceAligner(settings)
            result = aligner(load_rgb(file), load_rgb(photo) if photo is not None else None)
            if not result.found:  # the mark first: a crop on disk always has its mark, whoever is reading
                with atomic_path(out_dir / (name + NOFACE)) as tmp:
                    tmp.write_text(str(file) + "\n")
                log.debug("align: no face in %s; centred crop", file)
            with atomic_path(target) as tmp:
                result.crop.save(tmp, format="JPEG", quality=CROP_JPEG_QUALITY)
            computed += 1
        fallbacks += (out_dir / (name + NOFACE)).is_file()
        mapping[file.as_posix()] = target.as_posix()
    return mapping, computed, fallbacks


def face_share(files: list[Path], seed: int) -> float | None:
    """Median (face box side / image's shorter side) over a seeded sample; None when faces are found in
    fewer than AUTO_MIN_FOUND of the photos (drawn or synthetic faces: alignment would mostly fall back).

    About 0.5 for LFW-style shots (a face amid background); above 1 for tight face crops (the box
    reaches past the frame), as in ourcar.
    """
    import numpy as np

    if not files:
        return None
    rng = np.random.default_rng([seed, 61])
    sample = [files[i] for i in sorted(rng.choice(len(files), size=min(AUTO_SAMPLE, len(files)), replace=False))]
    aligner = FaceAligner(AlignSettings("mtcnn", 32, 0.0))
    shares = []
    for file in sample:
        image = load_rgb(file)
        box = aligner.face_box(image)
        if box:
            shares.append(max(box[2] - box[0], box[3] - box[1]) / min(image.size))
    return float(np.median(shares)) if shares and len(shares) >= AUTO_MIN_FOUND * len(sample) else None


def resolve_method(method: str, photos: list[Path], seed: int) -> tuple[str, float | None]:
    """auto: mtcnn for wide shots (faces small in the frame), none for images already cropped to the face."""
    if method != "auto":
        return method, None
    share = face_share(photos, seed)
    return ("mtcnn" if share is not None and share < AUTO_MAX_FACE_SHARE else "none"), share


QUERY_PARTS = ("query", "val_query")  # parts whose images are photos whatever their domain label (a competition's test/query)


def plan_sources(split: dict, parts: Iterable[str], method: str, seed: int, drawn: Iterable[str] = ()) -> dict[str, tuple[str, float | None]]:
    """Source tag -> (method, face share): each source decides from its own photos, so one dataset of tight
    crops never switches alignment off for another of wide shots. Rendered galleries were rendered from the
    test queries' photos, so they follow the queries' source. `drawn`: tags of the synthetic generator's sources,
    whose faces are drawn to fill the frame: auto is none there without running the detector (it finds no drawn face)."""
    photos: dict[str, dict[Path, None]] = {}
    for part in parts:
        for e in split[part]:
            photos.setdefault(e.get("source", ""), {})
            if e["domain"] == "photo" or part in QUERY_PARTS:
                photos[e.get("source", "")][Path(e["file"])] = None
    drawn = set(drawn)
    plan = {tag: ("none", None) if method == "auto" and tag in drawn else resolve_method(method, list(files), seed)
            for tag, files in photos.items() if tag != RENDERED}
    if RENDERED in photos:
        plan[RENDERED] = plan.get(query_source(split), (method if method != "auto" else "none", None))
    return plan


def query_source(split: dict) -> str:
    """The source of most test queries: what a user's photo resembles, so `styleid search` aligns it likewise."""
    tags = [e.get("source", "") for e in split["query"]]
    return max(set(tags), key=tags.count) if tags else ""


def query_settings(aligned_index: dict | None, method: str, size: int, margin: float) -> AlignSettings:
    """How a new photo is aligned: as the pipeline aligned its test queries (data/aligned/index.json), or, before
    any pipeline run, as data.align says (auto cannot decide from one photo: none)."""
    if aligned_index:
        return AlignSettings(aligned_index["method"], aligned_index.get("size", size), aligned_index.get("margin", margin))
    return AlignSettings(method if method != "auto" else "none", size, margin)
