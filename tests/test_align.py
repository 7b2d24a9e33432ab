"""Face alignment: MTCNN finds a real face, falls back to a centred crop elsewhere, caches crops."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from styleid.data.align import AlignSettings, FaceAligner, _face_square, align_files

SETTINGS = AlignSettings("mtcnn", 96, 0.2)


def _sample(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)())


def test_finds_the_astronauts_face():
    aligner = FaceAligner(SETTINGS)
    image = _sample("astronaut")
    x1, y1, x2, y2 = aligner.face_box(image)
    assert 160 < x1 < 200 and 40 < y1 < 90 and 250 < x2 < 290 and 150 < y2 < 200  # her face, not the flag or suit
    result = aligner(image)
    assert result.found and result.crop.size == (96, 96)


def test_falls_back_to_a_centred_crop_without_a_face():
    result = FaceAligner(SETTINGS)(_sample("coffee"))
    assert not result.found and result.crop.size == (96, 96)


@pytest.mark.parametrize("box,size", [((0, 0, 50, 60), (100, 80)), ((70, 50, 100, 80), (100, 80)), ((-5, -5, 200, 200), (100, 80))])
def test_face_square_stays_inside_the_image(box, size):
    left, top, right, bottom = _face_square(box, size, 0.5)
    assert 0 <= left < right <= size[0] and 0 <= top < bottom <= size[1] and right - left == bottom - top


def test_align_files_caches_and_counts_fallbacks(tmp_path):
    files = []
    for name in ("astronaut", "coffee"):
        files.append(tmp_path / f"{name}.jpg")
        _sample(name).save(files[-1])
    out = tmp_path / "aligned"
    mapping, computed, fallbacks = align_files(files, out, SETTINGS)
    assert computed == 2 and fallbacks == 1 and set(mapping) == {f.as_posix() for f in files}
    assert all(Image.open(crop).size == (96, 96) for crop in mapping.values())
    again, computed, fallbacks = align_files(files, out, SETTINGS)
    assert again == mapping and computed == 0 and fallbacks == 1  # cached, and still counted
    other, computed, _ = align_files(files, out, AlignSettings("mtcnn", 64, 0.2))
    assert computed == 2 and set(other.values()).isdisjoint(mapping.values())  # a new setting is a new crop


def test_auto_aligns_wide_shots_and_leaves_face_crops(tmp_path):
    from styleid.data.align import resolve_method

    wide = _sample("astronaut")  # her face is about a fifth of the frame's side
    wide.save(tmp_path / "wide.jpg")
    wide.crop((175, 70, 275, 170)).save(tmp_path / "tight.jpg")  # inside her face box: a face crop
    method, share = resolve_method("auto", [tmp_path / "wide.jpg"], seed=0)
    assert method == "mtcnn" and share < 0.5
    method, _ = resolve_method("auto", [tmp_path / "tight.jpg"], seed=0)
    assert method == "none"
    assert resolve_method("none", [tmp_path / "wide.jpg"], 0) == ("none", None)
    assert resolve_method("auto", [], 0)[0] == "none"


def test_auto_leaves_images_alone_when_faces_are_found_in_under_half(tmp_path):
    """One wide shot with a face and two faceless drawings: crops would mostly be fallbacks, so auto says none."""
    from styleid.data.align import resolve_method

    _sample("astronaut").save(tmp_path / "wide.jpg")
    for k in range(2):
        Image.new("RGB", (200, 200), (240, 230 - 40 * k, 200)).save(tmp_path / f"plain{k}.jpg")
    files = [tmp_path / "wide.jpg", tmp_path / "plain0.jpg", tmp_path / "plain1.jpg"]
    assert resolve_method("auto", files, seed=0) == ("none", None)
    assert resolve_method("auto", files[:2], seed=0)[0] == "mtcnn"  # one in two is enough


def test_auto_decides_per_source_and_renders_follow_the_queries(tmp_path):
    """Tight training crops (ourcar) must not switch alignment off for a test source of wide shots (LFW)."""
    from styleid.data.align import plan_sources, query_source

    wide = _sample("astronaut")
    wide.save(tmp_path / "wide.jpg")
    wide.crop((175, 70, 275, 170)).save(tmp_path / "tight.jpg")
    photo = lambda name, source: {"file": str(tmp_path / name), "domain": "photo", "person": "p", **({"source": source} if source else {})}  # noqa: E731
    split = {"train": [photo("tight.jpg", "s0")], "val_query": [], "val_gallery": [],
             "query": [{**photo("wide.jpg", "test"), "domain": "unknown"}],  # a query is a photo whatever its label
             "gallery": [{"file": str(tmp_path / "render.jpg"), "domain": "render", "person": "p", "source": "rendered"}]}
    plan = plan_sources(split, ("train", "val_query", "val_gallery", "query", "gallery"), "auto", seed=0)
    assert plan["s0"][0] == "none" and plan["test"][0] == "mtcnn" and plan["rendered"] == plan["test"]
    assert query_source(split) == "test"
    assert {tag: m for tag, (m, _) in plan_sources(split, ("train", "query", "gallery"), "none", 0).items()} == {"s0": "none", "test": "none", "rendered": "none"}
    # a synthetic source's faces are drawn to fill the frame: auto is none there, the detector still decides the others
    drawn = plan_sources(split, ("train", "val_query", "val_gallery", "query", "gallery"), "auto", seed=0, drawn=["test"])
    assert drawn["test"] == ("none", None) and drawn["rendered"] == drawn["test"] and drawn["s0"][0] == "none"
    assert plan_sources(split, ("train", "query", "gallery"), "mtcnn", 0, drawn=["test"])["test"][0] == "mtcnn"  # asked for: done


def test_a_render_is_cropped_where_the_face_is_in_its_photo(tmp_path):
    """A hatched drawing hides the face from MTCNN; the photo it was drawn from (same framing) does not."""
    import numpy as np

    from styleid.data.stylize import stylize

    photo = _sample("astronaut")
    photo.save(tmp_path / "photo.jpg")
    stylize(photo, "hatching", np.random.default_rng(0)).save(tmp_path / "render.jpg")
    aligner = FaceAligner(SETTINGS)
    assert aligner.face_box(Image.open(tmp_path / "render.jpg").convert("RGB")) is None  # alone: a centred fallback
    out = tmp_path / "aligned"
    mapping, computed, fallbacks = align_files([tmp_path / "render.jpg"], out, SETTINGS, {tmp_path / "render.jpg": tmp_path / "photo.jpg"})
    assert computed == 1 and fallbacks == 0
    photo_crop, _, _ = align_files([tmp_path / "photo.jpg"], out, SETTINGS)
    crop = np.asarray(Image.open(mapping[(tmp_path / "render.jpg").as_posix()]).convert("L"), float)
    same = np.asarray(Image.open(photo_crop[(tmp_path / "photo.jpg").as_posix()]).convert("L"), float)
    centred = np.asarray(aligner(Image.open(tmp_path / "render.jpg").convert("RGB")).crop.convert("L"), float)
    assert np.corrcoef(crop.ravel(), same.ravel())[0, 1] > np.corrcoef(centred.ravel(), same.ravel())[0, 1] + 0.2  # her face, framed as the photo's
    alone, computed, _ = align_files([tmp_path / "render.jpg"], out, SETTINGS)
    assert computed == 1 and alone != mapping  # framed and unframed crops are cached apart


def test_the_align_stage_frames_rendered_galleries_by_their_photos(tmp_path):
    """fetch -> split -> align on photo-only people: every hatched gallery render is cropped at its photo's face."""
    import json
    import os
    import subprocess
    import sys

    from conftest import REPO

    photo = _sample("astronaut").resize((256, 256))
    for person in range(3):
        for k in range(4):  # the same face, a little brighter each time: distinct files
            (tmp_path / "people" / f"p{person}").mkdir(parents=True, exist_ok=True)
            photo.point(lambda v, s=person * 4 + k: min(255, v + s)).save(tmp_path / "people" / f"p{person}" / f"{k}.jpg")
    (tmp_path / "params.yaml").write_text(f"data:\n  source: {tmp_path / 'people'}\n  align: mtcnn\n  align_size: 64\n"
                                          "split:\n  test_styles: [hatching]\n")
    for name in ("fetch", "split", "align"):
        proc = subprocess.run([sys.executable, str(REPO / "stages" / f"{name}.py")], cwd=tmp_path, env={**os.environ}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    split = json.loads((tmp_path / "data" / "splits.json").read_text())
    rendered = [e for part in ("val_gallery", "gallery") for e in split[part] if e.get("source") == "rendered"]
    assert rendered and all(e["file"].endswith(f"/{Path(e['rendered_from']).name}_hatching.jpg") and (tmp_path / e["rendered_from"]).is_file()
                            for e in rendered)  # paths as the split writes them: relative to the run's folder
    metrics = json.loads((tmp_path / "metrics" / "align.json").read_text())
    assert metrics["align_images"] >= len(rendered) and metrics["align_fallbacks"] == 0  # alone, each hatched render would fall back
