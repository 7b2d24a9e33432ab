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


def _clustered(people: int, per: int, dim: int, noise: float, seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, dim))
    x = np.repeat(centres, per, axis=0) + noise * rng.normal(size=(people * per, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), [f"p{i}" for i in range(people) for _ in range(per)]


def test_metrics_agree_with_pytorch_metric_learning_on_real_rankings():
    """An independent implementation: PML's AccuracyCalculator (precision@1 = recall@1; mAP over the full ranking)."""
    import torch
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    gallery, g_people = _clustered(12, 5, 16, noise=1.2, seed=0)
    queries, q_people = _clustered(12, 3, 16, noise=1.2, seed=0)
    queries = queries + 0.3 * np.random.default_rng(1).normal(size=queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ours = metrics.evaluate(metrics.rank_by_scores(queries @ gallery.T), q_people, g_people)
    assert 0.2 < ours["recall@1"] < 0.95  # a ranking with hits and misses, not a trivial one
    labels = lambda people: torch.tensor([int(p[1:]) for p in people])  # noqa: E731
    theirs = AccuracyCalculator(include=("precision_at_1", "mean_average_precision"), k=len(gallery)).get_accuracy(
        torch.from_numpy(queries), labels(q_people), torch.from_numpy(gallery), labels(g_people), ref_includes_query=False)
    assert ours["recall@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours["mAP"] == pytest.approx(theirs["mean_average_precision"], abs=1e-6)
    # recall@5 and @10 by brute force, one query at a time
    for k in (5, 10):
        hits = [any(g_people[j] == q_people[i] for j in np.argsort(-(gallery @ queries[i]), kind="stable")[:k]) for i in range(len(queries))]
        assert ours[f"recall@{k}"] == pytest.approx(np.mean(hits), abs=1e-6)


def test_faiss_padding_never_counts_as_a_hit():
    """An IVF index searched with nprobe 1 returns fewer candidates than asked and pads with -1.

    Every query's person is the gallery's last image's person, the one numpy's -1 would wrap to.
    """
    import faiss

    gallery, _ = _clustered(16, 4, 8, noise=0.3, seed=2)
    g_people = ["other"] * (len(gallery) - 1) + ["target"]
    index = faiss.index_factory(gallery.shape[1], "IVF16,Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(gallery)
    index.add(gallery)
    index.nprobe = 1
    queries = gallery[:8] + 0.01
    _, ids = index.search(queries, len(gallery))
    assert (ids < 0).any(), "the index must under-fill for this test to mean anything"
    q_people = ["target"] * len(queries)
    out = metrics.evaluate(ids, q_people, g_people)
    real = [[i for i in row if i >= 0] for row in ids]
    expected_r10 = np.mean([len(gallery) - 1 in row[:10] for row in real])
    assert out["recall@10"] == pytest.approx(expected_r10)
    expected_ap = np.mean([next((1 / (r + 1) for r, i in enumerate(row) if i == len(gallery) - 1), 0.0) for row in real])
    assert out["mAP"] == pytest.approx(expected_ap)
    assert out["mAP"] <= 1.0 and out["recall@1"] <= out["recall@10"]


def test_bootstrap_interval_resamples_people_and_is_seeded():
    rng = np.random.default_rng(0)
    people = [f"p{i}" for i in range(40) for _ in range(3)]
    hit = {f"p{i}": rng.random() < 0.7 for i in range(40)}  # a person is found or not, all their queries alike
    gallery = [f"p{i}" for i in range(40)] + ["x"] * 10
    rankings = np.array([[int(p[1:]) if hit[p] else 40 + k for k in range(10)] for p in people])
    point = metrics.evaluate(rankings, people, gallery)
    ci = metrics.bootstrap_intervals(rankings, people, gallery, seed=1)
    assert ci == metrics.bootstrap_intervals(rankings, people, gallery, seed=1)
    assert ci["score_ci95_low"] < point["score"] < ci["score_ci95_high"]
    assert ci["recall@1_ci95_low"] < point["recall@1"] < ci["recall@1_ci95_high"]
    # 40 people, p ~ 0.7: the binomial standard error over people is about 0.072, so the 95% width is about 0.28
    assert 0.2 < ci["recall@1_ci95_high"] - ci["recall@1_ci95_low"] < 0.36
    every_query_alike = metrics.bootstrap_intervals(rankings[:3], people[:3], gallery, seed=1)  # one person: no spread
    assert every_query_alike["score_ci95_low"] == every_query_alike["score_ci95_high"]


def test_difference_interval_in_map_sees_what_a_saturated_score_cannot():
    people = [f"p{i}" for i in range(20)]
    gallery = [p for p in people for _ in range(2)] + [f"x{i}" for i in range(20)]  # two images of each person, then strangers
    second = {p: 2 * i + 1 for i, p in enumerate(people)}
    before = np.array([[2 * i, 40 + i, 41 + i % 19, second[p]] for i, p in enumerate(people)])  # found at 1, its second image 4th
    after = np.array([[2 * i, second[p], 40 + i, 41 + i % 19] for i, p in enumerate(people)])  # the second image moved up to 2nd
    assert metrics.difference_interval(before, after, people, gallery, seed=0) == (0.0, 0.0)  # the score cannot move: all found at 1
    low, high = metrics.difference_interval(before, after, people, gallery, seed=0, measure="mAP")
    assert low == high == round(1.0 - (1 + 2 / 4) / 2, 6)  # every query's AP rises alike, from 0.75 to 1
    assert np.allclose(metrics.per_query("mAP", after, people, gallery).mean(), metrics.evaluate(after, people, gallery)["mAP"])
