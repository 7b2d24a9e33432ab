"""Distributed benchmark: the same pipeline with one training process and two (torchrun + DDP, gloo on CPU),
and the same images embedded by the local and the Ray engine. Writes metrics/bench_distributed.json.

    python scripts/bench_distributed.py [--data PATH] [--epochs 2] [-S key=value ...]

Runs, in a temporary copy of the pipeline (`dvc repro` after each params change, so only what
changed reruns):
  1. baseline: train.nproc=1, embed.engine=local
  2. embed.engine=ray on the baseline model: embed images/s of each engine (model loading and
     cluster start-up excluded, both timed by the embed stage) and the largest difference between
     their embeddings
  3. train.nproc=2: training seconds, images/s and retrieval metrics against the baseline's
  4. seed+1 with one process: how far two seeds of the same run drift, the yardstick for 3
No timed asserts: these are measurements, run by `make bench-distributed`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import REPO, copy_pipeline  # noqa: E402

OURCAR = REPO.parent / "shared" / "data" / "ourcar_photo_caricature"
QUALITY = ("recall@1", "recall@5", "recall@10", "mAP", "score")


def _set(params: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for key in path:
        params = params.setdefault(key, {})
    params[last] = value


def _repro(repo: Path, changes: dict) -> dict:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in changes.items():
        _set(params, key, value)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"dvc repro failed with {changes}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    read = lambda name: json.loads((repo / "metrics" / name).read_text())  # noqa: E731
    return {"train": read("train.json"), "embed": read("embed.json"), "eval": read("eval.json")}


def _embeddings(repo: Path) -> np.ndarray:
    from styleid import shards

    return np.concatenate([shards.read(repo / "data" / "embeddings" / part) for part in ("query", "gallery")])


def main(data: Optional[str] = typer.Option(None, help="data.source (default: the OurCar set when present, else synthetic)"),
         epochs: int = typer.Option(2, help="training epochs of each run (early stopping off)"),
         sets: List[str] = typer.Option([], "-S", help="extra params for every run, key=value"),
         out: Path = typer.Option(REPO / "metrics" / "bench_distributed.json")) -> None:
    source = data or (str(OURCAR) if OURCAR.is_dir() else "synthetic")
    base = {"data.source": source, "epochs": epochs, "train.patience": 0, "train.nproc": 1, "embed.engine": "local"}
    for item in sets:
        key, _, value = item.partition("=")
        base[key] = yaml.safe_load(value)
    repo = Path(tempfile.mkdtemp(prefix="styleid-bench-dist-"))
    try:
        copy_pipeline(repo)
        for cmd in (["git", "init", "-q"], ["git", "-c", "user.email=b@b", "-c", "user.name=b", "add", "-A"],
                    ["git", "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "bench"]):
            subprocess.run(cmd, cwd=repo, check=True, capture_output=True)
        baseline = _repro(repo, base)
        local_vectors = _embeddings(repo)
        ray_run = _repro(repo, {"embed.engine": "ray"})
        ray_diff = float(np.abs(_embeddings(repo) - local_vectors).max())
        two = _repro(repo, {"embed.engine": "local", "train.nproc": 2})
        seed = yaml.safe_load((repo / "params.yaml").read_text())["seed"]
        other_seed = _repro(repo, {"train.nproc": 1, "seed": seed + 1})
    finally:
        shutil.rmtree(repo, ignore_errors=True)

    images = baseline["eval"]["n_queries"] + baseline["eval"]["n_gallery"]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "data": source, "params": base,
        "embed": {"images": images, "local_images_per_s": baseline["embed"]["embed_images_per_s"],
                  "ray_images_per_s": ray_run["embed"]["embed_images_per_s"], "max_abs_difference": ray_diff,
                  "same_metrics": all(ray_run["eval"][k] == baseline["eval"][k] for k in QUALITY)},
        "train": {name: {"processes": run["train"]["train_processes"], "seconds": run["train"]["train_seconds"],
                         "images_per_s": run["train"]["train_images_per_s"], **{k: run["eval"][k] for k in QUALITY}}
                  for name, run in (("one_process", baseline), ("two_processes", two), ("one_process_next_seed", other_seed))},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    e, t = result["embed"], result["train"]
    print(f"data: {source}; {images} images embedded; {epochs} epochs\n")
    print("| embed engine | images/s | max abs difference vs local | same metrics |\n|---|---|---|---|")
    print(f"| local | {e['local_images_per_s']} | - | - |")
    print(f"| ray (local cluster) | {e['ray_images_per_s']} | {e['max_abs_difference']:.2e} | {e['same_metrics']} |\n")
    print("| training | processes | seconds | images/s | R@1 | R@5 | R@10 | mAP | score |\n|---|---|---|---|---|---|---|---|---|")
    for name, r in t.items():
        print(f"| {name} | {r['processes']} | {r['seconds']} | {r['images_per_s']} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | "
              f"{r['recall@10']:.3f} | {r['mAP']:.3f} | {r['score']:.1f} |")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    typer.run(main)
