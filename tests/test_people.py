"""`styleid people INDEX --out DIR`: a gallery's images grouped into presumed people without labels."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import write_image
from typer.testing import CliRunner

from styleid.cli import app
from styleid.gallery.folder_index import build_index
from styleid.gallery.people import group


def test_grouping_finds_the_people_and_leaves_a_stranger_out():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 32))
    people = np.repeat(np.arange(4), [12, 9, 6, 5])
    rows = np.concatenate([centres[people] + 0.15 * rng.normal(size=(len(people), 32)), rng.normal(size=(1, 32))])
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    found = group(rows, eps=0.6, k1=6, k2=2, min_samples=4)  # neighbourhoods no larger than the people, as in a real gallery
    assert found.count == 4 and found.groups[-1] == -1 and found.confidence[-1] == 0
    for person in range(4):  # each person is one group, numbered by size
        assert set(found.groups[:-1][people == person].tolist()) == {person}
    assert found.confidence[:-1].min() > 0.9


def test_the_command_writes_a_csv_and_a_sheet_a_group_and_replaces_only_its_own(exported_model, tmp_path):
    gallery = tmp_path / "gallery"
    for person, copies in enumerate((6, 5, 4)):  # the same picture under several names: one embedding a person
        for k in range(copies):
            write_image(gallery / f"p{person}_{k}.png", 10 + person, (48, 48))
    write_image(gallery / "stranger.png", 99, (48, 48))
    build_index(gallery, tmp_path / "index", exported_model)
    small = ["--k1", "4", "--k2", "2", "--min-samples", "3"]  # a person has at most 6 images here
    out = CliRunner().invoke(app, ["people", str(tmp_path / "index"), "--out", str(tmp_path / "people"), *small])
    assert out.exit_code == 0, out.output
    assert "3 groups holding 15 of 16 images" in out.output
    with open(tmp_path / "people" / "people.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["image"].split("_")[0], r["group"]) for r in rows] == [("p0", "0")] * 6 + [("p1", "1")] * 5 + [("p2", "2")] * 4 + [("stranger.png", "-1")]
    assert sorted(p.name for p in (tmp_path / "people" / "groups").iterdir()) == ["group-000.png", "group-001.png", "group-002.png"]
    assert json.loads((tmp_path / "people" / "summary.json").read_text())["groups"] == 3
    assert CliRunner().invoke(app, ["people", str(tmp_path / "index"), "--out", str(tmp_path / "people"), *small]).exit_code == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "diary.txt").write_text("mine")
    out = CliRunner().invoke(app, ["people", str(tmp_path / "index"), "--out", str(mine)])
    assert out.exit_code == 1 and "nothing was changed" in out.output and (mine / "diary.txt").read_text() == "mine"


@pytest.mark.parametrize("inside", ["index", "gallery"])
def test_the_output_is_never_the_index_or_the_gallery(exported_model, tmp_path, inside):
    write_image(tmp_path / "gallery" / "a.png", 1, (48, 48))
    build_index(tmp_path / "gallery", tmp_path / "index", exported_model)
    out = CliRunner().invoke(app, ["people", str(tmp_path / "index"), "--out", str(tmp_path / inside / "people")])
    assert out.exit_code == 1 and "nothing was changed" in out.output or "inside" in out.output, out.output


def test_the_probe_scores_groups_against_the_folders():
    from conftest import load_script

    rows = [{"image": f"{p}/{k}.jpg", "group": g} for p, k, g in
            [("ann", 0, 0), ("ann", 1, 0), ("ann", 2, 0), ("bob", 0, 0), ("bob", 1, 1), ("bob", 2, 1), ("cy", 0, -1)]]
    assert load_script("probe_people").score(rows, min_samples=3) == {
        "images": 7, "groups": 2, "grouped_share": round(6 / 7, 3), "purity": round(5 / 6, 3), "recovered_people": 2, "people": 2, "all_people": 3}
