"""Measure self-training (the self_train stage) on a finished run's *validation* people, for other settings than the run's.

    python scripts/probe_self_training.py RUN_FOLDER [--epochs 8] [--lr 1e-4] [--eps 0.6] [--rounds 1] [--set KEY=VALUE ...]
        [--try "epochs=16 memory=centroids" ...] [--precision fp32] [--save A.npz] [--against A.npz]

Exactly what `self_train.use: auto` checks before it touches the test (training/self_training.py: validation_gain):
the validation photos and renders, embedded with the run's model as the test is (flip averaging, the run's
adaptation), are clustered into pseudo-people (their purity is printed: the share of clustered images whose true
person is their cluster's majority), the model's top is fine-tuned on them, and the score after is compared with the
score before, with the paired bootstrap interval of the gain. The test people are never touched.
`--set` changes any self_train key for every setting; each `--try` is one more setting (self_train keys, space-separated),
measured in the same process (views cached once per top_stages and views) and compared, paired, with the first.
`--save` keeps the first setting's validation ranking after self-training; `--against` a saved one prints each setting's
paired gain over it (two settings compared on the same validation people, e.g. 2 rounds of 4 epochs against 1 of 8).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from styleid import metrics
from styleid.artifacts import MODEL_DIR, load_split, part_images
from styleid.inference.onnx_trunk import onnx_trunk
from styleid.models.embedder import load
from styleid.models.split import split as split_model
from styleid.params import load_params
from styleid.search.adapt import resolve
from styleid.training.self_training import cache_views, validation_rankings


def _setting(base, pairs: list[str]):
    """base (SelfTrainParams) with KEY=VALUE pairs applied, each value as its field's type."""
    changes = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in {f.name for f in dataclasses.fields(base)}:
            raise SystemExit(f"--set/--try: self_train has no key {key!r}")
        kind = type(getattr(base, key))
        changes[key] = kind(float(value)) if kind is int else kind(value)
    return dataclasses.replace(base, **changes)


def _describe(s) -> str:
    return ", ".join(f"{f.name} {getattr(s, f.name)}" for f in dataclasses.fields(s) if f.name != "use")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--epochs", type=int, default=None, help="default: the run's self_train.epochs")
    ap.add_argument("--lr", type=float, default=None, help="default: the run's self_train.lr")
    ap.add_argument("--eps", type=float, default=None, help="default: the run's self_train.eps")
    ap.add_argument("--rounds", type=int, default=None, help="default: the run's self_train.rounds (epochs are per round)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any self_train key, for every setting")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar='"KEY=VALUE ..."', help="one more setting")
    ap.add_argument("--precision", default=None, help="what runs the trunk's views: auto | fp32 | int8 (default: the run's embed.precision)")
    ap.add_argument("--save", type=Path, default=None, help="write the first setting's validation ranking after self-training here (.npz)")
    ap.add_argument("--against", type=Path, default=None, help="a --save file of another setting: print the paired gain over it")
    args = ap.parse_args()
    save, against = (p.resolve() if p else None for p in (args.save, args.against))
    os.chdir(args.run)
    params = load_params("params.yaml")
    s = params.self_train
    s = dataclasses.replace(s, epochs=args.epochs or s.epochs, lr=args.lr or s.lr, eps=args.eps or s.eps, rounds=args.rounds or s.rounds)
    s = _setting(s, args.set)
    settings = [s] + [_setting(s, t.split()) for t in args.tries]
    adapt = resolve(params.embed.adapt, MODEL_DIR)
    split = load_split()
    model = load(MODEL_DIR)
    (q_paths, q_people), (g_paths, g_people) = part_images(split, "val_query"), part_images(split, "val_gallery")
    views, first = {}, None
    for n, setting in enumerate(settings):
        tried = dataclasses.replace(params, self_train=setting)
        start = time.perf_counter()
        key = (setting.top_stages, setting.views)
        if key not in views and q_paths and g_paths:  # the trunk as the stage runs it: cut out of the run's export when there is one
            trunk = onnx_trunk(MODEL_DIR, args.precision or params.embed.precision, split_model(model, setting.top_stages).scope)
            views[key] = cache_views(model, tried, q_paths, g_paths, name="validation", exported=trunk)
        row, _, after = validation_rankings(model, tried, split, adapt, cached=views.get(key))
        took = time.perf_counter() - start
        print(f"{args.run} ({_describe(setting)}, adapt {adapt}; {took:.0f} s): " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        if after is None:
            return
        if n == 0:
            first = after
            if save:
                np.savez(save, ranking=after, setting=_describe(setting))
        else:
            _paired(f"against the first setting ({_describe(settings[0])})", first, after, row, q_people, g_people, params.seed)
        if against:
            other = np.load(against)
            if other["ranking"].shape != after.shape:
                raise SystemExit(f"{against}: a ranking of other validation people ({other['ranking'].shape} vs {after.shape}); save it from this run")
            _paired(f"against {other['setting']}", other["ranking"], after, row, q_people, g_people, params.seed)


def _paired(label: str, base: np.ndarray, after: np.ndarray, row: dict, q_people, g_people, seed: int) -> None:
    gains = {m: metrics.difference_interval(base, after, q_people, g_people, seed=seed, measure=m) for m in ("score", "mAP")}
    print(f"{label}: score {metrics.evaluate(base, q_people, g_people)['score']} -> {row['val_score_self_trained']}, "
          f"paired interval {gains['score'][0]:+.1f} to {gains['score'][1]:+.1f}; mAP paired interval {gains['mAP'][0]:+.4f} to {gains['mAP'][1]:+.4f}",
          flush=True)


if __name__ == "__main__":
    main()
