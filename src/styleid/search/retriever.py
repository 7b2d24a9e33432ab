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
    return rerank_head(params.rerank, queries, load_gallery(), ids, scores, head, rerank_settings(params))
