"""Transductive adaptation: per-domain centring, and the choice the validation people make."""

import numpy as np

from styleid import metrics
from styleid.inference.normalize import l2_normalize
from styleid.search.adapt import adapt_pair, center, choose


def _two_domains(people: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Each person an identity direction; photos and renders each pushed by their own large domain offset."""
    rng = np.random.default_rng(seed)
    ids = rng.normal(size=(people, 64))
    photo_offset, render_offset = rng.normal(size=64) * 3, rng.normal(size=64) * 3
    q = l2_normalize(ids + photo_offset + 0.3 * rng.normal(size=(people, 64)))
    g = l2_normalize(ids + render_offset + 0.3 * rng.normal(size=(people, 64)))
    return q, g, list(range(people))


def _r1(q, g, people):
    return metrics.evaluate(metrics.rank_by_scores(q @ g.T)[:, :10], people, people)["recall@1"]


def test_centring_each_domain_removes_the_shared_offset():
    q, g, people = _two_domains(200, 0)
    cq, cg = adapt_pair(q, g, "center")
    assert np.allclose(np.linalg.norm(cq, axis=1), 1) and np.allclose(np.linalg.norm(cg, axis=1), 1)
    assert _r1(cq, cg, people) > _r1(q, g, people) + 0.2
    assert adapt_pair(q, g, "none") == (q, g)
    # a new photo adapted with the stored query mean lands where the pipeline put the queries
    assert np.allclose(center(q[:1], q.mean(0)), cq[:1], atol=1e-6)


def test_choice_follows_validation_and_prefers_no_adaptation_on_ties():
    assert choose({"none": 500.0, "center": 520.0}) == "center"
    assert choose({"none": 500.0, "center": 500.0}) == "none"
    assert choose({"none": 500.0, "center": 480.0}) == "none"
    assert choose({}) == "none"
