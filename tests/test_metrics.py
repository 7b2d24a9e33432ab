import numpy as np
import pytest

from styleid import metrics


def test_recall_and_map_on_hand_computed_rankings():
    gallery = ["a", "b", "a", "c"]
    # query a: hit at rank 2 and 3; query b: hit at rank 1
    rankings = np.array([[1, 0, 2, 3], [1, 0, 2, 3]])
    out = metrics.evaluate(rankings, ["a", "b"], gallery)
    assert out["recall@1"] == 0.5
    assert out["recall@5"] == 1.0
    # AP(a) = (1/2 + 2/3) / 2 ; AP(b) = 1
    assert out["mAP"] == pytest.approx(((0.5 + 2 / 3) / 2 + 1) / 2, abs=1e-6)
    assert out["score"] == pytest.approx(600 * 0.5 + 300 + 100)


def test_query_without_any_match_counts_as_a_miss():
    out = metrics.evaluate(np.array([[0, 1], [1, 0]]), ["a", "zz"], ["a", "b"])
    assert out["recall@1"] == 0.5 and out["recall@10"] == 0.5
    assert out["mAP"] == 0.5
    assert out["n_queries_without_match"] == 1


def test_ties_are_broken_by_gallery_order():
    scores = np.array([[0.5, 0.9, 0.9, 0.1]])
    assert metrics.rank_by_scores(scores).tolist() == [[1, 2, 0, 3]]


def test_score_weights_match_the_competition():
    assert metrics.score({1: 1.0, 5: 1.0, 10: 1.0}) == 1000
    assert metrics.score({1: 0.33, 5: 0.63, 10: 0.70}) == pytest.approx(457.0)


def test_per_person_recall_lists_worst_first():
    table = metrics.per_person_recall(np.array([[0], [1], [1]]), ["a", "b", "b"], ["a", "x"])
    assert table[0][0] == "b" and table[0][2] == 0.0 and table[-1] == ("a", 1, 1.0)
