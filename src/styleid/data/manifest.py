"""The manifest: one row per usable image (path, person, domain, subset, sha1, size, source)."""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from styleid.fileio import atomic_path

TEST = "test"  # the source tag of data.test_source's images
RENDERED = "rendered"  # the source tag of gallery images the split stage renders (under data/stylized/), whatever their names


@dataclass(frozen=True)
class Item:
    path: str  # relative to the dataset root, POSIX separators
    person: str  # identity label ("" when unknown, e.g. an unlabelled competition test file)
    domain: str  # photo | render | unknown
    subset: str  # "" | train | query | gallery (competition layout only)
    sha1: str
    width: int
    height: int
    source: str = ""  # which source's root `path` is relative to: "" (the one source), s0, s1, ... or test


COLUMNS = [f.name for f in fields(Item)]


def write_manifest(path: str | Path, items: list[Item]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            writer.writerows(astuple(item) for item in items)


def read_manifest(path: str | Path) -> list[Item]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return [Item(**{**row, "width": int(row["width"]), "height": int(row["height"]), "source": row.get("source", "")}) for row in reader]


def entry_file(path: str, root: Path) -> Path:
    """Where a split entry's image lives: under its source's root (data/ for rendered galleries, see source_roots)."""
    return root / path


def source_roots(source: dict) -> dict[str, Path]:
    """Source tag -> the folder its manifest paths are relative to (data/source.json), and data/ for rendered galleries."""
    roots = {tag: Path(root) for tag, root in (source.get("roots") or {"": source["root"]}).items()}
    return {**roots, RENDERED: Path("data")}
