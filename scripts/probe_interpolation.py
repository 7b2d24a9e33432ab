"""Measure weight interpolation (WiSE-FT) on a finished run's *validation* people: the trained weights mixed back toward
the pretrained ones they started from.

    python scripts/probe_interpolation.py RUN_FOLDER [--alphas A,B,...]

For each alpha the model's weights are alpha * trained + (1 - alpha) * pretrained (alpha 1: the run's model; 0: the
backbone as `pretrained` loads it, frozen FaceNet for the default), the validation photos and renders are embedded as
the test is (flip averaging, the run's adaptation), and the score, R@1 and mAP are printed with the paired bootstrap
interval of the change against the run's model. Interpolation is known to keep a pretrained model's robustness to
distribution shift (Wortsman et al., "Robust fine-tuning of zero-shot models", 2022); it earns a place in the pipeline
only if validation people say so. The test people are never touched.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from styleid import metrics
from styleid.artifacts import MODEL_DIR, load_split, part_images
from styleid.models.embedder import build, load, model_config
from styleid.params import load_params
from styleid.inference.embed import extract
from styleid.inference.normalize import l2_normalize
from styleid.inference.transforms import eval_transform
from styleid.search.adapt import adapt_pair, resolve


def embed_pair(model, params, queries: list[Path], gallery: list[Path], adapt: str) -> tuple[np.ndarray, np.ndarray]:
    """Queries and gallery through the torch model as the embed stage embeds (flip averaging, L2, then `adapt`)."""
    e = params.embed
    rows = l2_normalize(extract(model, [*queries, *gallery], eval_transform(model.spec), e.batch_size, e.num_workers, "probe", e.flip_tta))
    return adapt_pair(rows[: len(queries)], rows[len(queries):], adapt)


def interpolate(trained: dict[str, torch.Tensor], pretrained: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """alpha * trained + (1 - alpha) * pretrained for floating-point tensors (new tensors; neither input changes);
    integer buffers (BatchNorm's step counts) are the trained model's."""
    if trained.keys() != pretrained.keys():
        raise SystemExit(f"the trained and pretrained models differ in {sorted(trained.keys() ^ pretrained.keys())[:3]}: "
                         "interpolation needs the same architecture (model.embed_dim 0)")
    return {k: torch.lerp(pretrained[k].float(), v.float(), alpha).to(v.dtype) if v.is_floating_point() else v.clone()
            for k, v in trained.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--alphas", default="0.75,0.5,0.25,0", help="shares of the trained weights to try, comma-separated")
    args = ap.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]
    os.chdir(args.run)
    params = load_params("params.yaml")
    adapt = resolve(params.embed.adapt, MODEL_DIR)
    split = load_split()
    model = load(MODEL_DIR)
    trained = {k: v.clone() for k, v in model.state_dict().items()}  # load_state_dict below writes into these tensors' storage
    pretrained = build(model_config(params)).state_dict()
    (q_paths, q_people), (g_paths, g_people) = part_images(split, "val_query"), part_images(split, "val_gallery")
    if not q_paths or not g_paths:
        raise SystemExit(f"{args.run}: no validation people to measure on (split.val_people is 0)")
    base = None
    for alpha in [1.0, *[a for a in alphas if a != 1.0]]:
        model.load_state_dict(interpolate(trained, pretrained, alpha))
        q, g = embed_pair(model, params, q_paths, g_paths, adapt)
        ranking = metrics.rank_by_scores(q @ g.T)
        m = metrics.evaluate(ranking, q_people, g_people)
        line = f"alpha {alpha:g}: score {m['score']:.1f}, R@1 {m['recall@1']:.3f}, mAP {m['mAP']:.4f}"
        if base is None:
            base = ranking
        else:
            low, high = metrics.difference_interval(base, ranking, q_people, g_people, seed=params.seed)
            map_low, map_high = metrics.difference_interval(base, ranking, q_people, g_people, seed=params.seed, measure="mAP")
            line += f"; against the trained model: score {low:+.1f} to {high:+.1f}, mAP {map_low:+.4f} to {map_high:+.4f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
