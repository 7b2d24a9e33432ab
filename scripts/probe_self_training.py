"""Measure self-training (the self_train stage) on a finished run's *validation* people (never its test people), before it is chosen.

    python scripts/probe_self_training.py RUN_FOLDER [--epochs 1] [--lr 1e-5] [--eps 0.6]

The validation photos and renders stand in for a test set: they are embedded with the run's model as the
test is (flip averaging, centring), clustered into pseudo-people exactly as the embed stage would (their
purity is printed: the share of clustered images whose true person is their cluster's majority), the
model is fine-tuned on them with the run's recipe, and the score after is compared with the score before,
with the paired bootstrap interval of the gain. Other values of the settings are tried the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np

from styleid import metrics
from styleid.artifacts import MODEL_DIR, load_split
from styleid.data.align import AlignSettings
from styleid.gallery.embedder import PhotoEmbedder
from styleid.images import load_rgb
from styleid.models.embedder import load, save
from styleid.params import load_params
from styleid.search.adapt import adapt_pair
from styleid.search.pseudo_identities import find, purity
from styleid.training.self_training import self_train


def _embed(model_dir: Path, files: list[Path]) -> np.ndarray:
    embedder = PhotoEmbedder(model_dir, AlignSettings("none", 256, 0.2), flip=True, runtime="torch", precision="fp32")
    return np.concatenate([embedder.embed([load_rgb(f) for f in files[i:i + 256]]) for i in range(0, len(files), 256)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=None, help="default: the run's self_train.lr")
    ap.add_argument("--eps", type=float, default=None, help="default: the run's self_train.eps")
    args = ap.parse_args()
    os.chdir(args.run)
    params = load_params("params.yaml")
    s = params.self_train
    s = dataclasses.replace(s, epochs=args.epochs, lr=args.lr or s.lr, eps=args.eps or s.eps)
    params = dataclasses.replace(params, self_train=s)
    split = load_split()  # the model's inputs: face crops where the run aligned
    q_files, g_files = [Path(e["image"]) for e in split["val_query"]], [Path(e["image"]) for e in split["val_gallery"]]
    q_people, g_people = [e["person"] for e in split["val_query"]], [e["person"] for e in split["val_gallery"]]
    q, g = adapt_pair(*(x / np.linalg.norm(x, axis=1, keepdims=True) for x in (_embed(MODEL_DIR, q_files), _embed(MODEL_DIR, g_files))), "center")
    pseudo = find(q, g, s.eps, s.k1, s.k2, s.min_samples)
    labels = np.concatenate([pseudo.query, pseudo.gallery])
    print(f"{args.run}: {len(q)} validation photos, {len(g)} renders, {len(set(q_people))} people; {pseudo.summary()}, "
          f"purity {purity(labels, q_people + g_people):.3f}; epochs {s.epochs}, lr {s.lr}, eps {s.eps}")
    before = metrics.rank_by_scores(q @ g.T)
    result = self_train(load(MODEL_DIR), params, [*q_files, *g_files], ["photo"] * len(q) + ["render"] * len(g), labels)
    tuned = Path("/tmp") / f"probe_self_trained_{os.getpid()}"
    save(result.model, tuned)
    q2, g2 = adapt_pair(*(x / np.linalg.norm(x, axis=1, keepdims=True) for x in (_embed(tuned, q_files), _embed(tuned, g_files))), "center")
    after = metrics.rank_by_scores(q2 @ g2.T)
    m0, m1 = metrics.evaluate(before, q_people, g_people), metrics.evaluate(after, q_people, g_people)
    low, high = metrics.difference_interval(before, after, q_people, g_people, seed=0)
    print(f"  centred            score {m0['score']:6.1f}  mAP {m0['mAP']:.3f}")
    print(f"  self-trained       score {m1['score']:6.1f}  mAP {m1['mAP']:.3f}  gain {m1['score'] - m0['score']:+.1f} "
          f"({low:+.1f} to {high:+.1f}); {result.seconds:.0f} s")


if __name__ == "__main__":
    main()
