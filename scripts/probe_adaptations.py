"""Measure test-time adaptations that are not in the pipeline on a finished run's *validation* people.

    python scripts/probe_adaptations.py [RUN_FOLDER]     # default: this project

Embeds the run's validation photos and renders with its model (as the test is embedded: flip
averaging, no face crops; use it on runs whose align stage chose none), then scores each adaptation
and the paired bootstrap interval of its gain over centring (the default). Test people are never
touched: candidates earn a place in `embed.adapt` here first. Whitening was measured this way and
dropped (README, The default recipe).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf

from styleid import metrics
from styleid.data.align import AlignSettings
from styleid.fileio import read_json
from styleid.gallery.embedder import PhotoEmbedder
from styleid.images import load_rgb
from styleid.inference.normalize import l2_normalize
from styleid.search.adapt import adapt_pair


def _inverse_sqrt(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(cov)
    return v @ np.diag(1 / np.sqrt(np.maximum(w, 1e-12))) @ v.T


def _sqrt(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(cov)
    return v @ np.diag(np.sqrt(np.maximum(w, 0))) @ v.T


def _shrunk_cov(x: np.ndarray) -> np.ndarray:
    return LedoitWolf().fit(x).covariance_  # shrinkage: a 512-d covariance from a few hundred images is otherwise singular


def adaptations(q: np.ndarray, g: np.ndarray):
    """(name, queries, gallery) for each candidate; every statistic comes from the embeddings themselves, no labels."""
    centred = adapt_pair(q, g, "center")  # the pipeline's own (embed.adapt)
    yield "none", q, g
    yield "center", *centred
    cq, cg = q - q.mean(0), g - g.mean(0)
    pooled = _inverse_sqrt(_shrunk_cov(np.vstack([cq, cg])))
    yield "center + pooled whitening", l2_normalize(cq @ pooled), l2_normalize(cg @ pooled)
    yield "per-domain whitening", l2_normalize(cq @ _inverse_sqrt(_shrunk_cov(q))), l2_normalize(cg @ _inverse_sqrt(_shrunk_cov(g)))
    yield "CORAL (gallery recoloured as queries)", centred[0], l2_normalize(cg @ _inverse_sqrt(_shrunk_cov(g)) @ _sqrt(_shrunk_cov(q)))


def main(run: Path) -> None:
    os.chdir(run)
    split = read_json("data/splits.json")
    if not split.get("val_query") or not split.get("val_gallery"):
        sys.exit(f"{run}/data/splits.json: no validation people with photos and renders; nothing to probe")
    embedder = PhotoEmbedder(Path("models"), AlignSettings("none", 256, 0.2), flip=True, precision="fp32")
    q = embedder.embed([load_rgb(Path(e["file"])) for e in split["val_query"]])
    g = embedder.embed([load_rgb(Path(e["file"])) for e in split["val_gallery"]])
    q_people, g_people = [e["person"] for e in split["val_query"]], [e["person"] for e in split["val_gallery"]]
    ranked = {name: metrics.rank_by_scores(a @ b.T) for name, a, b in adaptations(q, g)}
    measured = {name: metrics.evaluate(r, q_people, g_people) for name, r in ranked.items()}
    print(f"{run}: {len(q)} validation photos, {len(g)} renders, {len(set(q_people))} people")
    for name, m in measured.items():
        low, high = metrics.difference_interval(ranked["center"], ranked[name], q_people, g_people, seed=0)
        print(f"  {name:40s} score {m['score']:6.1f}  mAP {m['mAP']:.3f}  gain over center {m['score'] - measured['center']['score']:+7.1f} ({low:+.1f} to {high:+.1f})")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
