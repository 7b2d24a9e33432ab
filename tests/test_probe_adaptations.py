"""scripts/probe_adaptations.py: the candidate adaptations, each from the embeddings alone."""


import numpy as np

from conftest import load_script
from styleid import metrics

probe = load_script("probe_adaptations")


def test_every_candidate_is_unit_length_and_centring_removes_a_domain_offset():
    rng = np.random.default_rng(0)
    ids = rng.normal(size=(60, 16))
    q = ids + rng.normal(size=16) * 3 + 0.3 * rng.normal(size=(60, 16))
    g = ids + rng.normal(size=16) * 3 + 0.3 * rng.normal(size=(60, 16))
    people = list(range(60))
    out = {name: (a, b) for name, a, b in probe.adaptations(q, g)}
    assert list(out)[:2] == ["none", "center"] and len(out) == 5
    for name, (a, b) in list(out.items())[1:]:
        assert np.allclose(np.linalg.norm(a, axis=1), 1) and np.allclose(np.linalg.norm(b, axis=1), 1), name
    r1 = {name: metrics.evaluate(metrics.rank_by_scores(a @ b.T), people, people)["recall@1"] for name, (a, b) in out.items()}
    assert r1["center"] > r1["none"] + 0.2
