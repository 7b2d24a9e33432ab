"""What styleid may replace: only what it wrote itself.

Every folder styleid writes carries a marker, .styleid.json: its kind, the format version and, for the folders people
keep and move (indexes, exports), each file's size and SHA-256, checked when they are loaded. An existing path is
replaced only when it is a styleid folder of the same kind (another kind with force), an empty folder, or a folder
written before markers whose entries are all of its kind's names. Anything else is refused with one line and left as it
was. A file styleid writes for a person (a panel, a comparison) replaces only a file that `is_ours` recognises.
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from styleid.errors import StyleidError
from styleid.hashing import file_digest

MARKER = ".styleid.json"
VERSION = 1


@dataclass(frozen=True)
class Kind:
    name: str
    legacy: tuple[str, ...]  # the entries (patterns) of such a folder written before markers existed
    required: tuple[str, ...] = ()  # ... of which these must be there for it to count as one
    checksums: bool = False  # record every file's SHA-256 (folders people keep, move and load)
    rebuild: str = "rerun the command that wrote it"  # how to write it again; {path} is the folder


KINDS = {k.name: k for k in (
    Kind("index", ("files.json", "embeddings.npy", "gallery.faiss", "model"), ("files.json", "gallery.faiss"), True,
         "styleid index FOLDER --out {path}"),
    Kind("export", ("model.json", "model.onnx", "card.json", "model.int8.onnx", "model.int8.json"), ("model.json", "model.onnx"), True,
         "styleid export --out {path}"),
    Kind("competition", ("train", "test"), ("test",)),
    Kind("people", ("people.csv", "groups", "summary.json"), ("people.csv",)),
    # the pipeline's own folders: fixed paths that dvc.yaml declares as outputs
    Kind("faiss-parts", ("part-*.faiss",)),
    Kind("embedding-shards", ("shard-*.npy",)),
    Kind("panels", ("q*.png",)),
    Kind("self-trained", ("model.*", "*.json")),
    Kind("synthetic", ("photos", "renders", "train", "test")),
    # data/stylized (not persisted: DVC removes it before the stage runs) and an archive's contents under data/raw: the
    # pipeline's paths, whose earlier contents cannot be told by name
    Kind("stylized", ("*",)),
    Kind("extracted", ("*",)),
)}


def kind_of(name: str) -> Kind:
    if name not in KINDS:
        raise ValueError(f"unknown output kind {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]


def read_marker(folder: Path) -> dict | None:
    """The folder's marker, or None when it has none (or one styleid cannot read)."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("kind"), str) else None


def _a(kind: str) -> str:
    return f"a{'n' if kind[0] in 'aeiou' else ''} {kind}"


def _legacy(folder: Path, kind: Kind) -> bool:
    names = [p.name for p in folder.iterdir()]
    return all(any(fnmatch.fnmatch(n, pat) for pat in kind.legacy) for n in names) and all(r in names for r in kind.required)


def claim(path: Path, kind: str, force: bool = False, flag: str = "--out") -> None:
    """Raise a one-line StyleidError unless styleid may replace `path` with a folder of `kind`."""
    want = kind_of(kind)
    if not os.path.lexists(path):
        return
    keep = f"nothing was changed; give {flag} a new or empty folder"
    if path.is_symlink() or not path.is_dir():
        raise StyleidError(f"{path}: is a file, not a styleid {kind} folder; {keep}")
    marker = read_marker(path)
    if marker is not None:
        added = sorted(p.relative_to(path).as_posix() for p in _files(path)) if "files" in marker else []
        if added := [name for name in added if name not in marker["files"]]:  # a person's own files put in styleid's folder since
            raise StyleidError(f"{path}: holds files styleid did not write ({', '.join(added[:3])}{', ...' if len(added) > 3 else ''}); "
                               f"move them out first; {keep}")
        if marker["kind"] == kind or force:
            return
        raise StyleidError(f"{path}: holds a styleid {marker['kind']}, not {_a(kind)}; pass --force to replace it, or give {flag} another folder")
    entries = sorted(p.name for p in path.iterdir())
    if not entries or _legacy(path, want):
        return
    raise StyleidError(f"{path}: holds files styleid did not write ({', '.join(entries[:3])}{', ...' if len(entries) > 3 else ''}); {keep}")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER)


