"""The search path without torch: ONNX Runtime, NumPy and Pillow give the torch runtime's embeddings, and a cold
`styleid search --index` (and `styleid index`) never imports torch for a model whose photos need no alignment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import write_image
from PIL import Image

from styleid.inference.onnx_photos import OnnxPhotoModel


def _photos(tmp_path: Path) -> list[Image.Image]:
    """Sizes, shapes and modes a person's photos come in: portrait, landscape, small, grey, with alpha."""
    sizes = [(40, 40), (97, 61), (250, 250), (33, 120)]
    images = [Image.open(write_image(tmp_path / f"p{k}.png", k, size)) for k, size in enumerate(sizes)]
    return images + [images[2].convert("L"), images[1].convert("RGBA")]


def test_the_onnx_photo_model_sees_the_pixels_and_gives_the_embeddings_of_the_torch_path(exported_model, tmp_path):
    from styleid.data.align import AlignSettings
    from styleid.gallery.embedder import PhotoEmbedder
    from styleid.inference.transforms import eval_transform

    lite = OnnxPhotoModel(exported_model)
    photos = _photos(tmp_path)
    transform = eval_transform(lite.spec)
    for photo in photos:
        assert np.array_equal(lite.pixels(photo), transform(photo.convert("RGB")).numpy())
    for flip in (False, True):
        torch_path = PhotoEmbedder(exported_model, AlignSettings("none", 256, 0.2), flip, runtime="onnxruntime").embed(photos)
        lite_rows = lite.embed(photos, flip)
        lite_rows /= np.linalg.norm(lite_rows, axis=1, keepdims=True)
        assert lite_rows.shape == torch_path.shape == (len(photos), 16)
        np.testing.assert_allclose(lite_rows, torch_path, atol=1e-5)


def test_a_cold_search_of_an_index_imports_no_torch_and_ranks_as_the_torch_path(exported_model, tmp_path):
    from styleid.data.align import AlignSettings
    from styleid.gallery.embedder import PhotoEmbedder
    from styleid.gallery.folder_index import FolderIndex

    gallery = tmp_path / "gallery"
    for k in range(6):
        write_image(gallery / f"g{k}.png", 100 + k, (60 + 7 * k, 64))
    photo = write_image(tmp_path / "photo.png", 100, (60, 64))
    probe = ("import sys\nfrom styleid.cli import app\ntry:\n    app(sys.argv[1:])\nfinally:\n"
             "    print('TORCH' if 'torch' in sys.modules else 'NO TORCH', file=sys.stderr)\n")
    runs = {}
    for args in (["index", str(gallery), "--out", str(tmp_path / "idx"), "--model", str(exported_model)],
                 ["search", str(photo), "--index", str(tmp_path / "idx"), "--json", "--top-k", "6"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1] == "NO TORCH", (args[0], proc.stderr[-2000:])
        runs[args[0]] = proc.stdout
    matches = json.loads(runs["search"])["results"][0]["matches"]
    index = FolderIndex.load(tmp_path / "idx")
    torch_path = PhotoEmbedder(exported_model, AlignSettings("none", 256, 0.2), True, runtime="onnxruntime")  # torch transforms
    scores = torch_path.embed([Image.open(gallery / name) for name in index.paths]) @ torch_path.embed([Image.open(photo)])[0]
    assert [m["name"] for m in matches] == [index.paths[i] for i in np.argsort(-scores, kind="stable")]
    assert matches[0]["name"] == "g0.png" and abs(matches[0]["score"] - float(scores.max())) < 1e-3


def test_a_card_asking_for_precision_auto_runs_without_torch_at_what_its_files_allow(exported_model, tmp_path):
    """`styleid export` writes precision auto: int8 where its check beside it agrees with fp32, else fp32."""
    import shutil

    from styleid.fileio import write_json
    from styleid.gallery.embedder import OnnxPhotoEmbedder, PhotoEmbedder

    model = tmp_path / "model"
    shutil.copytree(exported_model, model)
    write_json(model / "card.json", {"alignment": {"method": "none"}, "flip_tta": True, "precision": "auto"})
    embedder = PhotoEmbedder.from_card(model)
    assert isinstance(embedder, OnnxPhotoEmbedder) and embedder.model.session._model_path.endswith("model.onnx")
    shutil.copy(model / "model.onnx", model / "model.int8.onnx")  # stands in for the int8 file: only its check decides
    write_json(model / "model.int8.json", {"int8_mean_cosine": 0.999})
    assert PhotoEmbedder.from_card(model).model.session._model_path.endswith("model.int8.onnx")
    write_json(model / "model.int8.json", {"int8_mean_cosine": 0.9})
    assert PhotoEmbedder.from_card(model).model.session._model_path.endswith("model.onnx")
    assert PhotoEmbedder.from_card(model).embed([Image.open(write_image(tmp_path / "p.png", 1))]).shape == (1, 16)


def test_the_embed_stages_engine_runs_the_export_without_torch_and_embeds_as_the_torch_path(exported_model, tmp_path):
    """embed.engine local on ONNX Runtime with decoding in-process (the default install): image files in a batch size that
    does not divide them, with flip averaging, give the torch path's rows in order, and torch is never imported; a
    DataLoader worker or the torch runtime takes the torch path."""
    from styleid.inference.engines import open_engine
    from styleid.inference.onnx_photos import runs_without_torch
    from styleid.params import EmbedParams

    files = [write_image(tmp_path / "imgs" / f"i{k}.png", k, (50 + 9 * k, 64)) for k in range(7)]
    assert runs_without_torch("auto", 0) and runs_without_torch("onnxruntime", 0)
    assert not runs_without_torch("torch", 0) and not runs_without_torch("auto", 2)
    probe = ("import sys, numpy as np\nfrom pathlib import Path\nfrom styleid.inference.engines import open_engine\n"
             "from styleid.params import EmbedParams\n"
             "with open_engine(Path(sys.argv[1]), EmbedParams(batch_size=3, flip_tta=True)) as engine:\n"
             "    np.save(sys.argv[2], np.concatenate(list(engine.iter_embed([Path(p) for p in sys.argv[3:]]))))\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')\n")
    proc = subprocess.run([sys.executable, "-c", probe, str(exported_model), str(tmp_path / "rows.npy"), *map(str, files)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "NO TORCH", proc.stderr[-2000:]
    with open_engine(exported_model, EmbedParams(batch_size=3, flip_tta=True, runtime="onnxruntime", num_workers=1)) as engine:
        assert engine.transform is not None  # DataLoader workers: the torch path
        torch_rows = np.concatenate(list(engine.iter_embed(files)))
    rows = np.load(tmp_path / "rows.npy")
    assert rows.shape == torch_rows.shape == (7, 16)
    np.testing.assert_allclose(rows, torch_rows, atol=1e-5)
