"""Layouts are recognised; every protocol keeps its promises (disjoint people, per-person shares)."""

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleid.data import layouts
from styleid.data.fetch import scan_and_check
from styleid.data.splits import is_labelled, make_split
from styleid.errors import DataError
from styleid.params import SplitParams


def _img(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(path)


def _people_folder(root: Path, people: int = 6, per: int = 10) -> Path:
    for p in range(people):
        for k in range(per):
            _img(root / f"person_{p}" / f"{k:02d}.jpg", p * 100 + k)
    return root


def _people(entries, part):
    return {e.person for e in entries[part]}


def test_layout_detection(synthetic_root, tmp_path):
    assert layouts.detect(synthetic_root) == "domains"
    assert layouts.detect(_people_folder(tmp_path / "lfw")) == "people"
    (tmp_path / "empty" / "x").mkdir(parents=True)
    with pytest.raises(DataError, match="unrecognised dataset layout"):
        layouts.detect(tmp_path / "empty")


def test_open_protocol_two_domains_keeps_people_disjoint(synthetic_root):
    result = scan_and_check(synthetic_root, "auto", 0.0)
    split, to_render = make_split(result.items, result.layout, "open", SplitParams(), seed=1)
    train, val, test = _people(split, "train"), _people(split, "val_query"), _people(split, "query")
    assert train and val and test and not (train & val) and not (train & test) and not (val & test)
    assert all(e.domain == "photo" for e in split["query"]) and all(e.domain == "render" for e in split["gallery"])
    assert _people(split, "gallery") == test and not to_render and is_labelled(split)


def test_open_protocol_one_domain_renders_held_out_photos_in_test_styles(tmp_path):
    root = _people_folder(tmp_path / "lfw", people=10, per=6)
    result = scan_and_check(root, "auto", 0.0)
    params = SplitParams(test_styles=["sketch", "cartoon"])
    split, to_render = make_split(result.items, result.layout, "open", params, seed=1)
    assert {e.style for e in split["gallery"]} <= {"sketch", "cartoon"} and len(to_render) == len(split["gallery"]) + len(split["val_gallery"])
    rendered_sources = {out.origin.path for out in to_render}
    assert not rendered_sources & {e.path for e in split["query"]}  # a query's own photo never joins the gallery
    assert not _people(split, "train") & _people(split, "query")


def test_closed_protocol_follows_the_reference_shares(tmp_path):
    root = _people_folder(tmp_path / "lfw", people=4, per=20)
    result = scan_and_check(root, "auto", 0.0)
    split, _ = make_split(result.items, result.layout, "closed", SplitParams(), seed=3)
    per = Counter(e.person for e in split["train"])
    assert set(per.values()) == {10}  # 50% train
    assert set(Counter(e.person for e in split["holdout"]).values()) == {4}  # 20% val
    assert set(Counter(e.person for e in split["query"]).values()) == {1}  # 20% of 6 test images
    assert set(Counter(e.person for e in split["gallery"]).values()) == {5}
    assert _people(split, "train") == _people(split, "query")  # the same people, by design
    paths = [e.path for part in ("train", "holdout", "query", "gallery") for e in split[part]]
    assert len(paths) == len(set(paths)) == 80


def test_splits_are_deterministic_for_a_seed(synthetic_root):
    result = scan_and_check(synthetic_root, "auto", 0.0)
    a, _ = make_split(result.items, result.layout, "open", SplitParams(), seed=7)
    b, _ = make_split(result.items, result.layout, "open", SplitParams(), seed=7)
    c, _ = make_split(result.items, result.layout, "open", SplitParams(), seed=8)
    assert a == b and a != c


def _competition(root: Path, labelled: bool) -> Path:
    _people_folder(root / "train", people=5, per=4)
    for p in range(3):
        for k in range(2):
            sub = f"p{p}/" if labelled else ""
            _img(root / "test" / "query" / f"{sub}q{p}{k}.jpg", 900 + p * 10 + k)
            _img(root / "test" / "gallery" / f"{sub}g{p}{k}.jpg", 800 + p * 10 + k)
    return root


@pytest.mark.parametrize("labelled", [True, False])
def test_competition_layout(tmp_path, labelled):
    root = _competition(tmp_path / "comp", labelled)
    result = scan_and_check(root, "auto", 0.0)
    assert result.layout == "competition"
    split, _ = make_split(result.items, result.layout, "open", SplitParams(), seed=0)
    assert len(split["query"]) == 6 and len(split["gallery"]) == 6
    assert is_labelled(split) is labelled
    assert not _people(split, "train") & _people(split, "val_query")


def test_archive_wrapper_folder_is_unwrapped(synthetic_root, tmp_path):
    shutil.copytree(synthetic_root, tmp_path / "wrap" / "dataset")
    assert layouts.unwrap(tmp_path / "wrap") == tmp_path / "wrap" / "dataset"


def test_competition_layout_with_domain_marked_training_images(tmp_path):
    """train/photos + train/renders mark each training image; validation is then photo -> render, like the test."""
    from styleid.data.synthetic import generate

    root = tmp_path / "comp"
    rows = generate(root, seed=2, people=8, photos=2, renders=2, size=40, test_people=3, test_photos=2, test_renders=2)
    assert {r[0].split("/")[0] for r in rows} == {"train", "test"} and len(rows) == (8 + 3) * 4
    assert layouts.detect(root) == "competition"
    result = scan_and_check(root, "auto", 0.0)
    train_domains = Counter(i.domain for i in result.items if i.subset == "train")
    assert train_domains == {"photo": 16, "render": 16}
    split, to_render = make_split(result.items, result.layout, "open", SplitParams(), seed=1)
    val = _people(split, "val_query")
    assert len(val) == 2 and val == _people(split, "val_gallery") and not val & _people(split, "train")  # 8 x 0.25
    assert all(e.domain == "photo" for e in split["val_query"]) and all(e.domain == "render" for e in split["val_gallery"])
    assert {e.domain for e in split["train"] + split["holdout"]} == {"photo", "render"}
    test = _people(split, "query")
    assert len(test) == 3 and test == _people(split, "gallery") and not test & (_people(split, "train") | val)
    assert all(e.path.startswith("test/query/") for e in split["query"]) and is_labelled(split) and not to_render


def test_unmarked_competition_training_images_keep_the_mixed_validation(tmp_path):
    from styleid.data.synthetic import generate

    src = tmp_path / "gen"
    generate(src, seed=2, people=8, photos=2, renders=2, size=40, test_people=2)
    for part in ("photos", "renders"):  # the real competition: train/<person>/* with photos and renders mixed
        for path in (src / "train" / part).rglob("*.png"):
            dest = src / "train" / path.parent.name / f"{part}_{path.name}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, dest)
        shutil.rmtree(src / "train" / part)
    result = scan_and_check(src, "auto", 0.0)
    assert {i.domain for i in result.items if i.subset == "train"} == {"unknown"}
    split, _ = make_split(result.items, result.layout, "open", SplitParams(), seed=1)
    assert len(_people(split, "val_query")) == 2 and len(split["val_query"]) == 2  # round(0.2 x 4) = 1 query per person


def test_rendered_gallery_images_are_marked_by_source_not_by_name_and_never_collide(tmp_path):
    """A person folder called `stylized` is a person like any other; a.jpg and a.png of one person render to two files."""
    from styleid.data.manifest import RENDERED, entry_file, source_roots

    root = _people_folder(tmp_path / "lfw", people=8, per=6)
    for k in range(6):
        _img(root / "stylized" / f"{k:02d}.jpg", 900 + k)
    for ext in ("jpg", "png"):
        _img(root / "person_0" / f"twin.{ext}", 7 if ext == "jpg" else 8)
    result = scan_and_check(root, "auto", 0.0)
    split, to_render = make_split(result.items, result.layout, "open", SplitParams(query_fraction=0.2), seed=3)
    rendered = to_render
    assert len({e.path for e in rendered}) == len(rendered)  # no two renders share a file
    assert all(e.source == RENDERED and e.domain == "render" for e in rendered)
    assert all(out.origin.source != RENDERED and out.origin.person == out.person and out.path.startswith(f"stylized/{out.person}/{out.origin.path.rsplit('/', 1)[-1]}_")
               for out in rendered)  # each render knows its photo: align crops it where the photo's face is
    roots = source_roots({"root": str(root)})
    everyone = [e for part in split.values() for e in part]
    real = [e for e in everyone if e.source != RENDERED]
    assert any(e.person == "stylized" for e in real)
    assert all(entry_file(e.path, roots[e.source]) == root / e.path for e in real)  # the `stylized` person's photos stay in the dataset
    assert all(entry_file(e.path, roots[e.source]) == Path("data") / e.path for e in rendered)
    twins = [out.path for out in to_render if out.origin.path.startswith("person_0/twin.")]
    assert len(twins) == len(set(twins))


def test_another_model_on_the_same_source_keeps_the_same_split():
    """The split stage declares only the data, split and seed params (and test_record checks that a stage reads no param
    it does not declare), so changing the backbone, the model or the training recipe never moves a person between train,
    validation and test."""
    import yaml
    from conftest import REPO

    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["split"]["params"]
    assert all(key == "seed" or key.split(".")[0] in ("data", "split") for key in declared), declared
