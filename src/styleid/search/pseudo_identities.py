"""Pseudo-identities among unlabelled test images: k-reciprocal clusters that span both domains (the self_train stage).

The query photos and the gallery renders are clustered together by DBSCAN on the k-reciprocal Jaccard
distance (Zhong et al. 2017; computed sparse, in memory that grows with the number of images, not its square:
search/sparse_jaccard.py), the clustering that unsupervised re-identification self-trains on (MMT,
SpCL). Two images land together only when their neighbourhoods overlap, which a single lookalike does
not give. A cluster holding photos and renders is one pseudo-person; one-domain clusters and DBSCAN's
outliers are left out, since they teach nothing across the domains. No label is ever read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from styleid.search.sparse_jaccard import jaccard_graph


@dataclass(frozen=True)
class PseudoIdentities:
    query: np.ndarray  # pseudo-person of each query photo, -1 = none
    gallery: np.ndarray  # pseudo-person of each gallery render, -1 = none
    seconds: float = 0.0  # how long the clustering took

    @property
    def people(self) -> int:
        return int(max(self.query.max(initial=-1), self.gallery.max(initial=-1)) + 1)

    def summary(self) -> dict:
        return {"pseudo_people": self.people, "pseudo_queries": int((self.query >= 0).sum()),
                "pseudo_gallery": int((self.gallery >= 0).sum()), "pseudo_clustered_images": len(self.query) + len(self.gallery),
                "pseudo_cluster_seconds": round(self.seconds, 2)}


def find(queries: np.ndarray, gallery: np.ndarray, eps: float, k1: int, k2: int, min_samples: int) -> PseudoIdentities:
    """Clusters of L2-normalised query and gallery embeddings with both domains in them, numbered 0.. in order of appearance."""
    from sklearn.cluster import DBSCAN

    start, n_q = time.perf_counter(), len(queries)
    graph = jaccard_graph(np.concatenate([queries, gallery]), k1, k2, keep_upto=eps)  # DBSCAN needs no pair farther than eps
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(graph)
    both = set(labels[:n_q][labels[:n_q] >= 0]) & set(labels[n_q:][labels[n_q:] >= 0])
    renumber = {old: new for new, old in enumerate(sorted(both, key=lambda c: int(np.argmax(labels == c))))}
    kept = np.array([renumber.get(c, -1) for c in labels], dtype=np.int64)
    return PseudoIdentities(kept[:n_q], kept[n_q:], time.perf_counter() - start)


def purity(pseudo: np.ndarray, people: list[str]) -> float:
    """Share of the clustered images whose true person is their cluster's most common one (labelled data only: the probe's check)."""
    clustered = [(c, p) for c, p in zip(pseudo, people) if c >= 0]
    if not clustered:
        return 0.0
    right = 0
    for c in {c for c, _ in clustered}:
        members = [p for cc, p in clustered if cc == c]
        right += max(members.count(p) for p in set(members))
    return right / len(clustered)
