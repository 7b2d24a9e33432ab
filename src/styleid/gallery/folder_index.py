"""An index of a folder of images: FAISS over their embeddings, kept in sync with the folder.

INDEX/ holds files.json (each image: path relative to the folder, size, mtime), embeddings.npy (one row per
image, L2-normalised), gallery.faiss, model/ (the model.json and model.onnx it was made with, so searching
needs nothing else) and .styleid.json (each file's SHA-256, checked on load with the counts and dimensions).
Run again, only new or changed files are embedded; removed ones are dropped. Unreadable files, and names that are
not UTF-8, are skipped with their reason. The folder is replaced in one step: a search never sees half an index.
INDEX is never the gallery folder, inside it or around it, and is replaced only when it is styleid's own index.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from styleid import ownership
from styleid.errors import StyleidError
from styleid.fileio import atomic_dir, read_json, sweep_stale, write_json
from styleid.gallery.model_dir import check_model
from styleid.images import BadImage, is_image_name, load_rgb
from styleid.inference.onnx_session import copy_model_files

log = logging.getLogger(__name__)

FILES, EMBEDDINGS, FAISS, MODEL = "files.json", "embeddings.npy", "gallery.faiss", "model"
ADDED = "added"  # INDEX/added/: images added through `styleid index add` or POST /gallery, kept by the index itself


def image_id(path: str) -> str:
    """A folder image's id: stable across runs, as its path is (an added image's id is its content's, gallery/edit.py)."""
    return hashlib.sha1(f"folder:{path}".encode()).hexdigest()[:12]


@dataclass
class IndexReport:
    added: int
    changed: int
    removed: int
    kept: int
    skipped: list[tuple[str, str]]  # (file, why)
    seconds: float


