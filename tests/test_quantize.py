"""int8: the quantised export stays close to fp32, runs under the runtimes that take ONNX, and is refused where it cannot run."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from styleid.errors import ParamsError, StyleidError
from styleid.inference import runtimes
from styleid.inference.engines import open_engine
from styleid.inference.normalize import l2_normalize
from styleid.inference.onnx_export import export_onnx
from styleid.inference.quantize import quantize_export
from styleid.models.embedder import ModelConfig, build, save
from styleid.params import EmbedParams

pytest.importorskip("onnxruntime", reason="onnxruntime is a dependency of styleid; install the project with `make`")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    import torch

    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    model = build(ModelConfig("facenet", "none", 96, embed_dim=32))  # random weights; FaceNet is the backbone int8 is measured on
    save(model, folder)
    export_onnx(model, folder / runtimes.ONNX_FILE)
    images = []
    for k in range(24):  # six "people", four images each
        rng = np.random.default_rng(k % 6)
        base = rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)
        img = Image.fromarray(base).resize((96, 96), Image.Resampling.BICUBIC)
        noise = np.random.default_rng(100 + k).integers(-10, 10, (96, 96, 3))
        images.append(folder / f"{k}.png")
        Image.fromarray(np.clip(np.asarray(img, np.int16) + noise, 0, 255).astype(np.uint8)).save(images[-1])
    cosines = quantize_export(folder, folder, images[:16], images[16:], images=12, seed=0)
    return folder, images, cosines


def _embed(folder, images, precision: str, runtime: str = "onnxruntime") -> np.ndarray:
    with open_engine(folder, EmbedParams(batch_size=8, runtime=runtime, precision=precision)) as engine:
        return l2_normalize(np.concatenate(list(engine.iter_embed(images))))


def test_int8_file_is_written_and_close_to_fp32(quantized):
    folder, _, cosines = quantized
    assert (folder / runtimes.INT8_FILE).stat().st_size < (folder / runtimes.ONNX_FILE).stat().st_size / 2  # int8 weights: about a quarter
    assert cosines["int8_min_cosine"] >= 0.98 and cosines["int8_mean_cosine"] >= cosines["int8_min_cosine"]


def test_int8_embeddings_retrieve_the_same_people(quantized):
    folder, images, _ = quantized
    fp32, int8 = _embed(folder, images, "fp32"), _embed(folder, images, "int8")
    assert not np.allclose(fp32, int8, atol=1e-6)  # really the other model
    assert float((fp32 * int8).sum(1).min()) > 0.9
    queries, gallery = slice(0, 6), slice(6, 24)
    people = np.arange(24) % 6
    for rows in (fp32, int8):
        nearest = (rows[queries] @ rows[gallery].T).argmax(1)
        assert (people[6:][nearest] == people[:6]).all()


def test_int8_on_torch_or_ray_or_without_its_file_is_one_line(quantized, tmp_path):
    folder, images, _ = quantized
    with pytest.raises(StyleidError, match="not torch"):
        _embed(folder, images, "int8", runtime="torch")
    with pytest.raises(ParamsError, match="embed.precision: fp32"):
        from styleid.inference.ray_engine import RayEngine

        RayEngine(folder, EmbedParams(engine="ray", precision="int8"))
    for name in ("model.json", "model.safetensors", runtimes.ONNX_FILE):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    with pytest.raises(StyleidError, match=r"model.int8.onnx: missing; run `dvc repro export` \(or set embed.precision: fp32\)"):
        _embed(tmp_path, images, "int8")


def test_params_refuse_an_unknown_precision():
    from styleid.params import params_from_dict

    with pytest.raises(ParamsError, match="embed.precision"):
        params_from_dict({"embed": {"precision": "int4"}})


def test_auto_precision_takes_int8_only_where_it_runs_and_agrees(quantized, tmp_path, caplog):
    import json
    import logging

    folder, images, cosines = quantized
    assert json.loads((folder / runtimes.INT8_CHECK).read_text())["int8_mean_cosine"] == cosines["int8_mean_cosine"]
    assert runtimes.resolve_precision("auto", "onnxruntime", folder) == "int8"
    assert runtimes.resolve_precision("auto", "torch", folder) == "fp32"  # torch has no int8 path
    assert np.array_equal(_embed(folder, images, "auto"), _embed(folder, images, "int8"))
    for name in ("model.json", "model.safetensors", runtimes.ONNX_FILE, runtimes.INT8_FILE):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    assert runtimes.resolve_precision("auto", "onnxruntime", tmp_path) == "fp32"  # no check beside it: not trusted
    (tmp_path / runtimes.INT8_CHECK).write_text(json.dumps({"int8_mean_cosine": 0.9}))
    with caplog.at_level(logging.INFO, logger="styleid.inference.onnx_session"):
        assert runtimes.resolve_precision("auto", "onnxruntime", tmp_path) == "fp32"
    assert "mean cosine 0.900 < 0.98" in caplog.text


def test_the_pipelines_int8_folder_is_found_and_copies_keep_it_beside_the_model(quantized, tmp_path):
    """models/ keeps its int8 files in int8/ (the export stage's folder output, empty under embed.precision fp32): precision
    auto finds them there and ignores a stale one beside model.onnx; a copy of the model (an export, an index) holds them
    beside its model.onnx."""
    import shutil

    from styleid.inference.onnx_session import copy_model_files

    folder, images, _ = quantized
    models = tmp_path / "models"
    (models / runtimes.INT8_FOLDER).mkdir(parents=True)
    for name in ("model.json", "model.safetensors", runtimes.ONNX_FILE, runtimes.INT8_FILE, runtimes.INT8_CHECK):
        shutil.copy2(folder / name, models / name)  # the int8 pair beside model.onnx: an older export's, not this one's
    assert runtimes.resolve_precision("auto", "onnxruntime", models) == "fp32"  # int8/ is empty: none was made
    with pytest.raises(StyleidError, match=r"int8/model.int8.onnx: missing"):
        _embed(models, images, "int8")
    for name in (runtimes.INT8_FILE, runtimes.INT8_CHECK):
        shutil.move(models / name, models / runtimes.INT8_FOLDER / name)
    assert runtimes.resolve_precision("auto", "onnxruntime", models) == "int8"
    assert np.array_equal(_embed(models, images, "int8"), _embed(folder, images, "int8"))
    copy = tmp_path / "copy"
    copy.mkdir()
    copy_model_files(models, copy)
    assert sorted(p.name for p in copy.iterdir()) == sorted(["model.json", runtimes.ONNX_FILE, runtimes.INT8_FILE, runtimes.INT8_CHECK])
    assert runtimes.resolve_precision("auto", "onnxruntime", copy) == "int8"


def test_the_int8_trunk_ends_where_the_int8_top_reads_not_before_the_relu_the_quantiser_dropped(tmp_path):
    """ORT's quantiser drops a Relu before a uint8 QuantizeLinear and hands its output name to the node before it: a cut at
    that name would give the values before the Relu. The trunk ends at the DequantizeLinear the top reads instead."""
    import onnx
    import torch

    from styleid.inference.onnx_trunk import _cut, cut_tensor
    from styleid.inference.quantize import quantize_onnx

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3), torch.nn.Flatten()).eval()
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    torch.onnx.export(model, torch.randn(1, 3, 12, 12), str(fp32), input_names=["images"], output_names=["embeddings"],
                      dynamic_axes={"images": {0: "n"}}, dynamo=False)
    images = np.random.default_rng(0).normal(size=(16, 3, 12, 12)).astype(np.float32)
    quantize_onnx(fp32, int8, images[:8], images[8:])
    tensor = cut_tensor(fp32, "/2/")  # the Relu's output: what the top's first module reads
    assert tensor is not None and not any(n.op_type == "Relu" for n in onnx.load(str(int8)).graph.node)
    x = torch.from_numpy(images[8:])
    reference = torch.relu(model[0](x)).detach()
    for source, precision in ((fp32, "fp32"), (int8, "int8")):
        run, name = _cut(source, tensor, precision)
        out = run(x)
        assert name == f"onnxruntime {precision}" and out.min() >= 0  # after the Relu, in both
        cosine = torch.nn.functional.cosine_similarity(out.flatten(1), reference.flatten(1), dim=1)
        assert cosine.min() > (0.9999 if precision == "fp32" else 0.98)
