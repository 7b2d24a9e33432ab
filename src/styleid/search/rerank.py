"""Re-ranking after the index search, on L2-normalised embeddings.

- aqe: alpha-weighted query expansion (Radenovic et al., 2018): the query moves towards its
  top-k gallery images, weighted by similarity ** alpha, and the candidates are scored again.
- kreciprocal: k-reciprocal encoding (Zhong et al., 2017): two images are close when their
  k-reciprocal neighbourhoods overlap (Jaccard distance), blended with the original distance.
  It needs all query and gallery vectors at once, so it is for galleries up to tens of thousands.
- kreciprocal_local: the same encoding inside each query's own list (the query and its `depth`
  candidates), vectorised over blocks of queries: memory and time per query stay fixed whatever the
  gallery's size (a 1M gallery works), at the price of neighbourhoods that see only those candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from styleid.errors import ParamsError
from styleid.inference.normalize import l2_normalize
from styleid.registry import Registry

RERANKERS: Registry = Registry("re-ranker")  # retrieve.rerank chooses: name -> fn(queries, gallery, candidates, settings) -> candidates

KRECIPROCAL_MAX = 20_000  # queries + gallery images; the method builds an n x n matrix


def aqe(queries: np.ndarray, gallery: np.ndarray, candidates: np.ndarray, k: int, alpha: float) -> np.ndarray:
    """Reorder each query's candidate gallery rows (n_q, depth) after alpha query expansion."""
    top = candidates[:, :k]
    sims = np.einsum("qd,qkd->qk", queries, gallery[top])
    weights = np.maximum(sims, 0.0) ** alpha
    expanded = l2_normalize(queries + np.einsum("qk,qkd->qd", weights, gallery[top]))
    scores = np.einsum("qd,qcd->qc", expanded, gallery[candidates])
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1)


def _reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = rank[i, : k + 1]
    backward = rank[forward, : k + 1]
    return forward[(backward == i).any(axis=1)]


def _check_size(n: int) -> None:
    if n > KRECIPROCAL_MAX:  # checked before the gallery is read (it may be a lazy shards.Rows)
        raise ParamsError(f"retrieve.rerank: kreciprocal needs an n x n matrix; {n} images is over {KRECIPROCAL_MAX}; "
                          "use kreciprocal_local or aqe")


def _encoding(feats: np.ndarray, k1: int, k2: int) -> tuple[np.ndarray, np.ndarray]:
    """(v, dist): every image's k-reciprocal neighbourhood as weights over all n images (n x n), and the squared distances."""
    n = len(feats)
    dist = np.maximum(2.0 - 2.0 * feats @ feats.T, 0.0)
    k1 = min(k1, n - 1)
    rank = np.argsort(dist, axis=1, kind="stable")[:, : k1 + 1]
    v = np.zeros((n, n), np.float32)
    half = int(round(k1 / 2))
    for i in range(n):
        recip = _reciprocal(rank, i, k1)
        expansion = recip
        for j in recip:
            candidate = _reciprocal(rank, j, half)
            if len(np.intersect1d(candidate, recip)) > 2 / 3 * len(candidate):
                expansion = np.union1d(expansion, candidate)
        expansion = np.unique(expansion)
        weight = np.exp(-dist[i, expansion])
        v[i, expansion] = weight / weight.sum()
    if k2 > 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    return v, dist


def _jaccard(v: np.ndarray, rows: int) -> np.ndarray:
    """Jaccard distance between the first `rows` images' neighbourhoods and every image's (rows x n)."""
    n = len(v)
    holders = [np.nonzero(v[:, j])[0] for j in range(n)]
    jaccard = np.zeros((rows, n), np.float32)
    for i in range(rows):
        overlap = np.zeros(n, np.float32)
        for j in np.nonzero(v[i])[0]:
            overlap[holders[j]] += np.minimum(v[i, j], v[holders[j], j])
        jaccard[i] = 1.0 - overlap / (2.0 - overlap)
    return jaccard


