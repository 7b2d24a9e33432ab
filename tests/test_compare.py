"""The comparison script's table, from `dvc exp show --json` output (canned here; the queue itself runs in `make`)."""

from __future__ import annotations

import json

from conftest import load_script

compare = load_script("compare")


def _exp(name, score, params):
    metrics = {"metrics/eval.json": {"data": {"recall@1": 0.5, "recall@5": 0.75, "recall@10": 0.9, "mAP": 0.4, "score": score,
                                              "train_seconds": 12.3, "embed_images_per_s": 40.0, "index_build_seconds": 0.01,
                                              "search_ms_per_query": 0.02}}}
    return {"revs": [{"name": name, "rev": "abc", "data": {"metrics": metrics, "params": {"params.yaml": {"data": params}}}}], "name": name}


def test_table_lists_each_experiment_with_accuracy_and_time(monkeypatch):
    shown = [{"rev": "workspace", "experiments": None},
             {"rev": "main", "experiments": [_exp("bb-facenet", 912.5, {"backbone": "facenet"}), _exp("bb-other", 400.0, {"backbone": "x"})]}]
    monkeypatch.setattr(compare, "_dvc", lambda *args: json.dumps(shown))
    text = compare.table(["bb-facenet", "bb-missing"], "backbone", ["skipped hub backbones: offline"])
    lines = text.splitlines()
    assert lines[0].startswith("| backbone | R@1 | R@5 | R@10 | mAP | score | train s")
    assert "| bb-facenet | 0.500 | 0.750 | 0.900 | 0.400 | 912.5 | 12 |" in text
    assert "| bb-missing | failed |" in text and "bb-other" not in text
    assert lines[-1] == "- skipped hub backbones: offline"


def test_ablations_are_one_change_from_the_reference_recipe():
    keys = {kv.split("=")[0] for kv in compare.REFERENCE}
    assert {"train.freeze", "train.loss", "lr", "epochs", "batch_size"} <= keys
    for name, changes in compare.ABLATIONS.items():
        assert len(changes) <= 1 and all(c.split("=")[0] in keys | {"train.imagenet_norm", "train.augment"} for c in changes)
