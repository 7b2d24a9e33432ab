"""Results come from records: the README's table is what `make report` makes from reports/runs/, the README stays a
short guide (at most 400 lines, no commit hashes, every link to reports/ resolving)."""

from __future__ import annotations

import json
import re

from conftest import REPO, load_script

report = load_script("report")
record = load_script("record")
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_readme_table_and_results_md_are_what_make_report_writes():
    assert report.main(["--check"]) == 0, "run `make report` and commit reports/results.md and README.md"


def test_the_readme_table_has_at_most_twelve_rows_each_from_a_record():
    table = README.split(report.START, 1)[1].split(report.END, 1)[0].strip().splitlines()
    runs = report.load_runs()
    shown = [r for r in runs if r.get("readme")]
    assert len(table) - 2 == len(shown) <= 12
    for line, run in zip(table[2:], shown):
        assert f"| {run['metrics']['score']:.1f} |" in line and run["data"] in line


def test_every_record_names_its_command_params_machine_and_metrics():
    for path in sorted((REPO / "reports" / "runs").glob("*.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        assert run["name"] == path.stem
        assert {"command", "params", "commit", "machine", "stage_seconds", "metrics", "data", "recipe"} <= set(run), path.name
        assert run["params"] == record.changed_params(run["command"].removeprefix("dvc exp run").removeprefix("dvc repro")), path.name
        assert run["metrics"]["score"] is not None
        if "compare" in run:
            assert (REPO / "reports" / "runs" / f"{run['compare']['base']}.json").is_file(), path.name


def test_the_readme_is_a_short_guide_without_commit_hashes():
    assert len(README.splitlines()) <= 400
    assert not re.findall(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", README)  # no commit, however it is cited
    assert "the default before" not in README


def test_every_link_to_reports_resolves():
    links = re.findall(r"\]\(((?:reports|docs|plots)/[^)#]+)", README)
    assert links and all((REPO / link).is_file() for link in links), [link for link in links if not (REPO / link).is_file()]


def test_a_record_of_the_current_run_is_written_from_its_metrics(tmp_path, monkeypatch):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text(json.dumps({"recall@1": 0.5, "recall@5": 0.75, "recall@10": 1.0, "mAP": 0.6,
                                                                "score": 625.0, "score_ci95_low": 600.0, "score_ci95_high": 650.0}))
    (tmp_path / "metrics" / "train.json").write_text(json.dumps({"train_seconds": 12.34}))
    (tmp_path / "metrics" / "self_train.json").write_text(json.dumps({"self_train_total_seconds": 5.0, "self_train_seconds": 4.0}))
    monkeypatch.setattr(record, "REPO", tmp_path)
    record.main("try", data="tiny", recipe="default", args="-S lr=0.01 -S epochs=2", backbone="facenet", against=None, base_name="",
                order=5, readme=True, note="", folder=tmp_path)
    saved = json.loads((tmp_path / "reports" / "runs" / "try.json").read_text())
    assert saved["params"] == {"lr": "0.01", "epochs": "2"} and saved["command"] == "dvc exp run -S lr=0.01 -S epochs=2"
    assert saved["stage_seconds"] == {"train": 12.3, "self_train": 5.0} and saved["metrics"]["score"] == 625.0
    assert "| 625.0 | 600.0–650.0 |" in report.table([saved])


def test_the_minutes_column_gives_train_self_train_and_all_stages():
    assert report.minutes({"train": 1500.0, "self_train": 300.0, "embed": 60.0, "align": 240.0}) == "25, 5.0, 35"
    assert report.minutes({"train": 90.0}) == "1.5, –, 1.5" and report.minutes({}) == "–, –, –"
