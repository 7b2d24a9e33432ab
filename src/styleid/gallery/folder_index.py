"""An index of a folder of images: FAISS over their embeddings, kept in sync with the folder.

INDEX/ holds files.json (each image: path relative to the folder, size, mtime), embeddings.npy (one row per
image, L2-normalised), gallery.faiss, and model/ (the model.json and model.onnx it was made with, so searching
needs nothing else). Run again, only new or changed files are embedded; removed ones are dropped. Unreadable
files are skipped with their reason. The folder is replaced in one step: a search never sees half an index.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from styleid.errors import StyleidError
from styleid.fileio import atomic_dir, read_json, write_json
from styleid.images import BadImage, is_image_name, load_rgb

log = logging.getLogger(__name__)

FILES, EMBEDDINGS, FAISS, MODEL = "files.json", "embeddings.npy", "gallery.faiss", "model"


@dataclass
class IndexReport:
    added: int
    changed: int
    removed: int
    kept: int
    skipped: list[tuple[str, str]]  # (file, why)
    seconds: float


def _scan(folder: Path) -> dict[str, dict]:
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and is_image_name(path) and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            stat = path.stat()
            files[path.relative_to(folder).as_posix()] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return files


def _previous(index_dir: Path, model_json: dict) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """The rows an earlier run made with the same model; none when there is no index or its model differs."""
    if not (index_dir / FILES).is_file() or not (index_dir / MODEL / "model.json").is_file():
        return {}, {}
    if read_json(index_dir / MODEL / "model.json") != model_json:
        log.info("index: %s was made with another model; embedding every image again", index_dir)
        return {}, {}
    entries = read_json(index_dir / FILES)["files"]
    rows = np.load(index_dir / EMBEDDINGS)
    return {e["path"]: e for e in entries}, {e["path"]: rows[i] for i, e in enumerate(entries)}


def build_index(folder: Path, index_dir: Path, model_dir: Path, batch_size: int = 32) -> IndexReport:
    """Embed what is new or changed under `folder` with the model in `model_dir` and write `index_dir`."""
    import faiss

    from styleid.gallery.embedder import PhotoEmbedder
    from styleid.search import index as faiss_index

    start = time.perf_counter()
    if not folder.is_dir():
        raise StyleidError(f"{folder}: no such folder")
    model_json = read_json(model_dir / "model.json")
    seen, old_rows = _previous(index_dir, model_json)
    current = _scan(folder)
    if not current:
        raise StyleidError(f"{folder}: no images (.jpg, .png, ...) found")
    unchanged = {p for p, meta in current.items() if p in seen and (seen[p]["size"], seen[p]["mtime_ns"]) == (meta["size"], meta["mtime_ns"])}
    todo = [p for p in current if p not in unchanged]
    skipped: list[tuple[str, str]] = []
    fresh: dict[str, np.ndarray] = {}
    if todo:
        embedder = PhotoEmbedder.from_card(model_dir, align=False)  # gallery images go in as they are (no face crops)
        for lo in range(0, len(todo), batch_size):
            images, names = [], []
            for rel in todo[lo : lo + batch_size]:
                try:
                    images.append(load_rgb(folder / rel))
                    names.append(rel)
                except BadImage as exc:
                    skipped.append((rel, str(exc)))
                    log.warning("index: skipped %s: %s", rel, exc)
            if images:
                fresh.update(zip(names, embedder.embed(images)))
    keep = [p for p in current if p in unchanged or p in fresh]
    if not keep:
        raise StyleidError(f"{folder}: none of its images could be read (first: {skipped[0][0]}: {skipped[0][1]})")
    rows = np.stack([old_rows[p] if p in unchanged else fresh[p] for p in keep]).astype(np.float32)
    index = faiss_index.build(rows)  # exact inner product over unit rows: cosine
    with atomic_dir(index_dir) as tmp:
        write_json(tmp / FILES, {"folder": str(folder.resolve()), "files": [{"path": p, **current[p]} for p in keep]})
        np.save(tmp / EMBEDDINGS, rows)
        faiss.write_index(index, str(tmp / FAISS))
        (tmp / MODEL).mkdir()
        for name in ("model.json", "model.onnx", "card.json"):
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, tmp / MODEL / name)
    changed = sum(1 for p in todo if p in seen and p in fresh)
    return IndexReport(added=sum(1 for p in todo if p not in seen and p in fresh), changed=changed,
                       removed=sum(1 for p in seen if p not in current), kept=len(unchanged), skipped=skipped,
                       seconds=time.perf_counter() - start)


@dataclass
class FolderIndex:
    """A built index, loaded once: search it with embedded photos."""

    folder: Path
    paths: list[str]
    index: object
    model_dir: Path
    card: dict  # the model's card.json ({} without one): its match threshold marks the results

    @classmethod
    def load(cls, index_dir: Path) -> "FolderIndex":
        import faiss

        if not (index_dir / FILES).is_file() or not (index_dir / FAISS).is_file():
            raise StyleidError(f"{index_dir}: not a styleid index; make one with `styleid index FOLDER --out {index_dir}`")
        doc = read_json(index_dir / FILES)
        card = index_dir / MODEL / "card.json"
        return cls(Path(doc["folder"]), [f["path"] for f in doc["files"]], faiss.read_index(str(index_dir / FAISS)), index_dir / MODEL,
                   read_json(card) if card.is_file() else {})

    def search(self, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        from styleid.search import index as faiss_index

        scores, ids = faiss_index.search(self.index, queries, min(top_k, len(self.paths)))
        return ids, scores
