"""What stages share: artifact paths, the one-line-error runner, and reading earlier artifacts."""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from styleid.errors import StyleidError
from styleid.fileio import read_json
from styleid.params import READS_ENV, record_reads, save_reads

RAW = Path("data/raw")
CACHE = Path("data/cache")
MANIFEST = Path("data/manifest.csv")
SOURCE = Path("data/source.json")
SPLITS = Path("data/splits.json")
STYLIZED = Path("data/stylized")
ALIGNED = Path("data/aligned")
ALIGNED_INDEX = ALIGNED / "index.json"
DOMAINS = Path("data/domains.json")  # inferred photo/render labels of unmarked training images
MODEL_DIR = Path("models")
EMBEDDINGS = Path("data/embeddings")
INDEX = Path("models/index")  # part-000.faiss, ... (several = IndexShards)
INDEX_IDS = Path("models/gallery_ids.json")
RETRIEVED = Path("data/retrieved.npz")
SUBMISSION = Path("submission.json")
METRICS = Path("metrics")
PLOTS = Path("plots")


def setup_logging() -> None:
    level = logging.DEBUG if os.environ.get("STYLEID_DEBUG") else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    for noisy in ("PIL", "matplotlib", "urllib3", "filelock", "timm", "faiss", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def stage(fn: Callable) -> Callable:
    """Run a stage; a StyleidError (or a missing input) is one line on stderr and exit code 1.

    STYLEID_DEBUG=1 shows the full traceback instead.
    """

    name = fn.__name__.removesuffix("_stage")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        setup_logging()
        if os.environ.get(READS_ENV):
            record_reads()
        try:
            result = fn(*args, **kwargs)
            save_reads(name)
            return result
        except (StyleidError, FileNotFoundError) as exc:
            if os.environ.get("STYLEID_DEBUG"):
                raise
            message = str(exc) if isinstance(exc, StyleidError) else f"{exc.filename}: missing; run `dvc repro {name}` to build what it needs"
            print(f"styleid {name}: error: {message}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print(f"styleid {name}: interrupted; outputs were left as they were", file=sys.stderr)
            raise SystemExit(130) from None
        except Exception as exc:  # the last resort: a bug or an input nobody foresaw is still one line
            if os.environ.get("STYLEID_DEBUG"):
                raise
            text = " ".join(str(exc).split())
            text = text if len(text) <= 300 else text[:297] + "..."
            print(f"styleid {name}: unexpected error: {type(exc).__name__}: {text} (rerun with STYLEID_DEBUG=1 for the traceback, "
                  "and please report it)", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper


def entry_file(path: str, root: Path) -> Path:
    """Where a split entry's image lives: under its source's root (data/ for rendered galleries, see source_roots)."""
    return root / path


def source_roots(source: dict) -> dict[str, Path]:
    """Source tag -> the folder its manifest paths are relative to (data/source.json), and data/ for rendered galleries."""
    roots = {tag: Path(root) for tag, root in (source.get("roots") or {"": source["root"]}).items()}
    return {**roots, "rendered": Path("data")}


def display_name(path: str) -> str:
    """The name a submission uses: relative to test/query or test/gallery for the competition layout."""
    for prefix in ("test/query/", "test/gallery/"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def load_split(aligned: bool = True) -> dict:
    """splits.json; with `aligned`, each entry's "image" is what the model reads (its face crop when align is on)."""
    split = read_json(SPLITS)
    crops = read_json(ALIGNED_INDEX)["crops"] if aligned and ALIGNED_INDEX.is_file() else {}
    for value in split.values():
        if isinstance(value, list):
            for entry in value:
                entry["image"] = crops.get(entry["file"], entry["file"])
    return split