def _scan(folder: Path) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """Every image under `folder` at any depth (a loop, not recursion), hidden names and linked folders left out:
    {relative path: size and mtime}, and the files skipped with why."""
    files, skipped, stack = {}, [], [("", str(folder))]
    while stack:
        rel, where = stack.pop()
        try:
            entries = list(os.scandir(where))
        except OSError as exc:
            skipped.append((rel or ".", f"folder not readable ({exc.strerror})"))
            continue
        for entry in entries:
            name = f"{rel}{entry.name}"
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((name + "/", entry.path))
            elif entry.is_file() and is_image_name(Path(entry.name)):
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    skipped.append((name.encode("utf-8", "backslashreplace").decode(), "its name is not valid UTF-8; rename the file"))
                    continue
                stat = entry.stat()
                files[name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return {name: files[name] for name in sorted(files, key=lambda n: n.split("/"))}, skipped


def _previous(index_dir: Path, model_json: dict) -> tuple[dict[str, dict], dict[str, np.ndarray], list[tuple[dict, np.ndarray]], list[str]]:
    """The rows an earlier run made with the same model, the added images with theirs, and the folder images removed
    by hand (not indexed again); none when there is no index, its model differs, or it is damaged (then every image
    is embedded again, and added images are kept only from an intact index)."""
    if not (index_dir / FILES).is_file() or not (index_dir / MODEL / "model.json").is_file():
        return {}, {}, [], []
    try:
        ownership.verify(index_dir, "index")
        doc = read_json(index_dir / FILES)
        entries, excluded = doc["files"], list(doc.get("excluded", []))
        added = [e for e in entries if e.get("added")]
        if read_json(index_dir / MODEL / "model.json") != model_json:
            if added:
                raise StyleidError(f"{index_dir}: holds {len(added)} added images, made with another model; index into a new folder")
            log.info("index: %s was made with another model; embedding every image again", index_dir)
            return {}, {}, [], excluded
        rows = np.load(index_dir / EMBEDDINGS)
        if len(rows) != len(entries):
            raise StyleidError(f"{index_dir / EMBEDDINGS}: {len(rows)} rows for {len(entries)} files")
        folder_rows = [(e, rows[i]) for i, e in enumerate(entries) if not e.get("added")]
        return ({e["path"]: e for e, _ in folder_rows}, {e["path"]: r for e, r in folder_rows},
                [(e, rows[i]) for i, e in enumerate(entries) if e.get("added")], excluded)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("index: the existing index is damaged (%s); embedding every image again", exc)
        return {}, {}, [], []


def write_index(index_dir: Path, folder: Path, entries: list[dict], rows: np.ndarray, model_dir: Path, excluded: list[str],
                added_from: Path | None = None, new_files: dict[str, bytes] | None = None, force: bool = False) -> None:
    """INDEX as one whole, replacing the old one in one step: entries (files.json), their rows, FAISS over them, the
    model, and the added images (linked from `added_from`, the index being replaced, or written from `new_files`)."""
    import faiss

    from styleid.search import index as faiss_index

    index = faiss_index.build(rows.astype(np.float32))  # exact inner product over unit rows: cosine
    with atomic_dir(index_dir, "index", force=force) as tmp:
        write_json(tmp / FILES, {"folder": str(folder.resolve()), "files": entries, "excluded": sorted(set(excluded))})
        np.save(tmp / EMBEDDINGS, rows.astype(np.float32))
        faiss.write_index(index, str(tmp / FAISS))
        (tmp / MODEL).mkdir()
        copy_model_files(model_dir, tmp / MODEL)  # int8 where the card allows
        for rel in (e["path"] for e in entries if e.get("added")):
            (tmp / rel).parent.mkdir(exist_ok=True)
            if new_files and rel in new_files:
                (tmp / rel).write_bytes(new_files[rel])
            else:
                os.link(added_from / rel, tmp / rel)  # never changed once written: a link, not a copy


def build_index(folder: Path, index_dir: Path, model_dir: Path, batch_size: int = 32, force: bool = False) -> IndexReport:
    """Embed what is new or changed under `folder` with the model in `model_dir` and write `index_dir` (force: even over
    another kind of styleid folder)."""
    from styleid.gallery.embedder import PhotoEmbedder

    start = time.perf_counter()
    if not folder.is_dir():
        raise StyleidError(f"{folder}: no such folder")
    ownership.separate(index_dir, {"the gallery folder": folder})
    ownership.outside_pipeline(index_dir)
    ownership.claim(index_dir, "index", force)
    check_model(model_dir)
    model_json = read_json(model_dir / "model.json")
    seen, old_rows, added, excluded = _previous(index_dir, model_json)
    current, skipped = _scan(folder)
    current = {p: meta for p, meta in current.items() if p not in set(excluded)}  # removed by hand: stays out
    for rel, why in skipped:
        log.warning("index: skipped %s: %s", rel, why)
    if not current and not added:
        raise StyleidError(f"{folder}: no images (.jpg, .png, ...) found")
    unchanged = {p for p, meta in current.items() if p in seen and (seen[p]["size"], seen[p]["mtime_ns"]) == (meta["size"], meta["mtime_ns"])}
    todo = [p for p in current if p not in unchanged]
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
    if not keep and not added:
        raise StyleidError(f"{folder}: none of its images could be read (first: {skipped[0][0]}: {skipped[0][1]})")
    entries = [{"path": p, **current[p], "id": image_id(p), **({"label": seen[p]["label"]} if "label" in seen.get(p, {}) else {})} for p in keep]
    rows = np.stack([old_rows[p] if p in unchanged else fresh[p] for p in keep] + [row for _, row in added])
    write_index(index_dir, folder, entries + [e for e, _ in added], rows, model_dir, excluded, added_from=index_dir, force=force)
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
    index_dir: Path
    entries: list[dict]  # files.json's, row by row: path, id, label and added where they apply
    excluded: list[str]  # folder images removed by hand, kept out when the folder is indexed again

    @classmethod
    def load(cls, index_dir: Path) -> "FolderIndex":
        """The index, checked whole: its files as styleid wrote them, and as many rows as files, of its model's width."""
        import faiss

        sweep_stale(index_dir)  # a version a killed update was replacing goes back in place
        if not (index_dir / FILES).is_file() or not (index_dir / FAISS).is_file():
            raise StyleidError(f"{index_dir}: not a styleid index; make one with `styleid index FOLDER --out {index_dir}`")
        fix = f"write it again with `styleid index FOLDER --out {index_dir}`"
        ownership.verify(index_dir, "index")
        try:
            doc = read_json(index_dir / FILES)
            folder, entries = Path(doc["folder"]), [dict(f, path=str(f["path"])) for f in doc["files"]]
            for entry in entries:
                entry.setdefault("id", image_id(entry["path"]))  # indexes written before ids
            fix = f"write it again with `styleid index {folder} --out {index_dir}`"
            spec = read_json(index_dir / MODEL / "model.json")
            width = int(spec.get("embed_dim") or spec["feature_dim"])
            card = read_json(index_dir / MODEL / "card.json") if (index_dir / MODEL / "card.json").is_file() else {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StyleidError(f"{index_dir}: its files.json or model/ is damaged ({type(exc).__name__}); {fix}") from None
        try:
            index = faiss.read_index(str(index_dir / FAISS))
        except RuntimeError:
            raise StyleidError(f"{index_dir / FAISS}: not a FAISS index styleid can read; {fix}") from None
        if index.ntotal != len(entries) or index.d != width:
            raise StyleidError(f"{index_dir / FAISS}: {index.ntotal} vectors of {index.d} numbers, but files.json lists {len(entries)} "
                               f"images and the model makes {width}; {fix}")
        return cls(folder, [e["path"] for e in entries], index, index_dir / MODEL, card, Path(index_dir), entries, list(doc.get("excluded", [])))

    def file(self, row: int) -> Path:
        """Where gallery image `row` is: in the gallery folder, or in the index for an added one."""
        return (self.index_dir if self.entries[row].get("added") else self.folder) / self.paths[row]

    def search(self, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        from styleid.search import index as faiss_index

        scores, ids = faiss_index.search(self.index, queries, min(top_k, len(self.paths)))
        return ids, scores
