"""embed.runtime auto between two installed ONNX runtimes: the faster one here, measured once and remembered."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest
import torch

from styleid.inference import runtime_choice, runtimes
from styleid.inference.onnx_export import export_onnx
from styleid.models.embedder import ModelConfig, build, save

SHAPE = {"backbone": "facenet", "input_size": 8}


def _slow(seconds: float):
    def run(batch: np.ndarray) -> np.ndarray:
        time.sleep(seconds)
        return batch[:, 0, 0, :2]
    return run


def test_the_usual_first_is_kept_unless_another_is_clearly_faster():
    assert runtime_choice.pick({"onnxruntime": 100.0, "openvino": 104.0}) == "onnxruntime"  # within the noise
    assert runtime_choice.pick({"onnxruntime": 100.0, "openvino": 106.0}) == "openvino"
    assert runtime_choice.pick({"onnxruntime": 100.0, "openvino": 50.0}) == "onnxruntime"


def test_measure_ranks_the_slower_pass_lower():
    speeds = runtime_choice.measure({"quick": _slow(0.001), "slow": _slow(0.02)}, 8)
    assert speeds["quick"] > 5 * speeds["slow"]


def test_the_choice_is_measured_once_and_remembered_per_key(tmp_path, caplog):
    cache, loads = tmp_path / "choice.json", []

    def load(name):
        loads.append(name)
        return _slow({"onnxruntime": 0.02, "openvino": 0.002}[name])

    with caplog.at_level(logging.INFO, logger="styleid.inference.runtime_choice"):
        assert runtime_choice.fastest(["onnxruntime", "openvino"], load, SHAPE, "int8", 2, cache) == "openvino"
    assert loads == ["onnxruntime", "openvino"] and "remembered in" in caplog.text
    remembered = json.loads(cache.read_text())
    assert [v["runtime"] for v in remembered.values()] == ["openvino"]
    assert runtime_choice.fastest(["onnxruntime", "openvino"], load, SHAPE, "int8", 2, cache) == "openvino"
    assert loads == ["onnxruntime", "openvino"]  # not measured again
    runtime_choice.fastest(["onnxruntime", "openvino"], load, SHAPE, "fp32", 2, cache)  # another precision: its own measurement
    runtime_choice.fastest(["onnxruntime", "openvino"], load, {**SHAPE, "input_size": 16}, "int8", 2, cache)  # another shape
    assert len(loads) == 6 and len(json.loads(cache.read_text())) == 3


def _loads(loads: list):
    """load(name) for fastest(): onnxruntime clearly the faster (a tie would be decided by timing noise), each load noted."""
    def load(name):
        loads.append(name)
        return _slow({"onnxruntime": 0.001, "openvino": 0.02}[name])
    return load


def test_a_remembered_runtime_no_longer_installed_is_measured_again(tmp_path):
    cache, loads = tmp_path / "choice.json", []
    key = runtime_choice.choice_key(["onnxruntime", "openvino"], SHAPE, "fp32", 2)
    cache.write_text(json.dumps({key: {"runtime": "tensorrt"}}))
    assert runtime_choice.fastest(["onnxruntime", "openvino"], _loads(loads), SHAPE, "fp32", 2, cache) == "onnxruntime"
    assert loads == ["onnxruntime", "openvino"] and json.loads(cache.read_text())[key]["runtime"] == "onnxruntime"


def test_an_unreadable_or_unwritable_cache_warns_in_one_line_and_still_chooses(tmp_path, caplog):
    cache = tmp_path / "choice.json"
    cache.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="styleid.inference.runtime_choice"):
        assert runtime_choice.fastest(["onnxruntime", "openvino"], _loads([]), SHAPE, "fp32", 2, cache) == "onnxruntime"
    assert "choice.json: unreadable" in caplog.text and json.loads(cache.read_text())
    caplog.clear()
    blocked = tmp_path / "a_file" / "choice.json"
    (tmp_path / "a_file").write_text("")
    with caplog.at_level(logging.WARNING, logger="styleid.inference.runtime_choice"):
        assert runtime_choice.fastest(["onnxruntime", "openvino"], _loads([]), SHAPE, "fp32", 2, blocked) == "onnxruntime"
    assert "cannot remember the runtime choice" in caplog.text
    assert all("\n" not in r.getMessage() for r in caplog.records)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="onnxruntime is a dependency of styleid; install the project with `make`")
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    model = build(ModelConfig("facenet", "none", 96, embed_dim=8))
    save(model, folder)
    export_onnx(model, folder / runtimes.ONNX_FILE)
    return folder


@pytest.mark.parametrize("slower", ["onnxruntime", "openvino"])
def test_auto_embeds_with_the_runtime_measured_faster_and_only_on_cpus(exported, monkeypatch, slower):
    """A second ONNX runtime (here onnxruntime again under openvino's name, so the test needs no OpenVINO) slowed down
    on purpose: auto runs the other, and a named runtime or a GPU is never measured."""
    load_ort = runtimes.RUNTIMES.get("onnxruntime").load

    def loader(name):
        def load(model_dir, device, precision):
            model = load_ort(model_dir, device, precision)
            run = model._run
            model._run = (lambda x: (time.sleep(0.05), run(x))[1]) if name == slower else run
            model.name = name
            return model
        return load

    for name in ("onnxruntime", "openvino"):
        monkeypatch.setitem(runtimes.RUNTIMES._items, name, runtimes.Runtime(lambda: True, loader(name)))
    cpu = torch.device("cpu")
    chosen = runtimes.load_runtime("auto", exported, cpu)
    assert chosen.name == ({"onnxruntime", "openvino"} - {slower}).pop()
    images = torch.rand(2, 3, 96, 96)
    assert torch.allclose(chosen(images), runtimes.load_runtime("onnxruntime", exported, cpu)(images), atol=1e-5)
    assert runtimes.load_runtime("openvino", exported, cpu).name == "openvino"  # named: as asked
    assert runtimes.load_runtime("auto", exported, torch.device("cuda")).name == "onnxruntime"  # GPUs: onnxruntime's CUDA provider
