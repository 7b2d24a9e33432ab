"""The k-reciprocal Jaccard distance (Zhong et al. 2017) in bounded memory, for galleries of any size.

The same steps as rerank.jaccard_distance (k-reciprocal sets from each image's k1 nearest, their expansion by the
half-size sets of their members, exp(-distance) weights, averaging over the k2 nearest, Jaccard of the weight
vectors), on sparse matrices: the nearest neighbours come from FAISS, every neighbourhood is a sparse row, and a
Jaccard distance is computed only between images whose neighbourhoods share an image (all others are 1) and kept
only up to `keep_below`. Memory grows with n times the neighbourhood sizes, never with n squared.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

BLOCK_ROWS = 1024  # rows whose Jaccard distances are summed at once: bounds the pairs held in memory
PAIR_BLOCK = 1 << 16  # pairs whose two vectors are gathered at once (2 x 65,536 x dim floats)
MIN_STORED = 1e-9  # a Jaccard distance of 0 as stored (a sparse matrix has no explicit zeros)


def nearest(feats: np.ndarray, k: int) -> np.ndarray:
    """Each L2-normalised row's k nearest rows by cosine (itself first), exact (FAISS IndexFlatIP): an n x k array."""
    import faiss

    index = faiss.IndexFlatIP(feats.shape[1])
    index.add(feats)
    _, ids = index.search(feats, k)
    order = np.argsort(ids != np.arange(len(feats))[:, None], axis=1, kind="stable")  # itself first, as argsort of distances has it
    return np.take_along_axis(ids, order, axis=1)


def _pattern(rank: np.ndarray, k: int) -> sparse.csr_matrix:
    n = len(rank)
    cols = rank[:, : k + 1]
    return sparse.csr_matrix((np.ones(cols.size, np.float32), (np.repeat(np.arange(n), cols.shape[1]), cols.ravel())), shape=(n, n))


def _reciprocal(rank: np.ndarray, k: int) -> sparse.csr_matrix:
    """R[i, j] = 1 when j is among i's k+1 nearest and i among j's."""
    top = _pattern(rank, k)
    return top.multiply(top.T).tocsr()


def encoding(feats: np.ndarray, k1: int, k2: int) -> sparse.csr_matrix:
    """Every image's expanded k-reciprocal neighbourhood as exp(-distance) weights summing to 1, averaged over its k2
    nearest: a sparse n x n matrix."""
    n = len(feats)
    k1 = min(k1, n - 1)
    rank = nearest(feats, k1 + 1)
    recip, half = _reciprocal(rank, k1), _reciprocal(rank, int(round(k1 / 2)))
    shared = (recip @ half.T).multiply(recip).tocsr()  # |R_half(j) & R(i)| for each j in R(i)
    sizes = np.asarray(half.sum(axis=1)).ravel()
    shared = shared.tocoo()
    rows, cols = shared.row, shared.col
    taken = shared.data > 2 / 3 * sizes[cols]
    chosen = sparse.csr_matrix((np.ones(taken.sum(), np.float32), (rows[taken], cols[taken])), shape=(n, n))
    expanded = ((recip + chosen @ half) > 0).tocoo()
    dist = np.empty(expanded.nnz, np.float32)
    for lo in range(0, expanded.nnz, PAIR_BLOCK):  # 2 - 2 cos for each kept pair, a block at a time
        r, c = expanded.row[lo : lo + PAIR_BLOCK], expanded.col[lo : lo + PAIR_BLOCK]
        dist[lo : lo + len(r)] = np.maximum(2.0 - 2.0 * np.einsum("ij,ij->i", feats[r], feats[c]), 0.0)
    weights = sparse.csr_matrix((np.exp(-dist), (expanded.row, expanded.col)), shape=(n, n))
    weights = sparse.diags(1.0 / np.maximum(np.asarray(weights.sum(axis=1)).ravel(), 1e-12)) @ weights  # an empty row (exact duplicates) stays empty
    if k2 > 1:
        weights = _pattern(rank, k2 - 1).multiply(1.0 / k2) @ weights  # the mean over the k2 nearest (itself included)
    return weights.astype(np.float32).tocsr()


def jaccard_graph(feats: np.ndarray, k1: int, k2: int, keep_upto: float) -> sparse.csr_matrix:
    """The k-reciprocal Jaccard distances up to `keep_upto` as a sparse symmetric n x n matrix (absent pairs are farther;
    a distance of 0 is stored as MIN_STORED, since a sparse matrix drops zeros): what DBSCAN takes as a precomputed graph."""
    feats = np.ascontiguousarray(feats, np.float32)
    v = encoding(feats, k1, k2)
    by_column = v.tocsc()
    n = len(feats)
    blocks = []
    for lo in range(0, n, BLOCK_ROWS):
        block = v[lo : lo + BLOCK_ROWS].tocoo()
        starts, ends = by_column.indptr[block.col], by_column.indptr[block.col + 1]
        counts = ends - starts
        holder_at = np.repeat(starts - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(counts.sum())
        overlap = np.minimum(np.repeat(block.data, counts), by_column.data[holder_at])
        pairs = sparse.coo_matrix((overlap, (np.repeat(block.row, counts), by_column.indices[holder_at])), shape=(len(range(lo, min(lo + BLOCK_ROWS, n))), n)).tocsr()
        pairs.sum_duplicates()
        jaccard = 1.0 - pairs.data / (2.0 - pairs.data)
        keep = jaccard <= keep_upto
        rows = np.repeat(np.arange(pairs.shape[0]), np.diff(pairs.indptr))[keep] + lo
        blocks.append((rows, pairs.indices[keep], np.clip(jaccard[keep], MIN_STORED, 1.0)))
    rows, cols, data = (np.concatenate(part) for part in zip(*blocks))
    graph = sparse.coo_matrix((data, (rows, cols)), shape=(n, n)).tocsr()
    return graph.maximum(graph.T).tocsr()  # symmetric to the last bit (a pair at the cut can round to either side)
