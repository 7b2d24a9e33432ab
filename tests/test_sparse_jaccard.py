"""The sparse k-reciprocal Jaccard distance: the dense one's values where they matter, in memory linear in the images."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from styleid.inference.normalize import l2_normalize
from styleid.search import sparse_jaccard
from styleid.search.rerank import jaccard_distance


def _faces(seed: int, people: int, per: int, noise: float, dim: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, dim))
    return l2_normalize(centres[np.repeat(np.arange(people), per)] + noise * rng.normal(size=(people * per, dim))).astype(np.float32)


@pytest.mark.parametrize("k1,k2", [(20, 6), (6, 2), (5, 1)])
def test_sparse_distances_equal_the_dense_ones_up_to_the_cut(k1, k2):
    feats = _faces(0, 40, 6, 0.6)
    dense = jaccard_distance(feats, k1, k2)
    graph = sparse_jaccard.jaccard_graph(feats, k1, k2, keep_upto=0.9).toarray()
    near = dense <= 0.9
    assert np.abs(graph[near] - np.maximum(dense[near], sparse_jaccard.MIN_STORED)).max() < 1e-5
    assert not graph[~near].any()  # nothing past the cut is kept
    assert np.array_equal(graph, graph.T)


def test_dbscan_finds_the_same_clusters_on_the_sparse_graph():
    feats = _faces(1, 30, 5, 0.5)
    dense = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(jaccard_distance(feats, 20, 6))
    sparse = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(sparse_jaccard.jaccard_graph(feats, 20, 6, 0.6))
    assert np.array_equal(dense, sparse) and len(set(dense)) > 10


def test_memory_grows_with_the_images_not_their_square(monkeypatch):
    """Blocks of rows bound the pairs held at once; the graph itself holds a few entries per image."""
    monkeypatch.setattr(sparse_jaccard, "BLOCK_ROWS", 64)  # several blocks: the same answer as one
    feats = _faces(2, 400, 5, 0.5)
    graph = sparse_jaccard.jaccard_graph(feats, 20, 6, 0.6)
    assert graph.nnz < 60 * len(feats)
    monkeypatch.setattr(sparse_jaccard, "BLOCK_ROWS", 4096)
    whole = sparse_jaccard.jaccard_graph(feats, 20, 6, 0.6)
    assert (graph != whole).nnz == 0


def test_the_nearest_lists_start_with_the_image_itself_even_among_duplicates():
    feats = np.repeat(_faces(3, 5, 1, 0.0), 4, axis=0)  # every vector four times
    rank = sparse_jaccard.nearest(feats, 6)
    assert np.array_equal(rank[:, 0], np.arange(len(feats)))
