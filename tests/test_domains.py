"""Inferring photo / render for unmarked training images, and the competition-layout copy that measures it."""

import csv

import numpy as np
import pytest

from styleid.data import layouts
from styleid.data.convert import to_competition, truth_path
from styleid.data.domains import accuracy_against, apply_domains, label_domains, read_truth, to_labels
from styleid.data.synthetic import generate
from styleid.errors import DataError


def _clusters(n: int, seed: int, gap: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 16))
    x[:, 0] += np.where(y == 1, gap, -gap)
    return x, y


def test_classifier_labels_separable_domains_and_leaves_the_unsure_unknown():
    x, y = _clusters(200, 0)
    test_x, test_y = _clusters(100, 1)
    middle = np.zeros((1, 16))  # exactly between the two domains
    out = label_domains(x, y, np.vstack([test_x, middle]), min_confidence=0.9, seed=0)
    assert out.cv_accuracy > 0.95
    labels = np.array(out.labels[:-1])
    confident = labels != "unknown"
    assert confident.mean() > 0.9
    assert np.mean((labels[confident] == "photo") == (test_y[confident] == 1)) > 0.97
    assert out.labels[-1] == "unknown" and 0.1 < out.p_photo[-1] < 0.9
    again = label_domains(x, y, test_x, 0.9, seed=0)  # deterministic
    assert np.array_equal(again.p_photo, out.p_photo[:-1])


def test_classifier_needs_both_domains():
    x, _ = _clusters(20, 0)
    with pytest.raises(DataError, match="needs photos and renders"):
        label_domains(x, np.ones(20), x, 0.9, 0)


def test_confidence_threshold():
    assert to_labels(np.array([0.95, 0.5, 0.05, 0.9]), 0.9) == ["photo", "unknown", "render", "photo"]


def _e(file, person, domain="unknown"):
    return {"file": file, "image": file, "person": person, "domain": domain}


def test_apply_domains_marks_training_images_and_makes_validation_photo_to_render():
    split = {"train": [_e("t1", "a"), _e("t2", "a")], "holdout": [_e("h1", "a")],
             "val_query": [_e("v1", "b"), _e("w1", "c")],
             "val_gallery": [_e("v2", "b"), _e("v3", "b"), _e("w2", "c")],
             "query": [_e("q", "")], "gallery": [_e("g", "")]}
    inferred = {"t1": "photo", "t2": "render", "h1": "unknown", "v1": "render", "v2": "photo", "v3": "unknown", "w1": "photo"}
    out = apply_domains(split, inferred)
    assert [e["domain"] for e in out["train"]] == ["photo", "render"] and out["holdout"][0]["domain"] == "unknown"
    # b has a photo and a render now: its photo queries its render; its unsure image sits out
    assert [e["file"] for e in out["val_query"] if e["person"] == "b"] == ["v2"]
    assert [e["file"] for e in out["val_gallery"] if e["person"] == "b"] == ["v1"]
    # c has no inferred render: validated as before
    assert [e["file"] for e in out["val_query"] if e["person"] == "c"] == ["w1"]
    assert [e["file"] for e in out["val_gallery"] if e["person"] == "c"] == ["w2"]
    assert out["query"] == split["query"] and split["train"][0]["domain"] == "unknown"  # the input is untouched
    assert apply_domains(split, {}) is split


def test_truth_csv_is_checked_and_scored(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("path,domain\ntrain/a/1.jpg,photo\ntrain/a/2.jpg,render\ntrain/a/3.jpg,render\n")
    truth = read_truth(path)
    scores = accuracy_against(truth, {"train/a/1.jpg": ("photo", 0.97), "train/a/2.jpg": ("unknown", 0.6), "train/a/3.jpg": ("render", 0.02)})
    assert scores == {"truth_images": 3, "truth_accuracy": pytest.approx(2 / 3, abs=1e-4), "truth_confident_share": pytest.approx(2 / 3, abs=1e-4),
                      "truth_confident_accuracy": 1.0}
    path.write_text("path,domain\ntrain/a/1.jpg,cartoon\n")
    with pytest.raises(DataError, match=r"truth.csv:2: expected `path,domain`"):
        read_truth(path)
    with pytest.raises(DataError, match="names no file"):
        read_truth(tmp_path / "missing.csv")


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    src = tmp_path_factory.mktemp("src") / "people"
    generate(src, seed=3, people=10, photos=2, renders=2, size=32)
    return src


def test_competition_copy_unmarked_and_marked_put_the_same_people_in_the_same_roles(tmp_path, people):
    plain, marked = tmp_path / "plain", tmp_path / "marked"
    counts = to_competition(people, plain, test_share=0.3, seed=5)
    assert counts == {"train_people": 7, "test_people": 3, "train_images": 28, "query_images": 6, "gallery_images": 6}
    assert to_competition(people, marked, test_share=0.3, seed=5, mark_domains=True) == counts
    layout, entries = layouts.scan(plain)
    assert layout == "competition"
    train = [e for e in entries if e[3] == "train"]
    assert len(train) == 28 and {e[2] for e in train} == {"unknown"}
    assert all(len(e[0].rsplit("/", 1)[1]) == len("0123456789abcdef.png") or e[0].endswith(".jpg") for e in train)
    assert not any("photo" in e[0] or "render" in e[0] for e in train)  # names say nothing of the domain
    _, marked_entries = layouts.scan(marked)
    assert {e[2] for e in marked_entries if e[3] == "train"} == {"photo", "render"}
    roles = lambda es: {(e[1], e[3]) for e in es}  # noqa: E731
    assert roles(entries) == roles(marked_entries)
    assert {e[1] for e in entries if e[3] == "query"} == {e[1] for e in entries if e[3] == "gallery"}
    with open(truth_path(plain), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 28 and {r["path"] for r in rows} == {e[0] for e in train}
    assert sorted(r["domain"] for r in rows).count("photo") == 14


def test_competition_copy_refuses_one_domain_data(tmp_path, people):
    with pytest.raises(DataError, match="layout 'domains' needs a photos/"):
        to_competition(people / "renders", tmp_path / "out")


def test_make_competition_command(tmp_path, people):
    from typer.testing import CliRunner

    from styleid.cli import app

    out = CliRunner().invoke(app, ["make-competition", str(people), str(tmp_path / "comp"), "--test-share", "0.3", "--seed", "5"])
    assert out.exit_code == 0, out.output
    assert "7 training people (28 images, unmarked), 3 test people (6 queries, 6 gallery)" in out.output
    assert (tmp_path / "comp.domains.csv").is_file() and layouts.detect(tmp_path / "comp") == "competition"
    missing = CliRunner().invoke(app, ["make-competition", str(tmp_path / "nope"), str(tmp_path / "x")])
    assert missing.exit_code == 1 and "nope: no such folder" in missing.output and "Traceback" not in missing.output
