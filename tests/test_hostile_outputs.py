"""Hostile but ordinary output paths: no styleid command deletes or replaces what it did not write (index, export,
make-competition, --panel, compare --json, every stage output folder), including where following styleid's own hint
would once have deleted data."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_image
from typer.testing import CliRunner

from styleid import ownership
from styleid.cli import app
from styleid.errors import StyleidError
from styleid.fileio import atomic_dir
from styleid.gallery.folder_index import FolderIndex, build_index

pytest.importorskip("onnxruntime", reason="onnxruntime is a dependency of styleid; install the project with `make`")
REPO = Path(__file__).resolve().parents[1]


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def model_dir(exported_model) -> Path:
    return exported_model


@pytest.fixture()
def pics(tmp_path) -> Path:
    for k in range(3):
        write_image(tmp_path / "pics" / f"{k}.png", k)
    return tmp_path / "pics"


def _index(*args: str) -> tuple[int, str]:
    out = CliRunner().invoke(app, ["index", *args])
    return out.exit_code, out.output


@pytest.mark.parametrize("where", ["the folder itself", "its parent", "inside it", "unrelated folder", "a file"])
def test_index_out_never_destroys_what_is_there(pics, model_dir, tmp_path, where):
    (tmp_path / "unrelated").mkdir()
    (tmp_path / "unrelated" / "thesis.txt").write_text("years of work")
    (tmp_path / "notes.txt").write_text("mine")
    out = {"the folder itself": pics, "its parent": tmp_path, "inside it": pics / "idx", "unrelated folder": tmp_path / "unrelated",
           "a file": tmp_path / "notes.txt"}[where]
    before = _tree(tmp_path)
    code, text = _index(str(pics), "--out", str(out), "--model", str(model_dir))
    assert code == 1 and "nothing was changed" in text and "unexpected" not in text, text
    assert len(text.strip().splitlines()) == 1 and str(out) in text
    assert _tree(tmp_path) == before


def test_an_earlier_index_or_an_empty_folder_is_written_and_another_kind_needs_force(pics, model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    assert _index(str(pics), "--out", str(tmp_path / "empty"), "--model", str(model_dir))[0] == 0
    assert ownership.read_marker(tmp_path / "empty")["kind"] == "index"
    assert _index(str(pics), "--out", str(tmp_path / "empty"), "--model", str(model_dir))[0] == 0  # its own: updated
    code, text = _index(str(pics), "--out", str(model_dir), "--model", str(model_dir))  # an export's folder: a model, not an index
    assert code == 1 and ("holds files styleid did not write" in text or "not an index" in text), text
    export = tmp_path / "export"
    with atomic_dir(export, "export") as tmp:
        (tmp / "model.json").write_text("{}")
    code, text = _index(str(pics), "--out", str(export), "--model", str(model_dir))
    assert code == 1 and "holds a styleid export, not an index; pass --force" in text
    assert _index(str(pics), "--out", str(export), "--model", str(model_dir), "--force")[0] == 0
    assert ownership.read_marker(export)["kind"] == "index"


def test_files_a_person_put_into_styleids_own_folder_since_are_never_replaced(pics, model_dir, tmp_path):
    build_index(pics, tmp_path / "idx", model_dir)
    (tmp_path / "idx" / "my notes.txt").write_text("mine")
    code, text = _index(str(pics), "--out", str(tmp_path / "idx"), "--model", str(model_dir), "--force")
    assert code == 1 and "holds files styleid did not write (my notes.txt); move them out first" in text
    assert (tmp_path / "idx" / "my notes.txt").read_text() == "mine"


def test_following_the_hint_for_a_wrong_index_path_deletes_nothing(pics, model_dir):
    """`--index ~/pics` by mistake: the hint says `styleid index FOLDER --out ~/pics`; doing just that is refused."""
    with pytest.raises(StyleidError, match=r"make one with `styleid index FOLDER --out (\S+)`") as err:
        FolderIndex.load(pics)
    hinted = err.value.args[0].split("--out ")[1].rstrip("`")
    before = _tree(pics)
    code, text = _index(str(pics), "--out", hinted, "--model", str(model_dir))
    assert code == 1 and "is the gallery folder" in text
    assert _tree(pics) == before


def test_an_index_made_before_markers_is_still_updated(pics, model_dir, tmp_path):
    build_index(pics, tmp_path / "old", model_dir)
    (tmp_path / "old" / ownership.MARKER).unlink()  # as an older styleid left it
    build_index(pics, tmp_path / "old", model_dir)
    assert ownership.read_marker(tmp_path / "old")["kind"] == "index"


def _pipeline_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "models" / "model.safetensors").write_bytes(b"weights")
    (repo / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (repo / "dvc.yaml").write_text("stages:\n  embed:\n    cmd: x\n    outs:\n      - data/embeddings\n      - submission.json:\n          cache: false\n")
    return repo


@pytest.mark.parametrize("out", ["models", "models/exported", "data/embeddings/mine", "data", "."])
def test_export_and_index_refuse_the_pipelines_outputs(tmp_path, monkeypatch, pics, model_dir, out):
    repo = _pipeline_repo(tmp_path)
    monkeypatch.chdir(repo)
    before = _tree(repo)
    result = CliRunner().invoke(app, ["export", "--out", out])
    assert result.exit_code == 1 and "dvc repro replaces it" in result.output and "nothing was changed" in result.output, result.output
    code, text = _index(str(pics), "--out", out, "--model", str(model_dir))
    assert code == 1 and "dvc repro replaces it" in text
    assert _tree(repo) == before


def test_export_refuses_a_file_or_a_foreign_folder(tmp_path, monkeypatch):
    repo = _pipeline_repo(tmp_path)
    monkeypatch.chdir(repo)
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "me.jpg").write_bytes(b"jpeg")
    for out, why in ((tmp_path / "report.pdf", "is a file"), (tmp_path / "photos", "holds files styleid did not write (me.jpg)")):
        result = CliRunner().invoke(app, ["export", "--out", str(out)])
        assert result.exit_code == 1 and why in result.output, result.output
    assert (tmp_path / "report.pdf").read_bytes() == b"%PDF" and (tmp_path / "photos" / "me.jpg").read_bytes() == b"jpeg"


def test_an_unwritable_target_is_one_line_naming_it_not_an_unexpected_error(pics, model_dir, tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)  # as a read-only folder answers (root ignores mode bits)
    code, text = _index(str(pics), "--out", str(tmp_path / "ro" / "idx"), "--model", str(model_dir))
    assert code == 1 and "permission denied; choose a place you can write to" in text and "unexpected" not in text, text
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, dir=None, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system", str(dir))))
    code, text = _index(str(pics), "--out", str(tmp_path / "ro" / "idx"), "--model", str(model_dir))
    assert code == 1 and "read-only file system" in text and str(tmp_path / "ro") in text


def test_panel_and_comparison_files_replace_only_their_own(pics, model_dir, tmp_path):
    build_index(pics, tmp_path / "idx", model_dir)
    photo = write_image(tmp_path / "holiday.png", 7)
    before = photo.read_bytes()
    out = CliRunner().invoke(app, ["search", str(pics / "0.png"), "--index", str(tmp_path / "idx"), "--panel", str(photo)])
    assert out.exit_code == 1 and "is not a styleid panel" in out.output and photo.read_bytes() == before
    for _ in range(2):  # written, then replaced: its own
        out = CliRunner().invoke(app, ["search", str(pics / "0.png"), "--index", str(tmp_path / "idx"), "--panel", str(tmp_path / "p.png")])
        assert out.exit_code == 0, out.output
    (tmp_path / "data.json").write_text('{"mine": 1}')
    out = CliRunner().invoke(app, ["compare", str(tmp_path), str(tmp_path), "--json", str(tmp_path / "data.json")])
    assert out.exit_code == 1 and "is not a styleid comparison" in out.output
    assert json.loads((tmp_path / "data.json").read_text()) == {"mine": 1}


def test_make_competition_never_writes_over_its_source_or_foreign_files(tmp_path):
    src = tmp_path / "src"
    for person in ("a", "b", "c"):
        write_image(src / "photos" / person / "1.jpg", 1)
        write_image(src / "caricatures" / person / "1.jpg", 2)
    before = _tree(tmp_path)
    for out in (src, src / "copy", tmp_path):
        result = CliRunner().invoke(app, ["make-competition", str(src), str(out)])
        assert result.exit_code == 1 and "nothing was changed" in result.output, result.output
    (tmp_path / "comp.domains.csv").write_text("my,own,csv\n")
    result = CliRunner().invoke(app, ["make-competition", str(src), str(tmp_path / "comp")])
    assert result.exit_code == 1 and "comp.domains.csv: exists and is not a styleid domains CSV" in result.output
    assert _tree(tmp_path) == {**before, "comp.domains.csv": b"my,own,csv\n"}


@pytest.mark.parametrize("kind", sorted(ownership.KINDS))
def test_every_output_folder_kind_refuses_a_folder_of_another_kind_and_a_file(tmp_path, kind):
    path = tmp_path / "out"
    path.write_text("mine")
    with pytest.raises(StyleidError, match="is a file"):
        with atomic_dir(path, kind):
            pass
    path.unlink()
    other = "index" if kind != "index" else "export"
    with atomic_dir(path, other) as tmp:
        (tmp / "x").write_text("other")
    with pytest.raises(StyleidError, match=f"holds a styleid {other}"):
        with atomic_dir(path, kind):
            pass
    assert (path / "x").read_text() == "other"


@pytest.mark.parametrize("kind", [k.name for k in ownership.KINDS.values() if "*" not in k.legacy])
def test_output_folders_refuse_files_they_did_not_write(tmp_path, kind):
    """Every pipeline folder whose earlier contents can be told by name: a stranger's file there stops the write."""
    path = tmp_path / "out"
    path.mkdir()
    (path / "diary.txt").write_text("mine")
    with pytest.raises(StyleidError, match=r"holds files styleid did not write \(diary.txt\)"):
        with atomic_dir(path, kind):
            pass
    assert (path / "diary.txt").read_text() == "mine"


def test_stage_outputs_carry_their_marker(tmp_path):
    """The stages write their folders through atomic_dir with a kind: each one ends up marked (checked by name here,
    by the e2e tests on a real run)."""
    stage_kinds = {"stages/split.py": "stylized", "stages/self_train.py": "self-trained", "stages/evaluate.py": "panels",
                   "src/styleid/shards.py": "embedding-shards", "src/styleid/search/index.py": "faiss-parts",
                   "src/styleid/data/fetch.py": "synthetic", "src/styleid/data/sources.py": "extracted"}
    for file, kind in stage_kinds.items():
        assert f'"{kind}"' in (REPO / file).read_text(), file
    code = "from styleid.fileio import atomic_dir\nimport inspect\nprint(inspect.signature(atomic_dir).parameters['kind'].default is inspect._empty)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")}).stdout.strip() == "True"
