"""Changing an index without its folder: add images (kept in INDEX/added/, with an optional person label), remove any
image by id, list them. Every change writes the whole index anew and swaps it in one step (fileio.atomic_dir), so a
kill at any moment leaves the last complete index and a reader sees the old one or the new one, never a mix.

A removed folder image stays out when the folder is indexed again (files.json's "excluded"); an added image stays in."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from styleid.errors import StyleidError
from styleid.gallery.folder_index import ADDED, EMBEDDINGS, FolderIndex, write_index
from styleid.images import BadImage, decode_rgb

MAX_LABEL = 200  # characters of a person label
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}


@contextlib.contextmanager
def locked(index_dir: Path) -> Iterator[None]:
    """One change at a time to an index, across processes (a server and the CLI): the next waits for this one to be written."""
    index_dir = Path(index_dir)
    with open(index_dir.parent / f".{index_dir.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rows(index: FolderIndex) -> np.ndarray:
    return np.load(index.index_dir / EMBEDDINGS)


def add_images(index_dir: Path, images: Sequence[tuple[str, bytes]], label: str | None = None, embedder=None) -> list[dict]:
    """Add (name, bytes) images, each as it is (no face crop, as `styleid index` embeds a gallery); returns each one's
    entry (id, path, label). An image already in the index (the same bytes) is not added twice: its entry comes back.
    Refuses the whole call, changing nothing, when one of them is not an image, naming it."""
    if label is not None and (not label.strip() or len(label) > MAX_LABEL or any(c in label for c in "\n\r\t")):
        raise StyleidError(f"label {label[:40]!r}: give a person's name on one line, at most {MAX_LABEL} characters")
    with locked(index_dir):
        return _add(index_dir, images, label, embedder)


def _add(index_dir: Path, images: Sequence[tuple[str, bytes]], label: str | None, embedder) -> list[dict]:
    from PIL import Image

    from styleid.gallery.embedder import PhotoEmbedder

    index = FolderIndex.load(index_dir)
    by_id = {e["id"]: e for e in index.entries}
    decoded, new_files, entries = [], {}, []
    for name, data in images:
        try:
            image = decode_rgb(data)
            kind = Image.open(io.BytesIO(data)).format
        except BadImage as exc:
            raise StyleidError(f"{name}: {exc}; give a JPEG, PNG or WebP image (nothing was added)") from None
        ident = hashlib.sha1(data).hexdigest()[:12]
        if ident in by_id:
            entries.append(by_id[ident])
            continue
        entry = {"path": f"{ADDED}/{ident}{SUFFIXES.get(kind, '.img')}", "size": len(data), "id": ident, "added": True, "name": Path(name).name,
                 **({"label": label.strip()} if label else {})}
        by_id[ident] = entry
        new_files[entry["path"]] = data
        decoded.append(image)
        entries.append(entry)
    if decoded:
        embedder = embedder or PhotoEmbedder.from_card(index.model_dir, align=False)
        rows = np.concatenate([_rows(index), embedder.embed(decoded)])
        fresh = [by_id[Path(path).stem] for path in new_files]  # one entry a new image, in `decoded`'s order
        write_index(index_dir, index.folder, index.entries + fresh, rows, index.model_dir, index.excluded, added_from=index_dir,
                    new_files=new_files)
    return entries


def remove_images(index_dir: Path, ids: Sequence[str]) -> list[dict]:
    """Remove images by id (an added image's file goes with it; a folder image stays in its folder but out of the
    index); returns their entries. An unknown id refuses the whole call, naming it; so does removing every image."""
    with locked(index_dir):
        return _remove(index_dir, ids)


def _remove(index_dir: Path, ids: Sequence[str]) -> list[dict]:
    index = FolderIndex.load(index_dir)
    rows_of = {e["id"]: row for row, e in enumerate(index.entries)}
    if unknown := [i for i in ids if i not in rows_of]:
        raise StyleidError(f"{index_dir}: no image with id {unknown[0]}; `styleid index list {index_dir}` shows the ids (nothing was removed)")
    gone = {rows_of[i] for i in ids}
    if len(gone) == len(index.entries):
        raise StyleidError(f"{index_dir}: removing every image would leave an empty index; keep at least one (nothing was removed)")
    keep = [row for row in range(len(index.entries)) if row not in gone]
    excluded = index.excluded + [index.entries[r]["path"] for r in sorted(gone) if not index.entries[r].get("added")]
    write_index(index_dir, index.folder, [index.entries[r] for r in keep], _rows(index)[keep], index.model_dir, excluded, added_from=index_dir)
    return [index.entries[r] for r in sorted(gone)]


def list_images(index: FolderIndex, offset: int = 0, limit: int = 100) -> dict:
    """A page of the gallery, in index order: total, and each image's id, name, label and whether it was added."""
    if offset < 0 or not 1 <= limit <= 1000:
        raise StyleidError(f"offset {offset}, limit {limit}: give an offset of 0 or more and a limit from 1 to 1000")
    page = [{"row": row, "id": e["id"], "name": e.get("name", e["path"]), "path": e["path"], "label": e.get("label"), "added": bool(e.get("added"))}
            for row, e in enumerate(index.entries[offset : offset + limit], start=offset)]
    return {"total": len(index.entries), "offset": offset, "limit": limit, "images": page}
