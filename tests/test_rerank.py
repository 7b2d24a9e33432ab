"""Re-ranking on a hand-built case: person A's query sits nearer one image of person B than A's own."""

from __future__ import annotations

import numpy as np
import pytest

from styleid.search.rerank import RERANKERS, RerankSettings, rerank


def _unit(rows) -> np.ndarray:
    v = np.asarray(rows, float)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _at(angle: float, z: float = 0.0) -> list[float]:
    return [np.cos(angle), np.sin(angle), z]


GALLERY = _unit([_at(0, 0.02), _at(0.02, -0.02), _at(-0.02), _at(0.5), _at(0.6), _at(0.65, 0.02)])  # A: 0-2, B: 3-5
QUERIES = _unit([_at(0.26), _at(0.03, 0.01), _at(0.58, -0.01)])  # A's hard query, A's easy query, B's query
CANDIDATES = np.argsort(-(QUERIES @ GALLERY.T), axis=1, kind="stable")


def test_the_case_is_hard_without_reranking():
    assert CANDIDATES[0, 0] == 3  # B's image first for A's query


@pytest.mark.parametrize("method,kwargs", [("aqe", {"aqe_k": 3, "aqe_alpha": 3.0}), ("kreciprocal", {"k1": 4, "k2": 1, "lambda_value": 0.3}),
                                           ("kreciprocal_local", {"k1": 4, "k2": 1, "lambda_value": 0.3})])
def test_reranking_puts_the_right_person_first(method, kwargs):
    order = rerank(method, QUERIES, GALLERY, CANDIDATES, RerankSettings(**kwargs))
    assert set(order[0, :3]) == {0, 1, 2}  # all of A's images before B's
    assert order[1, 0] in (0, 1, 2) and order[2, 0] in (3, 4, 5)  # the easy queries stay right
    assert all(sorted(row) == list(range(6)) for row in order)  # a permutation of the candidates


def test_none_keeps_the_order():
    assert np.array_equal(rerank("none", QUERIES, GALLERY, CANDIDATES), CANDIDATES)


def test_reranking_only_reorders_the_given_depth():
    order = rerank("aqe", QUERIES, GALLERY, CANDIDATES[:, :4], RerankSettings(aqe_k=3, aqe_alpha=3.0))
    assert order.shape == (3, 4) and all(set(o) == set(c) for o, c in zip(order, CANDIDATES[:, :4]))


def test_rerankers_are_chosen_by_their_registered_names():
    assert set(RERANKERS.names()) == {"none", "aqe", "kreciprocal", "kreciprocal_local"}
    with pytest.raises(ValueError, match="unknown re-ranker 'qe'; choose from none, aqe, kreciprocal, kreciprocal_local"):
        rerank("qe", QUERIES, GALLERY, CANDIDATES)


def test_local_kreciprocal_equals_the_global_one_when_a_query_sees_the_whole_gallery():
    """One query whose candidate list is the whole gallery: both methods see the same images, so the same order."""
    from styleid.inference.normalize import l2_normalize
    from styleid.search.rerank import kreciprocal, kreciprocal_local

    rng = np.random.default_rng(0)
    centres = l2_normalize(rng.standard_normal((30, 32)).astype(np.float32))
    gallery = l2_normalize(centres[np.arange(120) % 30] + 0.3 * rng.standard_normal((120, 32)).astype(np.float32))
    queries = l2_normalize(centres[:5] + 0.3 * rng.standard_normal((5, 32)).astype(np.float32))
    candidates = np.argsort(-(queries @ gallery.T), axis=1, kind="stable")
    for i in range(5):
        one = slice(i, i + 1)
        assert np.array_equal(kreciprocal(queries[one], gallery, candidates[one], 20, 6, 0.3),
                              kreciprocal_local(queries[one], gallery, candidates[one], 20, 6, 0.3))
    together = kreciprocal_local(queries, gallery, candidates[:, :40], 20, 6, 0.3)  # a block of queries = each on its own
    assert all(np.array_equal(together[i], kreciprocal_local(queries[i : i + 1], gallery, candidates[i : i + 1, :40], 20, 6, 0.3)[0])
               for i in range(5))


def test_global_kreciprocal_over_its_limit_points_to_the_local_one():
    from styleid.errors import ParamsError
    from styleid.search.rerank import KRECIPROCAL_MAX, kreciprocal_distance

    big = np.zeros((KRECIPROCAL_MAX, 3), np.float32)
    with pytest.raises(ParamsError, match="use kreciprocal_local or aqe"):
        kreciprocal_distance(big[:1], big, 20, 6, 0.3)
