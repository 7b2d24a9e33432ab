"""Dataset layouts: detect how a folder is organised and list its images with labels.

- people:      <root>/<person>/*                      (one domain: photos, e.g. LFW)
- domains:     <root>/photos/<person>/* beside <root>/<renders|caricatures|...>/<person>/*
- competition: <root>/train/<person>/*, <root>/test/query/*, <root>/test/gallery/*
               (test files flat = unlabelled, or in <person>/ subfolders = ground truth; train/ may
               itself be laid out as domains, train/photos/<person>/ beside train/<renders>/<person>/,
               which marks each training image photo or render)
"""

from __future__ import annotations

import logging
from pathlib import Path

from styleid.errors import DataError
from styleid.images import IMAGE_SUFFIXES, list_images

log = logging.getLogger(__name__)

PHOTO_DIRS = ("photos", "photo", "real", "veridical")
LAYOUTS = ("people", "domains", "competition")
FIX = ("expected <root>/<person>/*.jpg, <root>/photos/<person>/ beside <root>/<renders>/<person>/, "
       "or <root>/train/<person>/ with <root>/test/query and <root>/test/gallery; set data.layout to force one")

# (relative path, person, domain, subset)
Entry = tuple[str, str, str, str]


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir() if p.is_file())


def unwrap(root: Path) -> Path:
    """Archives often wrap everything in one folder: descend while that is all there is."""
    while True:
        entries = [p for p in root.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        only = entries[0] if len(entries) == 1 else None
        if only is None or not only.is_dir() or only.name.lower() in PHOTO_DIRS + ("train", "test") or not _subdirs(only):
            return root
        root = only


def _is_domains(folder: Path) -> bool:
    names = {d.name.lower() for d in _subdirs(folder)}
    return bool(names & set(PHOTO_DIRS)) and len(names) >= 2


def detect(root: Path) -> str:
    names = {d.name.lower() for d in _subdirs(root)}
    if "train" in names and "test" in names:
        return "competition"
    if _is_domains(root):
        return "domains"
    if any(_has_images(d) for d in _subdirs(root)):
        return "people"
    raise DataError(f"{root}: unrecognised dataset layout; {FIX}")


def _people(folder: Path, rel: Path, domain: str, subset: str) -> list[Entry]:
    entries = []
    for person_dir in _subdirs(folder):
        images = list_images(person_dir)
        if not images:
            log.warning("skipped empty folder %s", person_dir)
        entries += [((rel / person_dir.name / p.name).as_posix(), person_dir.name, domain, subset) for p in images]
    return entries


def _test_part(folder: Path, rel: Path, subset: str) -> list[Entry]:
    """A competition test folder: flat files are unlabelled; <person>/ subfolders are ground truth."""
    entries = [((rel / p.name).as_posix(), "", "unknown", subset) for p in list_images(folder)]
    entries += _people(folder, rel, "unknown", subset)
    return entries


def _domains(folder: Path, rel: Path, subset: str) -> list[Entry]:
    """photos/<person>/* beside <renders|caricatures|...>/<person>/*: the folder names mark the domain."""
    dirs = _subdirs(folder)
    photo_dirs = [d for d in dirs if d.name.lower() in PHOTO_DIRS]
    if not photo_dirs:
        raise DataError(f"{folder}: layout 'domains' needs a photos/ folder beside the renders; {FIX}")
    entries = []
    for d in dirs:
        entries += _people(d, rel / d.name, "photo" if d in photo_dirs else "render", subset)
    return entries


def scan(root: Path, layout: str = "auto") -> tuple[str, list[Entry]]:
    """Return (layout, entries) for the dataset at `root`."""
    if layout == "auto":
        layout = detect(root)
    if layout == "people":
        entries = _people(root, Path(), "photo", "")
    elif layout == "domains":
        entries = _domains(root, Path(), "")
    elif layout == "competition":
        test = root / "test"
        for need in (root / "train", test / "query", test / "gallery"):
            if not need.is_dir():
                raise DataError(f"{need}: missing; the competition layout needs train/, test/query/ and test/gallery/")
        train = root / "train"
        entries = _domains(train, Path("train"), "train") if _is_domains(train) else _people(train, Path("train"), "unknown", "train")
        entries += _test_part(test / "query", Path("test/query"), "query")
        entries += _test_part(test / "gallery", Path("test/gallery"), "gallery")
    else:
        raise DataError(f"data.layout: unknown layout {layout!r}; choose auto, {', '.join(LAYOUTS)}")
    if not entries:
        raise DataError(f"{root}: no images found ({layout} layout); {FIX}")
    return layout, entries