def write_marker(folder: Path, kind: str) -> None:
    """Mark a finished folder (before it is moved into place) as styleid's `kind`, with checksums where the kind keeps them."""
    marker: dict = {"kind": kind, "version": VERSION}
    if kind_of(kind).checksums:
        marker["files"] = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_digest(p)} for p in _files(folder)}
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def verify(folder: Path, kind: str) -> dict | None:
    """Check a folder styleid wrote against its marker: every recorded file there, of its size and SHA-256. Returns the
    marker (None for a folder written before markers: nothing to check); one line naming the file otherwise."""
    want = kind_of(kind)
    fix = want.rebuild.format(path=folder)
    marker = read_marker(folder)
    if marker is None:
        if (folder / MARKER).exists():
            raise StyleidError(f"{folder / MARKER}: unreadable; the {kind} is damaged, write it again with `{fix}`")
        return None
    if marker["kind"] != kind:
        raise StyleidError(f"{folder}: is a styleid {marker['kind']}, not {_a(kind)}")
    for rel, meta in (marker.get("files") or {}).items():
        path = folder / rel
        if not path.is_file():
            raise StyleidError(f"{path}: missing from the {kind}; write it again with `{fix}`")
        if path.stat().st_size != meta["size"] or file_digest(path) != meta["sha256"]:
            raise StyleidError(f"{path}: is not the file styleid wrote (damaged, truncated or replaced); write the {kind} again with `{fix}`")
    return marker


def claim_file(path: Path, is_ours: Callable[[Path], bool], what: str, flag: str) -> None:
    """Raise unless `path` is free, or a file `is_ours` recognises as styleid's `what` (then it may be replaced)."""
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_file() or not is_ours(path):
        raise StyleidError(f"{path}: exists and is not a styleid {what}; nothing was changed; give {flag} a new file name")


def _inside(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b)


def separate(out: Path, inputs: dict[str, Path], flag: str = "--out") -> None:
    """Refuse an output folder that is, contains or lies inside one of `inputs` (name -> path): replacing it would
    delete what it reads."""
    real = Path(os.path.realpath(out))
    for name, path in inputs.items():
        other = Path(os.path.realpath(path))
        if _inside(real, other) or _inside(other, real):
            where = "is" if real == other else "is inside" if _inside(real, other) else "contains"
            raise StyleidError(f"{out}: {where} {name} {path}; nothing was changed; give {flag} a folder outside it")


def pipeline_outputs(start: Path | None = None) -> tuple[Path, list[Path]] | None:
    """The enclosing DVC repository's root and what its pipeline owns (models/ and every output dvc.yaml declares),
    as real paths; None outside one."""
    import yaml

    here = Path(os.path.realpath(start or Path.cwd()))
    for root in (here, *here.parents):
        if (root / "dvc.yaml").is_file():
            try:
                doc = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError):
                doc = {}
            outs = [root / "models"]
            for stage in (doc.get("stages") or {}).values():
                for out in (stage or {}).get("outs") or []:
                    outs.append(root / (next(iter(out)) if isinstance(out, dict) else str(out)))
            return root, [Path(os.path.realpath(p)) for p in outs]
    return None


def outside_pipeline(out: Path, flag: str = "--out") -> None:
    """Refuse an output folder inside models/ or any output of the repository's pipeline (or one holding them):
    `dvc repro` and `dvc checkout` replace those, and the command would replace what the pipeline made."""
    found = pipeline_outputs(Path(os.path.realpath(out)))
    if found is None:
        return
    real = Path(os.path.realpath(out))
    for owned in found[1]:
        if _inside(real, owned) or _inside(owned, real):
            raise StyleidError(f"{out}: {'is inside' if _inside(real, owned) else 'holds'} the pipeline's {owned.relative_to(found[0])} "
                               f"(dvc repro replaces it); nothing was changed; give {flag} a folder outside it")
