"""FAISS indexes built from an index_factory string, with search-time parameters from params."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from styleid.errors import ParamsError
from styleid.fileio import atomic_path


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def build(vectors: np.ndarray, factory: str = "Flat", seed: int = 0) -> faiss.Index:
    """Inner-product index over L2-normalised vectors (= cosine similarity); trained when it needs it."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    try:
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "invalid"
        raise ParamsError(f"index.factory: {factory!r} is not a FAISS index_factory string ({first})") from None
    if not index.is_trained:
        _seed_clustering(index, seed)
        try:
            index.train(vectors)
        except RuntimeError as exc:
            raise ParamsError(f"index.factory: {factory!r} cannot be trained on {len(vectors)} vectors ({str(exc).strip().splitlines()[-1]}); use a smaller IVF/PQ or Flat") from None
    index.add(vectors)
    return index


def _seed_clustering(index: faiss.Index, seed: int) -> None:
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.cp.seed = seed


def set_search_params(index: faiss.Index, nprobe: int, ef_search: int) -> None:
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


def save(index: faiss.Index, path: Path) -> None:
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))


def load(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))
