"""Transductive adaptation: per-domain centring, and the choice the validation people make."""

import numpy as np

from styleid import metrics
from styleid.inference.normalize import l2_normalize
from styleid.search.adapt import adapt_pair, center, choose
from styleid.training.validation import adapt_scores


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


def test_centring_is_the_prior_and_validation_vetoes_it_only_beyond_its_noise():
    row = {"val_score": 500.0, "val_score_center": 490.0}
    assert choose({**row, "val_center_gain_low": -40.0, "val_center_gain_high": 20.0}) == "center"  # worse, within the noise
    assert choose({**row, "val_center_gain_low": -40.0, "val_center_gain_high": -2.0}) == "none"  # worse for sure
    assert choose({**row, "val_score_center": 600.0, "val_center_gain_low": 50.0, "val_center_gain_high": 150.0}) == "center"
    assert choose({"val_score": 500.0}) == "none"  # not measured (no validation people): nothing to adapt on


def test_validation_measures_the_gain_of_centring_with_its_interval():
    q, g, people = _two_domains(60, 1)
    row = adapt_scores(q, people, g, people)
    assert row["val_score_center"] > row["val_score"] + 100  # the domain offset hides who is who until it is removed
    assert 0 < row["val_center_gain_low"] <= row["val_score_center"] - row["val_score"] <= row["val_center_gain_high"]
    assert choose(row) == "center"
    same = adapt_scores(q, people, q.copy(), people)  # one domain both sides: centring changes nothing measurable
    assert same["val_center_gain_low"] <= 0 <= same["val_center_gain_high"]
