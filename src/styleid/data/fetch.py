"""The fetch step: materialise the source, recognise its layout, and check every image once."""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from styleid.data import layouts, sources, synthetic
from styleid.data.manifest import Item
from styleid.errors import DataError
from styleid.fileio import atomic_dir
from styleid.images import BadImage, check_image, file_sha1
from styleid.params import DataParams

log = logging.getLogger(__name__)


@dataclass
class FetchResult:
    root: Path  # the folder the manifest's paths are relative to
    layout: str
    items: list[Item]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)


def source_fingerprint(data: DataParams, seed: int) -> str:
    src = sources.classify(data.source)
    if src.kind == "synthetic":
        s = data.synthetic
        code = hashlib.sha1(Path(synthetic.__file__).read_bytes()).hexdigest()[:12]  # new generator, new data
        return f"synthetic:{code}:{seed}:{s.people}:{s.test_people}:{s.photos}:{s.renders}:{s.test_photos}:{s.test_renders}:{s.image_size}"
    return sources.fingerprint(src, data.sha256) + f":{data.layout}:{data.max_bad_fraction}"


def materialise(data: DataParams, seed: int, raw_dir: Path, cache_dir: Path) -> Path:
    """Return a local folder holding the source's images (generated, extracted or in place)."""
    src = sources.classify(data.source)
    if src.kind == "folder":
        return Path(src.location)
    if src.kind == "synthetic":
        s = data.synthetic
        target = raw_dir / "synthetic"
        with atomic_dir(target) as tmp:
            synthetic.generate(tmp, seed, s.people, s.photos, s.renders, s.image_size, s.test_people,
                               workers=os.cpu_count() or 1, test_photos=s.test_photos, test_renders=s.test_renders)
        return target
    archive = Path(src.location) if src.kind == "archive" else sources.cached_download(src, cache_dir, data.sha256)
    target = raw_dir / "extracted"
    sources.materialise_archive(archive, target, data.sha256, data.max_archive_bytes)
    return target


def _check(root: Path, entry: layouts.Entry) -> Item | tuple[str, str]:
    rel, person, domain, subset = entry
    path = root / rel
    try:
        if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
            log.info("following link %s -> %s", rel, path.resolve())
        width, height = check_image(path)
        return Item(rel, person, domain, subset, file_sha1(path), width, height)
    except BadImage as exc:
        return rel, str(exc)
    except OSError as exc:
        return rel, f"unreadable ({exc.strerror or exc})"


def scan_and_check(root: Path, layout: str, max_bad_fraction: float, workers: int = 4) -> FetchResult:
    """List the dataset's images, decode each once, and skip (with a logged reason) what is unusable."""
    root = layouts.unwrap(root)
    layout, entries = layouts.scan(root, layout)
    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(lambda e: _check(root, e), entries), total=len(entries), desc="fetch: checking images", leave=False))
    items = [r for r in results if isinstance(r, Item)]
    skipped = [r for r in results if not isinstance(r, Item)]
    for rel, reason in skipped:
        log.warning("skipped %s: %s", root / rel, reason)
    if len(skipped) > max_bad_fraction * len(entries):
        example = f"{root / skipped[0][0]}: {skipped[0][1]}"
        raise DataError(f"{root}: {len(skipped)} of {len(entries)} images are unusable (more than data.max_bad_fraction="
                        f"{max_bad_fraction}), e.g. {example}; fix or remove them, or raise data.max_bad_fraction")
    if not items:
        raise DataError(f"{root}: no usable images; {layouts.FIX}")
    return FetchResult(root, layout, items, skipped)


def fetch(data: DataParams, seed: int, raw_dir: Path, cache_dir: Path) -> FetchResult:
    root = materialise(data, seed, raw_dir, cache_dir)
    return scan_and_check(root, data.layout, data.max_bad_fraction)
