"""scripts/probe_self_training.py: two self-training settings compared, paired, on the same validation people."""

import sys

import numpy as np
import pytest

from conftest import load_script
from styleid.params import params_from_dict

probe = load_script("probe_self_training")

PEOPLE = ["a", "b", "c", "d"]
SPLIT = {"val_query": [{"image": f"q{p}.jpg", "person": p} for p in PEOPLE],
         "val_gallery": [{"image": f"g{p}.jpg", "person": p} for p in PEOPLE]}
WRONG = np.array([[1, 0, 2, 3], [0, 1, 2, 3], [3, 2, 1, 0], [2, 3, 1, 0]])  # a: 2nd, b: 2nd, c: 3rd, d: 3rd
RIGHT = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 3, 1, 0], [3, 2, 1, 0]])  # everyone found at 1


def _run(monkeypatch, tmp_path, after, *args, views=None, tried=None):
    seen = {}
    afters = iter(after if isinstance(after, list) else [after] * 10)

    def rankings(model, params, split, adapt, cached=None):
        seen["self_train"] = params.self_train
        if tried is not None:
            tried.append((params.self_train, cached))
        ranking = next(afters)
        return {"val_score": 0.0, "val_score_self_trained": probe.metrics.evaluate(ranking, PEOPLE, PEOPLE)["score"]}, None, ranking

    monkeypatch.setattr(probe, "validation_rankings", rankings)
    monkeypatch.setattr(probe, "onnx_trunk", lambda *a: [])
    monkeypatch.setattr(probe, "split_model", lambda model, top: type("Split", (), {"scope": ""}))
    monkeypatch.setattr(probe, "cache_views", lambda model, params, q, g, name, exported: (views if views is not None else []).append(
        (params.self_train.top_stages, params.self_train.views)) or f"views {params.self_train.top_stages}")
    monkeypatch.setattr(probe, "load_params", lambda path: params_from_dict({}))
    monkeypatch.setattr(probe, "load_split", lambda: SPLIT)
    monkeypatch.setattr(probe, "load", lambda path: "model")
    monkeypatch.setattr(probe, "resolve", lambda adapt, path: "center")
    monkeypatch.setattr(sys, "argv", ["probe", str(tmp_path), *args])
    probe.main()
    return seen["self_train"]


def test_a_saved_setting_is_compared_with_the_next_one_paired(monkeypatch, tmp_path, capsys):
    settings = _run(monkeypatch, tmp_path, WRONG, "--rounds", "1", "--epochs", "8", "--save", str(tmp_path / "one.npz"))
    assert (settings.rounds, settings.epochs) == (1, 8) and (tmp_path / "one.npz").is_file()
    settings = _run(monkeypatch, tmp_path, RIGHT, "--rounds", "2", "--epochs", "4", "--against", str(tmp_path / "one.npz"))
    assert (settings.rounds, settings.epochs) == (2, 4)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("against epochs 8, rounds 1") and "-> 1000.0" in line
    low = float(line.split("paired interval ")[1].split(" to ")[0])
    assert low > 0  # every query moved up, in every resample


def test_a_ranking_of_other_people_is_refused_in_one_line(monkeypatch, tmp_path):
    np.savez(tmp_path / "other.npz", ranking=np.zeros((3, 3), dtype=int), setting="elsewhere")
    with pytest.raises(SystemExit, match="other.npz: a ranking of other validation people"):
        _run(monkeypatch, tmp_path, RIGHT, "--against", str(tmp_path / "other.npz"))


def test_each_try_is_measured_in_one_process_and_compared_with_the_first(monkeypatch, tmp_path, capsys):
    views, tried = [], []
    _run(monkeypatch, tmp_path, [WRONG, RIGHT, RIGHT], "--set", "epochs=4", "--set", "top_stages=3", "--set", "views=4", "--try", "memory=centroids", "--try", "top_stages=2 lr=0.001",
         views=views, tried=tried)
    assert [(t.epochs, t.memory, t.top_stages, t.lr) for t, _ in tried] == [(4, "domain_centroids", 3, 1e-4), (4, "centroids", 3, 1e-4),
                                                                          (4, "domain_centroids", 2, 1e-3)]
    assert views == [(3, 4), (2, 4)] and [c for _, c in tried] == ["views 3", "views 3", "views 2"]  # one view cache per cut
    paired = [line for line in capsys.readouterr().out.splitlines() if line.startswith("against the first setting")]
    assert len(paired) == 2 and all(float(line.split("paired interval ")[1].split(" to ")[0]) > 0 for line in paired)
    with pytest.raises(SystemExit, match="self_train has no key 'epoch'"):
        _run(monkeypatch, tmp_path, RIGHT, "--try", "epoch=3")
