"""Measure self-training (the self_train stage) on a finished run's *validation* people, for other settings than the run's.

    python scripts/probe_self_training.py RUN_FOLDER [--epochs 8] [--lr 1e-4] [--eps 0.6]

Exactly what `self_train.use: auto` checks before it touches the test (training/self_training.py: validation_gain):
the validation photos and renders, embedded with the run's model as the test is (flip averaging, the run's
adaptation), are clustered into pseudo-people (their purity is printed: the share of clustered images whose true
person is their cluster's majority), the model is fine-tuned on them with the run's recipe, and the score after is
compared with the score before, with the paired bootstrap interval of the gain. The test people are never touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from styleid.artifacts import MODEL_DIR, load_split
from styleid.models.embedder import load
from styleid.params import load_params
from styleid.search.adapt import resolve
from styleid.training.self_training import validation_gain


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--epochs", type=int, default=None, help="default: the run's self_train.epochs")
    ap.add_argument("--lr", type=float, default=None, help="default: the run's self_train.lr")
    ap.add_argument("--eps", type=float, default=None, help="default: the run's self_train.eps")
    args = ap.parse_args()
    os.chdir(args.run)
    params = load_params("params.yaml")
    s = params.self_train
    s = dataclasses.replace(s, epochs=args.epochs or s.epochs, lr=args.lr or s.lr, eps=args.eps or s.eps)
    params = dataclasses.replace(params, self_train=s)
    adapt = resolve(params.embed.adapt, MODEL_DIR)
    row = validation_gain(load(MODEL_DIR), params, load_split(), adapt)
    print(f"{args.run} (epochs {s.epochs}, lr {s.lr}, eps {s.eps}, adapt {adapt}): " + ", ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
