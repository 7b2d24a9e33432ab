"""The results tables, made from the recorded runs in reports/runs/*.json (one file a run; `make record` writes one).

    python scripts/report.py            # rewrites reports/results.md (every run) and the README's table (runs marked readme)
    python scripts/report.py --check    # exits 1 when either differs from what the records give (tests/test_report.py)

A table's figures are never typed by hand: change a row by recording its run again (history lives in git).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "reports" / "runs"
RESULTS = REPO / "reports" / "results.md"
README = REPO / "README.md"
START, END = "<!-- results: made by `make report` from reports/runs/; do not edit -->", "<!-- end of results -->"
# long param lists the tables write by name (each is spelled out under the README's table)
ABBREVIATIONS = {
    "$REF": "-S backbone=tf_efficientnet_lite0 -S train.loss=cross_entropy -S train.freeze=all -S train.optimizer=adam -S train.weight_decay=0 "
            "-S train.schedule=constant -S train.warmup_epochs=0 -S train.augment=false -S train.m_per_class=0 -S train.select_by=val_loss "
            "-S train.patience=0 -S lr=0.001 -S epochs=5 -S batch_size=32 -S model.embed_dim=0 -S embed.flip_tta=false -S embed.adapt=none "
            "-S retrieve.rerank=none -S data.align=none",
    "$FROZEN": "-S train.freeze=all -S train.loss=cross_entropy -S train.augment=false -S epochs=1",
    "$PLAIN": "-S embed.flip_tta=false -S embed.adapt=none -S retrieve.rerank=none",
}
HEADER = ("| data | recipe | backbone | R@1 | R@5 | R@10 | mAP | score | 95% interval | gain (paired 95% interval) | minutes: train, self-train, "
          "all stages | command |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def load_runs(folder: Path = RUNS) -> list[dict]:
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    return sorted(runs, key=lambda r: (r["order"], r["name"]))


def _num(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _gain(run: dict, names: dict[str, dict]) -> str:
    c = run.get("compare")
    if not c:
        return "–"
    base = names.get(c["base"], {}).get("recipe", c["base"])
    digits = 1 if c.get("measure", "score") == "score" else 3
    return f"{c['gain']:+.{digits}f} ({c['gain_low']:+.{digits}f} to {c['gain_high']:+.{digits}f}) over {base}"


def short(command: str) -> str:
    for name, spelled in ABBREVIATIONS.items():
        command = command.replace(spelled, name)
    return command


def row(run: dict, names: dict[str, dict]) -> str:
    m = run["metrics"]
    low, high = m.get("score_ci95_low"), m.get("score_ci95_high")
    interval = "–" if low is None else f"{low:.1f}–{high:.1f}"
    recipe = f"**{run['recipe']}**" if run.get("bold") else run["recipe"]
    command = f"`{short(run['command'])}`" if run.get("command") else "–"
    return (f"| {run['data']} | {recipe} | {run['backbone']} | {_num(m.get('recall@1'), 3)} | {_num(m.get('recall@5'), 3)} | "
            f"{_num(m.get('recall@10'), 3)} | {_num(m.get('mAP'), 3)} | {_num(m.get('score'), 1)} | {interval} | {_gain(run, names)} | "
            f"{minutes(run.get('stage_seconds') or {})} | {command} |")


def minutes(seconds: dict[str, float]) -> str:
    """Train, self-train and all the run's stages together, in minutes, from its record ("–" where not recorded)."""
    def one(value: float | None) -> str:
        return "–" if value is None else (f"{value / 60:.1f}" if value < 600 else f"{value / 60:.0f}")

    total = sum(seconds.values()) if seconds and "train" in seconds else None  # a record without train's clock lacks the others too
    return f"{one(seconds.get('train'))}, {one(seconds.get('self_train'))}, {one(total)}"


def table(runs: list[dict], every: list[dict] | None = None) -> str:
    names = {r["name"]: r for r in every or runs}
    return "\n".join([HEADER, *(row(r, names) for r in runs)])


def results_md(runs: list[dict]) -> str:
    lines = ["# Results", "", "Every recorded run (`reports/runs/`), made by `make report`; the README shows the rows marked `readme`.",
             "A run's record holds its command, the commit it ran at, the params that differ from the default, the machine,",
             "each stage's seconds and its metrics with their intervals.", "",
             *(f"`{name}` = `{spelled}`" + "  " for name, spelled in ABBREVIATIONS.items()), "", table(runs), ""]
    for run in runs:
        lines.append(f"- **{run['name']}**: {run.get('note', '')} (commit {run.get('commit') or 'unknown'}; {run.get('machine') or 'machine unknown'})")
    return "\n".join(lines) + "\n"


def readme_with(readme: str, runs: list[dict]) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"{README}: no results markers ({START} ... {END}); put them where the table goes")
    head, rest = readme.split(START, 1)
    return head + START + "\n" + table([r for r in runs if r.get("readme")], runs) + "\n" + END + rest.split(END, 1)[1]


def main(argv: list[str]) -> int:
    runs = load_runs()
    wanted = {RESULTS: results_md(runs), README: readme_with(README.read_text(encoding="utf-8"), runs)}
    if "--check" in argv:
        stale = [str(p.relative_to(REPO)) for p, text in wanted.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        if stale:
            print(f"report: {', '.join(stale)} differ from reports/runs/; run `make report`")
            return 1
        return 0
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
    print(f"report: {len(runs)} runs -> {RESULTS.relative_to(REPO)}, {sum(1 for r in runs if r.get('readme'))} in the README")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
