"""Your own gallery: export round trip, a calibrated threshold, incremental re-indexing, search from anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image

from styleid.gallery import folder_index
from styleid.gallery.card import calibrate
from styleid.gallery.folder_index import build_index

pytest.importorskip("onnxruntime", reason="onnxruntime is a dependency of styleid; install the project with `make`")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(exported_model) -> Path:
    return exported_model


def test_threshold_lets_through_the_asked_share_of_different_people():
    rng = np.random.default_rng(0)
    people = np.repeat(np.arange(50), 2)
    centres = rng.normal(size=(50, 32))
    rows = centres[people] + 0.3 * rng.normal(size=(100, 32))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    q, g = rows[::2], rows[1::2]
    match = calibrate(q, list(people[::2]), g, list(people[1::2]), false_match_rate=0.01)
    sims = q @ g.T
    different = people[::2][:, None] != people[1::2][None, :]
    assert abs((sims[different] > match["threshold"]).mean() - 0.01) < 0.002
    assert match["true_match_rate"] > 0.9  # the same people, clearly above it


def test_exported_model_runs_with_onnxruntime_alone_and_equals_torch(model_dir, tmp_path):
    import torch

    images = np.random.default_rng(1).normal(size=(3, 3, 96, 96)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    code = ("import sys; sys.modules['torch'] = None\n"  # torch cannot be imported: the model must not need it
            "import numpy as np, onnxruntime as ort\n"
            f"s = ort.InferenceSession({str(model_dir / 'model.onnx')!r}, providers=['CPUExecutionProvider'])\n"
            f"np.save({str(tmp_path / 'out.npy')!r}, s.run(None, {{'images': np.load({str(tmp_path / 'images.npy')!r})}})[0])\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    from styleid.models.embedder import load

    with torch.inference_mode():
        expected = load(model_dir)(torch.from_numpy(images)).numpy()
    assert np.abs(np.load(tmp_path / "out.npy") - expected).max() < 1e-4


def test_reindexing_embeds_only_new_and_changed_files_and_drops_removed_ones(model_dir, tmp_path, monkeypatch):
    from styleid.gallery.embedder import OnnxPhotoEmbedder  # what a model without face alignment embeds a gallery with

    gallery = tmp_path / "gallery"
    for k in range(4):
        write_image(gallery / f"person{k % 2}" / f"{k}.png", k)
    (gallery / "notes.png").write_bytes(b"not an image")  # skipped with its reason, never fatal
    embedded: list[int] = []
    original = OnnxPhotoEmbedder.embed
    monkeypatch.setattr(OnnxPhotoEmbedder, "embed", lambda self, images: embedded.append(len(images)) or original(self, images))
    report = build_index(gallery, tmp_path / "index", model_dir)
    assert (report.added, report.changed, report.removed, report.kept, sum(embedded)) == (4, 0, 0, 0, 4)
    assert [name for name, _ in report.skipped] == ["notes.png"]
    entries = json.loads((tmp_path / "index" / "files.json").read_text())["files"]
    kept_row = np.load(tmp_path / "index" / "embeddings.npy")[[e["path"] for e in entries].index("person0/2.png")]

    embedded.clear()
    write_image(gallery / "person1" / "1.png", 99)  # changed content
    os.utime(gallery / "person1" / "1.png", ns=(1, 1))
    (gallery / "person1" / "3.png").unlink()  # removed
    write_image(gallery / "person2" / "5.png", 5)  # new
    report = build_index(gallery, tmp_path / "index", model_dir)
    assert (report.added, report.changed, report.removed, report.kept, sum(embedded)) == (1, 1, 1, 2, 2)
    doc = json.loads((tmp_path / "index" / "files.json").read_text())
    rows = np.load(tmp_path / "index" / "embeddings.npy")
    paths = [e["path"] for e in doc["files"]]
    assert paths == ["person0/0.png", "person0/2.png", "person1/1.png", "person2/5.png"]
    assert np.array_equal(rows[paths.index("person0/2.png")], kept_row)  # an unchanged file keeps its row, not re-embedded


def test_search_works_from_any_directory_with_json_and_verdicts(model_dir, tmp_path):
    gallery = tmp_path / "gallery"
    files = [write_image(gallery / f"{k}.png", k) for k in range(5)]
    build_index(gallery, tmp_path / "index", model_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-m", "styleid.cli", "search", str(files[3]), "--index", str(tmp_path / "index"), "--top-k", "3", "--json"],
                          cwd=elsewhere, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    top = doc["results"][0]["matches"]
    assert len(top) == 3 and top[0]["name"] == "3.png" and top[0]["score"] > 0.999 and top[0]["verdict"] == "same person"
    assert "cosine similarity" in doc["score"]


def test_an_unknown_index_is_one_line(tmp_path):
    from styleid.errors import StyleidError

    with pytest.raises(StyleidError, match="not a styleid index; make one with `styleid index"):
        folder_index.FolderIndex.load(tmp_path / "nothing")


def test_a_fetched_artifact_is_reused_from_the_cache_styleid_cache_names(tmp_path, monkeypatch):
    """A repository's model fetched once (per URL and version) is found again under $STYLEID_CACHE without running DVC."""
    import hashlib

    from styleid.gallery import model_dir

    monkeypatch.setenv("STYLEID_CACHE", str(tmp_path))
    url = "https://example.invalid/team/faces.git"
    folder = tmp_path / "artifacts" / hashlib.sha1(f"{url}@v1".encode()).hexdigest()[:16]
    folder.mkdir(parents=True)
    for name in model_dir.MODEL_FILES:
        (folder / name).write_text("{}")
    monkeypatch.setattr(model_dir.subprocess, "run", lambda *a, **k: pytest.fail("DVC ran although the model was cached"))
    assert model_dir.find_model(f"{url}#v1") == folder

