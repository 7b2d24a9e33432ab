"""Changing an index by hand (gallery/edit.py, `styleid index add/remove/list`): ids, labels, what a re-index keeps,
refusals that change nothing, and a kill at any moment leaving the last complete index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_image
from typer.testing import CliRunner

from styleid.cli import app
from styleid.errors import StyleidError
from styleid.gallery.edit import add_images, list_images, remove_images
from styleid.gallery.folder_index import FolderIndex, build_index
from styleid.gallery.search import rank

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def built(exported_model, tmp_path) -> dict:
    gallery = tmp_path / "gallery"
    for k in range(4):
        write_image(gallery / f"g{k}.png", k, (48, 48))
    build_index(gallery, tmp_path / "index", exported_model)
    return {"gallery": gallery, "index": tmp_path / "index", "model": exported_model, "new": write_image(tmp_path / "new.png", 77, (52, 48))}


def _top(index_dir: Path, photo: Path) -> dict:
    from PIL import Image

    from styleid.gallery.embedder import PhotoEmbedder

    index = FolderIndex.load(index_dir)
    results, _ = rank(PhotoEmbedder.from_card(index.model_dir).embed([Image.open(photo)]), ["q"], index, 3)
    return results[0]["matches"][0]


def test_an_added_image_is_found_with_its_label_kept_once_and_removed_by_id(built):
    entry = add_images(built["index"], [("new.png", built["new"].read_bytes())], label="Ada Lovelace")[0]
    top = _top(built["index"], built["new"])
    assert (top["id"], top["label"], top["name"]) == (entry["id"], "Ada Lovelace", entry["path"]) and Path(top["file"]).is_file()
    assert add_images(built["index"], [("again.png", built["new"].read_bytes())])[0]["id"] == entry["id"]  # the same bytes: not twice
    page = list_images(FolderIndex.load(built["index"]))
    assert page["total"] == 5 and [i["added"] for i in page["images"]] == [False] * 4 + [True] and page["images"][4]["label"] == "Ada Lovelace"
    assert remove_images(built["index"], [entry["id"]])[0]["id"] == entry["id"]
    assert FolderIndex.load(built["index"]).paths == ["g0.png", "g1.png", "g2.png", "g3.png"]
    assert not list((built["index"] / "added").glob("*"))  # its file went with it


def test_a_reindex_keeps_added_images_and_leaves_out_removed_folder_images(built):
    added = add_images(built["index"], [("new.png", built["new"].read_bytes())])[0]
    g1 = next(e for e in FolderIndex.load(built["index"]).entries if e["path"] == "g1.png")
    remove_images(built["index"], [g1["id"]])
    assert (built["gallery"] / "g1.png").is_file()  # the person's file stays where it is
    write_image(built["gallery"] / "g9.png", 9, (48, 48))
    report = build_index(built["gallery"], built["index"], built["model"])
    index = FolderIndex.load(built["index"])
    assert (report.added, report.kept) == (1, 3) and index.paths == ["g0.png", "g2.png", "g3.png", "g9.png", added["path"]]
    assert _top(built["index"], built["new"])["id"] == added["id"]
    before = [e["id"] for e in index.entries]
    assert [e["id"] for e in FolderIndex.load(built["index"]).entries] == before  # ids are stable


def test_refusals_name_the_problem_and_change_nothing(built, tmp_path):
    files = {p: p.read_bytes() for p in built["index"].rglob("*") if p.is_file()}
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(StyleidError, match="notes.png: .*nothing was added"):
        add_images(built["index"], [("new.png", built["new"].read_bytes()), ("notes.png", bad.read_bytes())])
    with pytest.raises(StyleidError, match="no image with id 000000000000; `styleid index list"):
        remove_images(built["index"], ["000000000000"])
    with pytest.raises(StyleidError, match="empty index"):
        remove_images(built["index"], [e["id"] for e in FolderIndex.load(built["index"]).entries])
    with pytest.raises(StyleidError, match="on one line"):
        add_images(built["index"], [("new.png", built["new"].read_bytes())], label="two\nlines")
    assert {p: p.read_bytes() for p in built["index"].rglob("*") if p.is_file()} == files


def test_the_cli_adds_lists_and_removes_and_still_builds_without_a_verb(built, tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["index", "add", str(built["index"]), str(built["new"]), "--label", "Ada"])
    assert out.exit_code == 0, out.output
    ident = out.output.split()[0]
    listed = json.loads(runner.invoke(app, ["index", "list", str(built["index"]), "--json", "--offset", "4"]).output)
    assert listed["total"] == 5 and [(i["id"], i["label"]) for i in listed["images"]] == [(ident, "Ada")]
    assert runner.invoke(app, ["index", "remove", str(built["index"]), ident]).output.startswith(f"removed {ident}")
    out = runner.invoke(app, ["index", "remove", str(built["index"]), "ffffffffffff"])
    assert out.exit_code == 1 and "styleid index remove: error: " in out.output and "no image with id ffffffffffff" in out.output
    out = runner.invoke(app, ["index", str(built["gallery"]), "--out", str(tmp_path / "other"), "--model", str(built["model"])])
    assert out.exit_code == 0 and "4 added" in out.output


def _add_command(built: dict, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "styleid.cli", "index", "add", str(built["index"]), str(built["new"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def test_a_kill_at_any_moment_of_an_add_leaves_the_last_complete_index(built):
    """SIGKILL at moments spread over an add (process start, embedding, writing), then once exactly where the old
    index has been moved aside and the new one not yet moved in: every time the index loads whole, before or after."""
    start = time.perf_counter()
    assert _add_command(built).wait(timeout=300) == 0
    took = time.perf_counter() - start
    ident = FolderIndex.load(built["index"]).entries[-1]["id"]
    remove_images(built["index"], [ident])
    for k in range(1, 8):
        proc = _add_command(built)
        time.sleep(took * k / 8)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert len(FolderIndex.load(built["index"]).paths) in (4, 5)
        if len(FolderIndex.load(built["index"]).paths) == 5:
            remove_images(built["index"], [ident])
    assert _add_command(built, {"STYLEID_KILL_BETWEEN_RENAMES": "1"}).wait(timeout=300) == -signal.SIGKILL
    assert not built["index"].exists()  # the moment between the two renames
    assert FolderIndex.load(built["index"]).paths == ["g0.png", "g1.png", "g2.png", "g3.png"]  # the old index is put back


def test_the_same_new_image_twice_in_one_add_is_added_once(built):
    data = built["new"].read_bytes()
    first, second = add_images(built["index"], [("a.png", data), ("b.png", data)])
    index = FolderIndex.load(built["index"])
    assert first["id"] == second["id"] and len(index.paths) == 5 and index.entries[-1]["id"] == first["id"]
