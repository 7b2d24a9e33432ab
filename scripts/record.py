"""Write the record of the run in this project folder (after `dvc repro` or `dvc exp run`) to reports/runs/NAME.json.

    python scripts/record.py NAME --data "ourcar photo -> caricature" --recipe default --args "-S data.source=..." \
        [--backbone "facenet (offline)"] [--against BASE_RUN_FOLDER --base-name frozen-ourcar] [--order 20] [--readme]

`make record NAME=... ARGS="-S ..."` runs the row (`dvc exp run ARGS`, or `dvc repro` without ARGS) and then this.
A record replaces the one of the same name; `make report` makes the tables from them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import typer

REPO = Path(__file__).resolve().parents[1]
METRIC_KEYS = ("recall@1", "recall@5", "recall@10", "mAP", "score", "score_ci95_low", "score_ci95_high", "n_queries", "n_gallery")


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def stage_seconds(folder: Path) -> dict[str, float]:
    """Each stage's own clock from metrics/<stage>.json (its <stage>_seconds, or <stage>_total_seconds)."""
    seconds = {}
    for path in sorted((folder / "metrics").glob("*.json")):
        stage = path.stem
        if stage.startswith("bench"):
            continue
        doc = json.loads(path.read_text())
        for key in (f"{stage}_total_seconds", f"{stage}_seconds", "seconds"):
            if isinstance(doc.get(key), (int, float)):
                seconds[stage] = round(float(doc[key]), 1)
                break
    return seconds


def changed_params(args: str) -> dict[str, str]:
    """The -S key=value pairs of a `dvc exp run` command line: what differs from the default params."""
    words, out = args.split(), {}
    for flag, value in zip(words, words[1:]):
        if flag in ("-S", "--set-param") and "=" in value:
            key, _, val = value.partition("=")
            out[key] = val
    return out


def main(name: str = typer.Argument(..., help="the record's name (reports/runs/NAME.json)"),
         data: str = typer.Option(..., help="the data column: what was tested"),
         recipe: str = typer.Option("default", help="the recipe column"),
         args: str = typer.Option("", help="the `dvc exp run` arguments the run took ('' = plain `dvc repro`)"),
         backbone: str = typer.Option("facenet (offline)", help="the backbone column"),
         against: Path = typer.Option(None, help="a baseline run's project folder: adds the paired gain over it"),
         base_name: str = typer.Option("", help="the baseline's record name (shown in the gain column)"),
         order: int = typer.Option(100, help="the row's place in the tables"),
         readme: bool = typer.Option(False, help="show the row in the README's short table"),
         note: str = typer.Option("", help="one line on what the row is"),
         folder: Path = typer.Option(Path("."), help="the project folder the run ran in")) -> None:
    metrics = json.loads((folder / "metrics" / "eval.json").read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True).stdout.strip()
    record = {"name": name, "order": order, "readme": readme, "data": data, "recipe": recipe, "backbone": backbone,
              "command": f"dvc exp run {args}" if args else "dvc repro", "params": changed_params(args), "commit": commit,
              "machine": machine(), "stage_seconds": stage_seconds(folder), "metrics": {k: metrics.get(k) for k in METRIC_KEYS}, "note": note}
    if against is not None:
        from styleid.paired_comparison import compare, load_run

        c = compare(load_run(against), load_run(folder))
        record["compare"] = {"base": base_name or str(against), "measure": c.measure, "gain": c.gain, "gain_low": c.gain_low, "gain_high": c.gain_high}
    out = REPO / "reports" / "runs" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"record: {out.relative_to(REPO)} (score {record['metrics']['score']}); `make report` updates the tables")


if __name__ == "__main__":
    typer.run(main)
