"""Inference runtimes: the ONNX export equals torch, every runtime embeds what torch embeds, `auto` picks one that is installed."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from styleid.inference import runtimes
from styleid.inference.engines import open_engine
from styleid.inference.onnx_export import MAX_EXPORT_ERROR, export_onnx
from styleid.models.embedder import ModelConfig, build, save
from styleid.params import EmbedParams
from styleid.search import index as faiss_index
from styleid.inference.normalize import l2_normalize

pytest.importorskip("onnxruntime", reason="onnxruntime is a dependency of styleid; install the project with `make`")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import torch

    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)  # the same random weights every run
    model = build(ModelConfig("facenet", "none", 96, embed_dim=32))  # random weights: any wiring mistake shows
    save(model, folder)
    error = export_onnx(model, folder / runtimes.ONNX_FILE)
    images = []
    for k in range(12):
        images.append(folder / f"{k}.png")
        rng = np.random.default_rng(k % 4)  # four "people", three images each, a little noise between them
        base = rng.integers(0, 255, (48, 48, 3)).astype(np.int16)
        noise = np.random.default_rng(100 + k).integers(-12, 12, (48, 48, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(images[-1])
    return folder, error, images


def _embed(folder, images, runtime: str) -> np.ndarray:
    with open_engine(folder, EmbedParams(batch_size=5, runtime=runtime)) as engine:
        return l2_normalize(np.concatenate(list(engine.iter_embed(images))))


def test_export_equals_torch(exported):
    _, error, _ = exported
    assert error < MAX_EXPORT_ERROR


@pytest.mark.parametrize("runtime", [r for r in ("onnxruntime", "openvino") if runtimes.RUNTIMES.get(r).installed()])
def test_each_installed_runtime_embeds_what_torch_embeds_and_retrieves_the_same(exported, runtime):
    folder, _, images = exported
    torch_rows, other = _embed(folder, images, "torch"), _embed(folder, images, runtime)
    assert np.abs(torch_rows - other).max() < 1e-4
    queries, gallery = slice(0, 4), slice(4, 12)  # the first image of each person queries the other eight
    rankings = [faiss_index.search(faiss_index.build(rows[gallery]), rows[queries], 8)[1] for rows in (torch_rows, other)]
    assert all(set(a) == set(b) for a, b in zip(rankings[0][:, :2], rankings[1][:, :2]))  # each person's own two images first
    # orders may differ only where torch itself scores two gallery images within float tolerance
    torch_scores = torch_rows[queries] @ torch_rows[gallery].T
    for q, (mine, theirs) in enumerate(zip(*rankings)):
        mismatched = mine != theirs
        assert np.all(np.abs(torch_scores[q, mine[mismatched]] - torch_scores[q, theirs[mismatched]]) < 2e-4)


def test_auto_picks_an_installed_runtime_and_falls_back_to_torch_with_one_line(monkeypatch, caplog):
    assert runtimes.resolve("auto") == "onnxruntime"  # installed with styleid, and the fastest measured
    for name in ("onnxruntime", "openvino"):
        monkeypatch.setitem(runtimes.RUNTIMES._items, name, runtimes.Runtime(lambda: False, runtimes.RUNTIMES.get(name).load))
    with caplog.at_level(logging.INFO, logger="styleid.inference.runtimes"):
        assert runtimes.resolve("auto") == "torch"
        assert runtimes.resolve("openvino") == "torch"
    assert len(caplog.records) == 2 and all("\n" not in r.getMessage() for r in caplog.records)


def test_a_missing_export_is_one_line_naming_the_fix(tmp_path):
    from styleid.errors import StyleidError

    save(build(ModelConfig("facenet", "none", 96)), tmp_path)
    with pytest.raises(StyleidError, match=r"model.onnx: missing; run `dvc repro export`"):
        runtimes.load_runtime("onnxruntime", tmp_path, __import__("torch").device("cpu"))


def test_prefetching_keeps_order_and_errors_and_stops_early():
    import threading

    from styleid.inference.embed import prefetched

    seen = []

    def batches():
        for k in range(5):
            seen.append(threading.current_thread().name)
            yield k

    assert list(prefetched(batches())) == [0, 1, 2, 3, 4]
    assert all(name.startswith("styleid-decode") for name in seen)  # decoded off the model's thread

    def broken():
        yield 1
        raise ValueError("a.png: not a readable image")

    with pytest.raises(ValueError, match="a.png"):
        list(prefetched(broken()))
    first = next(iter(prefetched(iter(range(100)))))
    assert first == 0
