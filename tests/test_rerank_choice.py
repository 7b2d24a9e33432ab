"""retrieve.rerank auto (search/rerank_choice.py): the validation people choose the re-ranker, or none."""

import numpy as np

from styleid.params import RetrieveParams
from styleid.search import rerank_choice
from styleid.search.rerank_choice import beyond_noise, candidates, choose

PEOPLE = [str(p) for p in range(30)]
RIGHT = np.array([[p, *[g for g in range(30) if g != p]] for p in range(30)])  # everyone's render first
SECOND = np.array([[(p + 1) % 30, p, *[g for g in range(30) if g not in (p, (p + 1) % 30)]] for p in range(30)])  # everyone's at 2
SETTINGS = RetrieveParams(rerank="auto")


def _choose(monkeypatch, rankings: dict) -> dict:
    monkeypatch.setattr(rerank_choice, "ranking", lambda q, g, settings, rerank: rankings[rerank])
    vectors = np.zeros((30, 4), np.float32)
    return choose(SETTINGS, vectors, vectors, PEOPLE, PEOPLE, test_images=1000, seed=1)


def test_the_reranker_that_gains_beyond_the_noise_is_chosen(monkeypatch):
    chosen = _choose(monkeypatch, {"none": SECOND, "aqe": SECOND, "kreciprocal": RIGHT})
    assert chosen["rerank"] == "kreciprocal"
    checked = chosen["rerank_checked"]
    assert checked["none"]["val_score"] < checked["kreciprocal"]["val_score"] == 1000.0 and checked["kreciprocal"]["gain_low"] > 0
    assert checked["aqe"]["gain_low"] == checked["aqe"]["gain_high"] == 0 and not checked["aqe"]["score_moved"]


def test_none_when_no_reranker_gains_beyond_the_noise_or_there_are_no_validation_people(monkeypatch):
    assert _choose(monkeypatch, {"none": RIGHT, "aqe": SECOND, "kreciprocal": SECOND})["rerank"] == "none"  # both worse
    assert _choose(monkeypatch, {"none": RIGHT, "aqe": RIGHT, "kreciprocal": RIGHT})["rerank"] == "none"  # nothing moved
    assert choose(SETTINGS, np.zeros((0, 4)), np.zeros((3, 4)), [], ["a"] * 3, 1000, 1)["rerank"] == "none"


def test_the_rule_takes_map_where_the_score_is_not_worse_and_large_tests_weigh_the_local_kreciprocal():
    assert beyond_noise({"gain_low": 1.0, "gain_high": 9.0, "score_moved": True})
    assert not beyond_noise({"gain_low": -20.0, "gain_high": -1.0, "score_moved": True, "map_gain_low": 0.1})
    assert beyond_noise({"gain_low": -5.0, "gain_high": 8.0, "score_moved": True, "map_gain_low": 0.01})
    assert beyond_noise({"gain_low": 0.0, "gain_high": 0.0, "score_moved": False, "map_gain_low": 0.01})
    assert candidates(1000) == ["aqe", "kreciprocal"] and candidates(10**6) == ["aqe", "kreciprocal_local"]


def test_the_validation_ranking_is_the_retrieve_stages():
    from styleid.search.retriever import retrieve

    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(12, 8)).astype(np.float32)
    q, g = q / np.linalg.norm(q, axis=1, keepdims=True), g / np.linalg.norm(g, axis=1, keepdims=True)
    assert np.array_equal(rerank_choice.ranking(q, g, SETTINGS, "none"), np.argsort(-(q @ g.T), axis=1, kind="stable"))
    import faiss

    index = faiss.IndexFlatIP(8)
    index.add(g)
    settings = RetrieveParams(rerank="kreciprocal", k1=4, k2=2)
    assert np.array_equal(rerank_choice.ranking(q, g, settings, "kreciprocal"), retrieve(index, q, 12, settings, lambda: g)[0])
