"""Retrieval, the one way both the retrieve stage and `styleid search` do it: index search, then re-ranking
of the first `retrieve.depth` candidates (reading the gallery only when a re-ranker needs it)."""

from __future__ import annotations

import dataclasses
from typing import Callable

import faiss
import numpy as np

from styleid.errors import ParamsError
from styleid.params import RetrieveParams
from styleid.search import index as faiss_index
from styleid.search.rerank import RerankSettings, rerank_head


QUERY_BLOCK = 1024  # queries re-ranked together by a per-query re-ranker (aqe): a block's candidates' vectors stay in memory at once
JOINT_RERANKERS = ("kreciprocal",)  # need every query and gallery vector at once (neighbourhoods among them all)


def rerank_settings(params: RetrieveParams) -> RerankSettings:
    return RerankSettings(**{f.name: getattr(params, f.name) for f in dataclasses.fields(RerankSettings)})


def retrieve(index: faiss.Index, queries: np.ndarray, keep: int, params: RetrieveParams,
             load_gallery: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores), each n_queries x keep: the index's `keep` nearest gallery rows, the first `params.depth`
    of them re-ranked (with their scores recomputed as cosine to the query). An index that returns fewer
    than `depth` candidates (-1 ids, as IVF with a small nprobe can) cannot be re-ranked: a one-line error."""
    scores, ids = faiss_index.search(index, queries, keep)
    if params.rerank == "none":
        return ids, scores
    head = min(params.depth, keep)
    if (ids[:, :head] < 0).any():
        raise ParamsError(f"retrieve.rerank: the index returned fewer than {head} candidates for some queries; "
                          "raise index.nprobe / index.ef_search or lower retrieve.depth")
    gallery, settings = load_gallery(), rerank_settings(params)
    if params.rerank in JOINT_RERANKERS:
        return rerank_head(params.rerank, queries, gallery, ids, scores, head, settings)
    # per-query re-rankers in blocks of queries: memory stays blocks x depth x dim, whatever the number of queries
    blocks = [rerank_head(params.rerank, queries[lo : lo + QUERY_BLOCK], gallery, ids[lo : lo + QUERY_BLOCK], scores[lo : lo + QUERY_BLOCK],
                          head, settings) for lo in range(0, len(queries), QUERY_BLOCK)]
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])
