"""Validation scores the unseen validation people as the test will be scored: adapted, searched, re-ranked."""

import numpy as np
import pytest

from styleid import metrics
from styleid.inference.normalize import l2_normalize
from styleid.params import RetrieveParams
from styleid.search import index as faiss_index
from styleid.search import retriever
from styleid.search.adapt import adapt_pair
from styleid.training.validation import reranking_of, retrieval_score, validate


def _two_domains(seed: int = 0, offset: float = 3.0, noise: float = 0.9, people: int = 15, per: int = 3, dim: int = 32):
    """Photos and renders of the same people, each domain shifted by its own offset (the gap centring removes)."""
    rng = np.random.default_rng(seed)
    identity = rng.standard_normal((people, dim))
    names = [f"p{k}" for k in range(people) for _ in range(per)]
    photos = np.repeat(identity, per, 0) + offset * rng.standard_normal(dim) + noise * rng.standard_normal((people * per, dim))
    renders = np.repeat(identity, per, 0) + offset * rng.standard_normal(dim) + noise * rng.standard_normal((people * per, dim))
    return photos.astype(np.float32), names, renders.astype(np.float32), names


@pytest.mark.parametrize("method", ["none", "aqe", "kreciprocal", "kreciprocal_local"])
@pytest.mark.parametrize("adapt", ["none", "center"])
def test_validation_score_equals_the_retrieve_stage_on_the_same_embeddings(method, adapt):
    q, q_people, g, g_people = _two_domains()
    params = RetrieveParams(rerank=method, depth=20, k1=6, k2=3)
    qa, ga = adapt_pair(l2_normalize(q), l2_normalize(g), adapt)  # what the embed stage writes
    ids, _ = retriever.retrieve(faiss_index.build(ga), qa, len(ga), params, lambda: ga)
    expected = metrics.evaluate(ids[:, :10], q_people, g_people)["score"]
    assert retrieval_score(q, q_people, g, g_people, adapt, reranking_of(params)) == pytest.approx(expected)


def test_validate_scores_both_adaptations_under_the_tests_reranker():
    """validate() (each epoch's row) re-ranks: uncentred, k-reciprocal neighbourhoods stay inside each domain and the
    score falls (764 -> 567 here), centred it rises; the checkpoint and the centring choice see what the test will see."""
    import torch

    q, q_people, g, g_people = _two_domains(seed=1, offset=1.0, noise=1.2)
    val = {"val_query": torch.from_numpy(q), "val_gallery": torch.from_numpy(g)}
    plain = validate(val, None, None, q_people, g_people, torch.device("cpu"))
    kr = validate(val, None, None, q_people, g_people, torch.device("cpu"), reranking_of(RetrieveParams(rerank="kreciprocal", depth=40, k1=6, k2=3)))
    assert kr["val_score"] < plain["val_score"] - 100 and kr["val_score_center"] > plain["val_score_center"], (plain, kr)
