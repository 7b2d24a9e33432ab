"""`styleid search DIR --index INDEX --out results.csv|json --sheet sheet.html`: a folder of queries, ranked matches per
query, a contact sheet, unreadable photos in a folder skipped, and only styleid's own files replaced."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import write_image
from typer.testing import CliRunner

from styleid.cli import app
from styleid.gallery.folder_index import build_index


@pytest.fixture
def built(exported_model, tmp_path) -> dict:
    for k in range(5):
        write_image(tmp_path / "gallery" / f"g{k}.png", k, (48, 48))
    build_index(tmp_path / "gallery", tmp_path / "index", exported_model)
    queries = tmp_path / "queries"
    for k in (1, 3):  # the same pixels as gallery images 1 and 3: each must come back first
        write_image(queries / "sub" / f"q{k}.png", k, (48, 48))
    (queries / "notes.png").write_bytes(b"not an image")
    (queries / ".hidden.png").write_bytes(b"skipped by its name")
    return {"index": tmp_path / "index", "queries": queries}


def test_a_folder_of_queries_gives_csv_json_and_a_contact_sheet(built, tmp_path, caplog):
    runner = CliRunner()
    out = runner.invoke(app, ["search", str(built["queries"]), "--index", str(built["index"]), "--top-k", "3",
                              "--out", str(tmp_path / "r.csv"), "--sheet", str(tmp_path / "sheet.html")])
    assert out.exit_code == 0, out.output
    assert "2 photos, 3 matches each; 1 unreadable skipped" in out.output
    assert [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()][0].startswith(f"search: skipped {built['queries'] / 'notes.png'}: ")
    with open(tmp_path / "r.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and [(r["query"].rsplit("/", 1)[-1], r["name"]) for r in rows if r["rank"] == "1"] == [("q1.png", "g1.png"), ("q3.png", "g3.png")]
    page = (tmp_path / "sheet.html").read_text()
    assert page.count("<section>") == 2 and page.count("data:image/jpeg;base64,") == 2 * 4 and "g3.png" in page
    assert runner.invoke(app, ["search", str(built["queries"]), "--index", str(built["index"]), "--out", str(tmp_path / "r.json")]).exit_code == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["kind"] == "styleid search" and [r["matches"][0]["name"] for r in doc["results"]] == ["g1.png", "g3.png"]
    again = runner.invoke(app, ["search", str(built["queries"]), "--index", str(built["index"]), "--out", str(tmp_path / "r.csv"),
                                "--sheet", str(tmp_path / "sheet.html")])
    assert again.exit_code == 0  # its own files: replaced


def test_it_never_replaces_a_file_it_did_not_write_and_a_named_bad_photo_is_an_error(built, tmp_path):
    mine = tmp_path / "mine.csv"
    mine.write_text("my,own,table\n")
    runner = CliRunner()
    out = runner.invoke(app, ["search", str(built["queries"]), "--index", str(built["index"]), "--out", str(mine)])
    assert out.exit_code == 1 and "is not a styleid search results file; nothing was changed" in out.output
    assert mine.read_text() == "my,own,table\n"
    out = runner.invoke(app, ["search", str(built["queries"] / "notes.png"), "--index", str(built["index"])])
    assert out.exit_code == 1 and "notes.png: " in out.output and "give a JPEG, PNG or WebP photo" in out.output
    out = runner.invoke(app, ["search", str(tmp_path / "nowhere"), "--index", str(built["index"])])
    assert out.exit_code == 1 and "nowhere: no such file or folder" in out.output
