"""Compare experiments the DVC way: queue `dvc exp run`s, run the queue, print one markdown table.

    python scripts/compare.py backbones  [--data PATH] [--protocol open|closed] [-S key=value ...]
    python scripts/compare.py ablations  [--data PATH] [--protocol open|closed] [-S key=value ...]
    python scripts/compare.py table NAME...        # the table for experiments already run

backbones: tf_efficientnet_lite0, mobilenetv2_100 and facenet with their offline weights, plus
efficientnet_b0, resnet50 and vit_base_patch16_224 from timm's hub when it is reachable (skipped
with a note when it is not). ablations: the reference's, on the reference recipe (lr, epochs,
batch size, ImageNet normalisation, augmentation). Tables also go to reports/<what>.md.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True)
REPORTS = Path("reports")

# The reference recipe: frozen ImageNet backbone, linear cross-entropy head, Adam, best val_loss, no extras.
REFERENCE = ["backbone=tf_efficientnet_lite0", "train.loss=cross_entropy", "train.freeze=all", "train.optimizer=adam",
             "train.weight_decay=0", "train.schedule=constant", "train.warmup_epochs=0", "train.augment=false",
             "train.m_per_class=0", "train.select_by=val_loss", "train.patience=0", "lr=0.001", "epochs=5",
             "batch_size=32", "model.embed_dim=0", "embed.flip_tta=false", "embed.adapt=none", "retrieve.rerank=none", "data.align=none"]
OFFLINE_BACKBONES = ["tf_efficientnet_lite0", "mobilenetv2_100", "facenet"]
HUB_BACKBONES = ["efficientnet_b0", "resnet50", "vit_base_patch16_224"]
ABLATIONS = {  # name -> the one change from the reference recipe
    "ref": [], "lr_1e-2": ["lr=0.01"], "lr_1e-1": ["lr=0.1"], "epochs_3": ["epochs=3"],
    "bs_8": ["batch_size=8"], "bs_64": ["batch_size=64"], "no_imagenet_norm": ["train.imagenet_norm=false"],
    "augment": ["train.augment=true"],
}
COLUMNS = [("recall@1", "R@1", 3), ("recall@5", "R@5", 3), ("recall@10", "R@10", 3), ("mAP", "mAP", 3), ("score", "score", 1),
           ("train_seconds", "train s", 0), ("embed_images_per_s", "embed img/s", 1), ("index_build_seconds", "index s", 3),
           ("search_ms_per_query", "search ms/q", 3)]


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _dvc(*args: str) -> str:
    proc = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        typer.echo(f"compare: `dvc {' '.join(args)}` failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}", err=True)
        raise typer.Exit(1)
    return proc.stdout


def queue_and_run(runs: dict[str, list[str]], common: list[str], prefix: str) -> list[str]:
    """Queue one experiment per entry (params reset to the committed params.yaml each time), run them, wait."""
    names = []
    for name, changes in runs.items():
        full = f"{prefix}-{name}"
        _dvc("exp", "run", "--queue", "--name", full, *[a for kv in [*common, *changes] for a in ("-S", kv)])
        subprocess.run(["git", "checkout", "--", "params.yaml"], check=False)
        names.append(full)
    _dvc("queue", "start", "--jobs", "1")
    while True:  # workers run in the background; wait until none is queued or running
        status = _dvc("queue", "status")
        if not any(word in status for word in ("Queued", "Running")):
            break
        time.sleep(10)
    return names


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def collect(names: list[str]) -> dict[str, dict]:
    shown = json.loads(_dvc("exp", "show", "--json"))
    found = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs", []):
                if rev.get("name") in names and rev.get("data"):
                    data = rev["data"]
                    metrics = {}
                    for file in data.get("metrics", {}).values():
                        metrics.update(file.get("data", {}))
                    params = _flatten(data.get("params", {}).get("params.yaml", {}).get("data", {}))
                    found[rev["name"]] = {"metrics": metrics, "params": params, "error": rev.get("error")}
    return found


def table(names: list[str], label: str, notes: list[str]) -> str:
    rows = collect(names)
    head = [label, *[title for _, title, _ in COLUMNS]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        got = rows.get(name)
        if not got or "score" not in got["metrics"]:
            lines.append(f"| {name} | " + " | ".join(["failed"] + [""] * (len(COLUMNS) - 1)) + " |")
            continue
        cells = []
        for key, _, digits in COLUMNS:
            value = got["metrics"].get(key)
            cells.append("–" if value is None else f"{value:.{digits}f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + [f"- {n}" for n in notes]) + "\n"


def _common(data: Optional[str], protocol: Optional[str], sets: List[str]) -> list[str]:
    return [*([f"data.source={data}"] if data else []), *([f"data.protocol={protocol}"] if protocol else []), *sets]


def _publish(what: str, text: str) -> None:
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"{what}.md").write_text(text)
    typer.echo(text)


@app.command()
def backbones(data: Optional[str] = typer.Option(None, help="data.source for every run"),
              protocol: Optional[str] = typer.Option(None, help="data.protocol for every run"),
              sets: List[str] = typer.Option([], "-S", help="extra key=value for every run")) -> None:
    """Each backbone with the default recipe (offline weights; hub ones when reachable)."""
    runs = {name: [f"backbone={name}", "pretrained=offline"] for name in OFFLINE_BACKBONES}
    notes = []
    if hub_reachable():
        runs.update({name: [f"backbone={name}", "pretrained=hub"] for name in HUB_BACKBONES})
    else:
        notes.append(f"skipped {', '.join(HUB_BACKBONES)}: timm's hub (huggingface.co) is not reachable from here")
    names = queue_and_run(runs, _common(data, protocol, sets), "bb")
    _publish("backbones", table(names, "backbone", notes))


@app.command()
def ablations(data: Optional[str] = typer.Option(None, help="data.source for every run"),
              protocol: Optional[str] = typer.Option(None, help="data.protocol for every run"),
              sets: List[str] = typer.Option([], "-S", help="extra key=value for every run")) -> None:
    """The reference's ablations, each one change from the reference recipe."""
    names = queue_and_run(ABLATIONS, [*REFERENCE, *_common(data, protocol, sets)], "abl")
    _publish("ablations", table(names, "ablation", ["each row: the reference recipe with one change (see scripts/compare.py)"]))


@app.command("table")
def show_table(names: List[str] = typer.Argument(..., help="experiment names")) -> None:
    """The markdown table for experiments already run."""
    typer.echo(table(list(names), "experiment", []))


if __name__ == "__main__":
    sys.exit(app())
