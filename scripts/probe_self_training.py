"""Measure self-training (the self_train stage) on a finished run's *validation* people, for other settings than the run's.

    python scripts/probe_self_training.py RUN_FOLDER [--epochs 8] [--lr 1e-4] [--eps 0.6] [--rounds 1] [--save A.npz] [--against A.npz]

Exactly what `self_train.use: auto` checks before it touches the test (training/self_training.py: validation_gain):
the validation photos and renders, embedded with the run's model as the test is (flip averaging, the run's
adaptation), are clustered into pseudo-people (their purity is printed: the share of clustered images whose true
person is their cluster's majority), the model is fine-tuned on them with the run's recipe, and the score after is
compared with the score before, with the paired bootstrap interval of the gain. The test people are never touched.
`--save` keeps the validation ranking after self-training; `--against` a saved one prints this setting's paired gain over
that one's (two settings compared on the same validation people, e.g. 2 rounds of 4 epochs against 1 of 8).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np

from styleid import metrics
from styleid.artifacts import MODEL_DIR, load_split, part_images
from styleid.models.embedder import load
from styleid.params import load_params
from styleid.search.adapt import resolve
from styleid.training.self_training import validation_rankings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--epochs", type=int, default=None, help="default: the run's self_train.epochs")
    ap.add_argument("--lr", type=float, default=None, help="default: the run's self_train.lr")
    ap.add_argument("--eps", type=float, default=None, help="default: the run's self_train.eps")
    ap.add_argument("--rounds", type=int, default=None, help="default: the run's self_train.rounds (epochs are per round)")
    ap.add_argument("--save", type=Path, default=None, help="write the validation ranking after self-training here (.npz)")
    ap.add_argument("--against", type=Path, default=None, help="a --save file of another setting: print the paired gain over it")
    args = ap.parse_args()
    save, against = (p.resolve() if p else None for p in (args.save, args.against))
    os.chdir(args.run)
    params = load_params("params.yaml")
    s = params.self_train
    s = dataclasses.replace(s, epochs=args.epochs or s.epochs, lr=args.lr or s.lr, eps=args.eps or s.eps, rounds=args.rounds or s.rounds)
    params = dataclasses.replace(params, self_train=s)
    adapt = resolve(params.embed.adapt, MODEL_DIR)
    split = load_split()
    row, _, after = validation_rankings(load(MODEL_DIR), params, split, adapt)
    print(f"{args.run} (epochs {s.epochs}, rounds {s.rounds}, lr {s.lr}, eps {s.eps}, adapt {adapt}): " + ", ".join(f"{k} {v}" for k, v in row.items()))
    if after is None:
        return
    (_, q_people), (_, g_people) = part_images(split, "val_query"), part_images(split, "val_gallery")
    if save:
        np.savez(save, ranking=after, setting=f"epochs {s.epochs}, rounds {s.rounds}, lr {s.lr}, eps {s.eps}")
    if against:
        other = np.load(against)
        if other["ranking"].shape != after.shape:
            raise SystemExit(f"{against}: a ranking of other validation people ({other['ranking'].shape} vs {after.shape}); save it from this run")
        gains = {m: metrics.difference_interval(other["ranking"], after, q_people, g_people, seed=params.seed, measure=m) for m in ("score", "mAP")}
        print(f"against {other['setting']}: score {metrics.evaluate(other['ranking'], q_people, g_people)['score']} -> {row['val_score_self_trained']}, "
              f"paired interval {gains['score'][0]:+.1f} to {gains['score'][1]:+.1f}; mAP paired interval {gains['mAP'][0]:+.4f} to {gains['mAP'][1]:+.4f}")


if __name__ == "__main__":
    main()
