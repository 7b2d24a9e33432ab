"""Face alignment: MTCNN finds a real face, falls back to a centred crop elsewhere, caches crops."""

from __future__ import annotations

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
