"""Embeddings on disk as numbered .npy shards, in row order.

Both embedding engines write this layout and the index stage builds from it shard by shard, so a
gallery of millions never has to sit in one file or, while indexing, in memory at once.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Iterator

import numpy as np

from styleid.errors import StyleidError
from styleid.fileio import atomic_dir

PATTERN = "shard-{:05d}.npy"


class ShardWriter:
    """Collects rows in order and writes a shard every `rows_per_shard`; the folder appears only on success."""

    def __init__(self, directory: str | Path, rows_per_shard: int):
        self.directory, self.rows_per_shard = Path(directory), rows_per_shard
        self._pending: list[np.ndarray] = []
        self._pending_rows = self.rows = self.shards = 0
        self.dim: int | None = None

    def __enter__(self) -> "ShardWriter":
        self._context = atomic_dir(self.directory, "embedding-shards")
        self._tmp = self._context.__enter__()
        return self

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"shards: rows must be 2-d, got shape {vectors.shape}")
        if self.dim is not None and vectors.shape[1] != self.dim and len(vectors):
            raise ValueError(f"shards: rows of width {vectors.shape[1]} after rows of width {self.dim}")
        if len(vectors):
            self.dim = vectors.shape[1]
        self._pending.append(vectors)
        self._pending_rows += len(vectors)
        while self._pending_rows >= self.rows_per_shard:
            self._flush(self.rows_per_shard)

    def _flush(self, n: int) -> None:
        block = np.concatenate(self._pending) if self._pending else np.zeros((0, self.dim or 0), np.float32)
        np.save(self._tmp / PATTERN.format(self.shards), np.ascontiguousarray(block[:n]))
        rest = block[n:]
        self._pending, self._pending_rows = ([rest] if len(rest) else []), len(rest)
        self.shards, self.rows = self.shards + 1, self.rows + n

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is None and (self._pending_rows or self.shards == 0):
            self._flush(self._pending_rows)  # the tail; an empty part still gets one (0, dim) shard
        return self._context.__exit__(kind, value, traceback)


def shard_files(directory: str | Path) -> list[Path]:
    files = sorted(Path(directory).glob("shard-*.npy"))
    if not files:
        raise StyleidError(f"{directory}: no embedding shards; run `dvc repro embed`")
    return files


def iter_shards(directory: str | Path) -> Iterator[np.ndarray]:
    """One shard at a time, memory-mapped (rows are read when used)."""
    for file in shard_files(directory):
        yield np.load(file, mmap_mode="r")


def read(directory: str | Path) -> np.ndarray:
    """Every row, in order, as one float32 array."""
    return read_parts(list(iter_shards(directory)))


def count(directory: str | Path) -> int:
    return sum(len(part) for part in iter_shards(directory))


class Rows:
    """The shards' rows by global row id, read on demand from the memory-mapped shards: a re-ranker that needs
    only its candidates' rows (aqe) reads those and never the whole gallery. np.asarray(rows) reads them all."""

    def __init__(self, directory: str | Path):
        self.parts = list(iter_shards(directory))
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.dim = next((p.shape[1] for p in self.parts if len(p)), 0)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, ids) -> np.ndarray:
        ids = np.asarray(ids)
        flat = ids.reshape(-1)
        out = np.empty((len(flat), self.dim), np.float32)
        shard = np.searchsorted(self.starts, flat, side="right") - 1
        for s in np.unique(shard):
            picked = shard == s
            out[picked] = self.parts[s][flat[picked] - self.starts[s]]
            _release(self.parts[s])
        return out.reshape(*ids.shape, self.dim)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return read_parts(self.parts) if dtype is None else read_parts(self.parts).astype(dtype)


def _release(part: np.ndarray) -> None:
    """Drop a memory-mapped shard's pages from this process's resident memory once its rows are copied (they stay in
    the page cache): re-ranking 10k queries' candidates would otherwise map in most of a large gallery."""
    mapping = getattr(part, "_mmap", None)
    if mapping is not None and hasattr(mapping, "madvise"):
        mapping.madvise(mmap.MADV_DONTNEED)


def read_parts(parts: list[np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
