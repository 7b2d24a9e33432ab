"""Pseudo-identity clustering (the self_train stage's) at one gallery size, in a process of its own: its time and peak
memory. Synthetic unit vectors: `size` images of size/5 people, photos and renders (a shared style shift) alike.

    python scripts/bench_cluster.py --size 100000 [--dim 512]      # prints one JSON line
"""

from __future__ import annotations

import json
import resource
import time

import numpy as np
import typer
import yaml
from pathlib import Path

from styleid.inference.normalize import l2_normalize
from styleid.search.pseudo_identities import find

REPO = Path(__file__).resolve().parents[1]


def vectors(size: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(photos, renders): five images a person, two photos and three renders, around the person's centre."""
    rng = np.random.default_rng(seed)
    people = max(1, size // 5)
    centres = l2_normalize(rng.normal(size=(people, dim)).astype(np.float32))
    style = 0.3 * l2_normalize(rng.normal(size=(1, dim)).astype(np.float32))
    noise = lambda n: (0.35 / np.sqrt(dim) * rng.normal(size=(n, dim))).astype(np.float32)  # noqa: E731
    photos = l2_normalize(np.repeat(centres, 2, axis=0) + noise(2 * people))
    renders = l2_normalize(np.repeat(centres, 3, axis=0) + style + noise(3 * people))
    return photos, renders


def main(size: int = typer.Option(100_000, help="images to cluster"), dim: int = typer.Option(512, help="embedding size")) -> None:
    s = yaml.safe_load((REPO / "params.yaml").read_text())["self_train"]
    photos, renders = vectors(size, dim)
    start = time.perf_counter()
    pseudo = find(photos, renders, s["eps"], s["k1"], s["k2"], s["min_samples"])
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB
    print(json.dumps({"size": size, "dim": dim, "seconds": round(seconds, 1), "peak_gb": round(peak_gb, 2), "pseudo_people": pseudo.people,
                      "true_people": size // 5}))


if __name__ == "__main__":
    typer.run(main)