def kreciprocal_distance(queries: np.ndarray, gallery: np.ndarray, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    """Query x gallery distance after k-reciprocal re-ranking (smaller is closer)."""
    n_q = len(queries)
    _check_size(n_q + len(gallery))
    feats = np.concatenate([queries, np.asarray(gallery)]).astype(np.float32)
    v, dist = _encoding(feats, k1, k2)
    original = (dist / np.maximum(dist.max(axis=0, keepdims=True), 1e-12)).T
    final = _jaccard(v, n_q) * (1 - lambda_value) + original[:n_q] * lambda_value
    return final[:, n_q:]


def jaccard_distance(feats: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """The k-reciprocal Jaccard distance between every pair of `feats` (n x n, symmetric, 0 on the diagonal)."""
    _check_size(len(feats))
    v, _ = _encoding(np.asarray(feats, np.float32), k1, k2)
    jaccard = _jaccard(v, len(v))
    jaccard = np.clip((jaccard + jaccard.T) / 2, 0.0, 1.0)  # rounding leaves -1e-7s that DBSCAN refuses
    np.fill_diagonal(jaccard, 0.0)
    return jaccard


def kreciprocal(queries: np.ndarray, gallery: np.ndarray, candidates: np.ndarray, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    dist = kreciprocal_distance(queries, gallery, k1, k2, lambda_value)
    scores = np.take_along_axis(dist, candidates, axis=1)
    order = np.argsort(scores, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1)


def _reciprocal_sets(rank: np.ndarray, k: int) -> np.ndarray:
    """(B, m, m) bool: j is among i's k+1 nearest and i among j's, per block item."""
    m = rank.shape[-1]
    top = np.zeros(rank.shape[:2] + (m,), bool)
    np.put_along_axis(top, rank[:, :, : k + 1], True, axis=2)
    return top & top.transpose(0, 2, 1)


def kreciprocal_local(queries: np.ndarray, gallery: np.ndarray, candidates: np.ndarray, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    """Reorder each query's candidates by k-reciprocal re-ranking within {query} + its candidates, as kreciprocal_distance
    does over every image (same steps, vectorised: reciprocal sets, their expansion, weights, k2 averaging, Jaccard)."""
    feats = np.concatenate([queries[:, None, :], gallery[candidates]], axis=1).astype(np.float32)  # (B, m, d), row 0 the query
    m = feats.shape[1]
    dist = np.maximum(2.0 - 2.0 * feats @ feats.transpose(0, 2, 1), 0.0)
    original = dist[:, 0, :] / np.maximum(dist[:, 0, :].max(axis=1, keepdims=True), 1e-12)
    k1 = min(k1, m - 1)
    rank = np.argsort(dist, axis=2, kind="stable")
    recip, half = _reciprocal_sets(rank, k1).astype(np.float32), _reciprocal_sets(rank, int(round(k1 / 2))).astype(np.float32)
    # j in R(i) adds its half-size set R'(j) when more than 2/3 of R'(j) lies in R(i)
    shared = recip @ half.transpose(0, 2, 1)
    adds = (recip > 0) & (shared > 2 / 3 * half.sum(axis=2)[:, None, :])
    expansion = (recip > 0) | (adds.astype(np.float32) @ half > 0)
    v = np.where(expansion, np.exp(-dist), 0.0).astype(np.float32)
    v /= v.sum(axis=2, keepdims=True)
    if k2 > 1:
        v = v[np.arange(len(v))[:, None, None], rank[:, :, :k2]].mean(axis=2)
    overlap = np.minimum(v[:, :1, :], v).sum(axis=2)  # query row vs every row
    jaccard = 1.0 - overlap / (2.0 - overlap)
    final = (jaccard * (1 - lambda_value) + original * lambda_value)[:, 1:]
    order = np.argsort(final, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1)


@dataclass(frozen=True)
class RerankSettings:
    aqe_k: int = 3  # aqe: top gallery images averaged into the query
    aqe_alpha: float = 3.0  # aqe: weight = similarity ** alpha
    k1: int = 20  # kreciprocal: neighbourhood size
    k2: int = 6  # kreciprocal: local query expansion size
    lambda_value: float = 0.3  # kreciprocal: weight of the original distance


RERANKERS.register("none")(lambda queries, gallery, candidates, s: candidates)
RERANKERS.register("aqe")(lambda queries, gallery, candidates, s: aqe(queries, gallery, candidates, s.aqe_k, s.aqe_alpha))
RERANKERS.register("kreciprocal")(lambda queries, gallery, candidates, s: kreciprocal(queries, gallery, candidates, s.k1, s.k2, s.lambda_value))
RERANKERS.register("kreciprocal_local")(
    lambda queries, gallery, candidates, s: kreciprocal_local(queries, gallery, candidates, s.k1, s.k2, s.lambda_value))


def rerank(method: str, queries: np.ndarray, gallery: np.ndarray, candidates: np.ndarray,
           settings: RerankSettings = RerankSettings()) -> np.ndarray:
    """Reorder candidates (n_q, depth) of gallery row ids; the lists must be full (no -1)."""
    if method == "none" or len(candidates) == 0:
        return candidates
    if (candidates < 0).any():
        raise ValueError("rerank needs full candidate lists; search with depth <= gallery size")
    return RERANKERS.get(method)(queries, gallery, candidates, settings)


def rerank_head(method: str, queries: np.ndarray, gallery: np.ndarray, ids: np.ndarray, scores: np.ndarray, head: int,
                settings: RerankSettings = RerankSettings()) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each query's first `head` candidates (full lists: no -1); the rest keep their order and scores."""
    reordered = rerank(method, queries, gallery, ids[:, :head], settings)
    head_scores = np.einsum("qd,qkd->qk", queries, gallery[reordered])
    return np.concatenate([reordered, ids[:, head:]], axis=1), np.concatenate([head_scores, scores[:, head:]], axis=1)
