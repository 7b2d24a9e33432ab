"""scripts/probe_interpolation.py: trained weights mixed back toward the pretrained ones, scored on validation people."""

import sys

import pytest
import torch
from torch import nn

from conftest import load_script
from styleid.params import params_from_dict

probe = load_script("probe_interpolation")

PEOPLE = ["a", "b", "c", "d"]
SPLIT = {"val_query": [{"image": f"q{p}.jpg", "person": p} for p in PEOPLE],
         "val_gallery": [{"image": f"g{p}.jpg", "person": p} for p in PEOPLE]}


def test_interpolation_mixes_floats_keeps_counts_and_changes_neither_input():
    trained = {"w": torch.tensor([2.0, 4.0]), "n": torch.tensor(7)}
    pretrained = {"w": torch.tensor([0.0, 0.0]), "n": torch.tensor(1)}
    mixed = probe.interpolate(trained, pretrained, 0.25)
    assert torch.equal(mixed["w"], torch.tensor([0.5, 1.0])) and int(mixed["n"]) == 7
    assert torch.equal(probe.interpolate(trained, pretrained, 1.0)["w"], trained["w"])
    assert torch.equal(probe.interpolate(trained, pretrained, 0.0)["w"], pretrained["w"])
    mixed["w"] += 1
    assert torch.equal(trained["w"], torch.tensor([2.0, 4.0])) and torch.equal(pretrained["w"], torch.tensor([0.0, 0.0]))


def test_models_of_different_shapes_are_refused_in_one_line():
    with pytest.raises(SystemExit, match="differ in \\['head.weight'\\]"):
        probe.interpolate({"w": torch.zeros(1), "head.weight": torch.zeros(1)}, {"w": torch.zeros(1)}, 0.5)


def test_each_alpha_is_scored_against_the_trained_model(monkeypatch, tmp_path, capsys):
    """A one-weight model whose embeddings find everyone at rank 1 with the trained weight (1) and no one with the
    pretrained (0): the run's model comes first, mixes in between land in between, and the loaded weights are the mixes."""
    trained, pretrained = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    nn.init.constant_(trained.weight, 1.0)
    nn.init.constant_(pretrained.weight, 0.0)
    seen = []

    def embed_pair(model, params, queries, gallery, adapt):
        w = float(model.weight.detach())
        seen.append(w)
        eye = torch.eye(4)
        shifted = eye.roll(1, 0)  # every query's own person second
        return eye.numpy(), (w * eye + (1 - w) * 1.5 * shifted).numpy()

    monkeypatch.setattr(probe, "load_params", lambda path: params_from_dict({}))
    monkeypatch.setattr(probe, "load_split", lambda: SPLIT)
    monkeypatch.setattr(probe, "load", lambda path: trained)
    monkeypatch.setattr(probe, "build", lambda config: pretrained)
    monkeypatch.setattr(probe, "resolve", lambda adapt, path: "center")
    monkeypatch.setattr(probe, "embed_pair", embed_pair)
    monkeypatch.setattr(sys, "argv", ["probe", str(tmp_path), "--alphas", "0,0.5"])
    probe.main()
    assert seen == [1.0, 0.0, 0.5]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("alpha 1: score 1000.0, R@1 1.000") and "against" not in lines[0]
    assert lines[1].startswith("alpha 0: score") and "R@1 0.000" in lines[1]
    high = float(lines[1].split("score ")[2].split(" to ")[1].split(",")[0])
    assert high < 0  # every query lost its rank-1 match, in every resample


def test_a_run_without_validation_people_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(probe, "load_params", lambda path: params_from_dict({}))
    monkeypatch.setattr(probe, "load_split", lambda: {"val_query": [], "val_gallery": []})
    monkeypatch.setattr(probe, "load", lambda path: nn.Linear(1, 1))
    monkeypatch.setattr(probe, "build", lambda config: nn.Linear(1, 1))
    monkeypatch.setattr(probe, "resolve", lambda adapt, path: "none")
    monkeypatch.setattr(sys, "argv", ["probe", str(tmp_path)])
    with pytest.raises(SystemExit, match="no validation people"):
        probe.main()
