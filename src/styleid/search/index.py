"""FAISS indexes from an index_factory string: built per shard, merged or searched as IndexShards, tuned from params."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import faiss
import numpy as np

from styleid.errors import ParamsError, StyleidError
from styleid.fileio import atomic_dir

PART = "part-{:03d}.faiss"
TRAIN_ROWS = 200_000  # most vectors an IVF/PQ index trains on (FAISS wants 39-256 per centroid)


def build(vectors: np.ndarray, factory: str = "Flat", seed: int = 0) -> faiss.Index:
    """Inner-product index over L2-normalised vectors (= cosine similarity); trained when it needs it."""
    return build_sharded([vectors], factory, seed)[0]


def build_sharded(parts: Sequence[np.ndarray], factory: str = "Flat", seed: int = 0, shards: int = 1,
                  merge: bool = True) -> list[faiss.Index]:
    """Indexes over the rows of `parts` (embedding shards, in order), split into `shards` contiguous ranges.

    One trained template (IVF centroids, PQ codebooks) is cloned for every shard, so the shards share
    their coarse quantizer: merged, they equal an index built in one go; unmerged, an IndexShards over
    them (see load) searches them together with global row ids.
    """
    total = sum(len(p) for p in parts)
    if total == 0:
        raise StyleidError("index: the gallery has no embeddings; check the split and `dvc repro embed`")
    if shards > total:
        raise ParamsError(f"index.shards: {shards} shards for {total} gallery vectors; lower it")
    template = _create(parts[0].shape[1], factory)
    if not template.is_trained:
        _seed_clustering(template, seed)
        sample = _training_sample(parts, total, seed)
        try:
            template.train(sample)
        except RuntimeError as exc:
            raise ParamsError(f"index.factory: {factory!r} cannot be trained on {len(sample)} vectors ({str(exc).strip().splitlines()[-1]}); use a smaller IVF/PQ or Flat") from None
    bounds = np.linspace(0, total, shards + 1).round().astype(int)
    indexes = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        index = faiss.clone_index(template)
        for rows in _row_range(parts, lo, hi):
            index.add(np.ascontiguousarray(rows, dtype=np.float32))
        indexes.append(index)
    return [_merge(indexes, factory)] if merge and len(indexes) > 1 else indexes


def _create(dim: int, factory: str) -> faiss.Index:
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "invalid"
        raise ParamsError(f"index.factory: {factory!r} is not a FAISS index_factory string ({first})") from None


def _training_sample(parts: Sequence[np.ndarray], total: int, seed: int) -> np.ndarray:
    """Every row when they fit TRAIN_ROWS (the result then matches a one-go build), else a seeded sample."""
    if total <= TRAIN_ROWS:
        return np.ascontiguousarray(np.concatenate([np.asarray(p) for p in parts]), dtype=np.float32)
    wanted = np.sort(np.random.default_rng(seed).choice(total, TRAIN_ROWS, replace=False))
    picked, offset = [], 0
    for part in parts:
        local = wanted[(wanted >= offset) & (wanted < offset + len(part))] - offset
        picked.append(np.asarray(part[local]))
        offset += len(part)
    return np.ascontiguousarray(np.concatenate(picked), dtype=np.float32)


def _row_range(parts: Sequence[np.ndarray], lo: int, hi: int) -> Iterator[np.ndarray]:
    """Rows lo..hi of the concatenated parts, one part's slice at a time (never all in memory)."""
    offset = 0
    for part in parts:
        start, stop = max(lo - offset, 0), min(hi - offset, len(part))
        if start < stop:
            yield part[start:stop]
        offset += len(part)


def _merge(indexes: list[faiss.Index], factory: str) -> faiss.Index:
    merged = indexes[0]
    for other in indexes[1:]:
        # IVF lists store ids: shift the other's by what is already in; flat codes are numbered by position
        shift = merged.ntotal if faiss.try_extract_index_ivf(merged) is not None else 0
        try:
            merged.merge_from(other, shift)
        except RuntimeError:
            raise ParamsError(f"index.merge: FAISS cannot merge {factory!r} indexes; set index.merge: false to search "
                              "the shards together (IndexShards), or index.shards: 1") from None
    return merged


def _seed_clustering(index: faiss.Index, seed: int) -> None:
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.cp.seed = seed


def set_search_params(index: faiss.Index, nprobe: int, ef_search: int) -> None:
    if isinstance(index, faiss.IndexShards):
        for i in range(index.count()):
            set_search_params(faiss.downcast_index(index.at(i)), nprobe, ef_search)
        return
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = nprobe
    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = ef_search


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices), each n_queries x k; results past the gallery's end are dropped by the caller."""
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids


def save(indexes: faiss.Index | Sequence[faiss.Index], directory: Path) -> None:
    """One file per shard (part-000.faiss, ...) in a folder that appears only when all are written."""
    indexes = [indexes] if isinstance(indexes, faiss.Index) else list(indexes)
    with atomic_dir(directory, "faiss-parts") as tmp:
        for i, index in enumerate(indexes):
            faiss.write_index(index, str(tmp / PART.format(i)))


def load(directory: Path) -> faiss.Index:
    """The saved index; several parts come back as one IndexShards whose ids run over the parts in order."""
    files = sorted(Path(directory).glob("part-*.faiss"))
    if not files:
        raise StyleidError(f"{directory}: no index parts; run `dvc repro index`")
    if len(files) == 1:
        return faiss.read_index(str(files[0]))
    parts = [faiss.read_index(str(f)) for f in files]
    sharded = faiss.IndexShards(parts[0].d, True, True)  # threaded search, successive ids
    for part in parts:
        sharded.add_shard(part)  # the python wrapper keeps each part alive with the IndexShards
    return sharded
