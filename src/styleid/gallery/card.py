"""The model card (card.json) that travels with an exported model: what it is, what it was trained on, how well it
did, under which licence, how photos must be prepared, and a match threshold calibrated on the validation people."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from styleid.fileio import read_json

FALSE_MATCH_RATE = 0.01  # the threshold's promise: about 1 in 100 photo/render pairs of different people scores above it


def weights_licence(backbone: str, pretrained: str, hub_weights: str) -> str:
    from styleid.models import facenet, weights

    if backbone == facenet.NAME:
        return facenet.OFFLINE_LICENCE if pretrained == "offline" else facenet.HUB_WEIGHTS.get(hub_weights) if pretrained == "hub" else "none"
    if pretrained == "offline" and backbone in weights.OFFLINE:
        return weights.OFFLINE.get(backbone).licence
    return "see timm's model card" if pretrained == "hub" else "yours (pretrained: none or a weights file)"


def calibrate(query_rows: np.ndarray, query_people: list[str], gallery_rows: np.ndarray, gallery_people: list[str],
              false_match_rate: float = FALSE_MATCH_RATE) -> dict:
    """The cosine similarity that different people's photo/render pairs exceed at `false_match_rate`, and the share of
    same-person pairs above it (true match rate)."""
    sims = query_rows @ gallery_rows.T
    same = np.asarray(query_people)[:, None] == np.asarray(gallery_people)[None, :]
    impostor, genuine = sims[~same], sims[same]
    if not len(impostor) or not len(genuine):
        return {}
    threshold = float(np.quantile(impostor, 1 - false_match_rate))
    return {"threshold": round(threshold, 4), "false_match_rate": false_match_rate,
            "true_match_rate": round(float((genuine > threshold).mean()), 4), "pairs": int(sims.size)}


def _read(path: Path) -> dict:
    return read_json(path) if path.is_file() else {}


def make_card(params, threshold: dict) -> dict:
    """The card for the repository's trained model (run from its root), from its model.json, params, alignment and metrics."""
    from styleid.artifacts import ALIGNED_INDEX, METRICS, MODEL_DIR, SOURCE
    from styleid.data.align import query_settings

    model, metrics, source = read_json(MODEL_DIR / "model.json"), _read(METRICS / "eval.json"), _read(SOURCE)
    d = params.data
    align = query_settings(_read(ALIGNED_INDEX) or None, d.align, d.align_size, d.align_margin)  # as `styleid search` aligns photos
    return {
        "format": "styleid model card 1",
        "backbone": model["backbone"], "pretrained": params.pretrained,
        "input": {"size": model["input_size"], "mean": model["mean"], "std": model["std"], "normalize": model["normalize_input"],
                  "interpolation": model["interpolation"], "crop_pct": model["crop_pct"], "layout": "NCHW float32 RGB in [0, 1] before normalisation"},
        "embedding_size": model["embed_dim"] or model["feature_dim"],
        "alignment": {"method": align.method, "size": align.size, "margin": align.margin},
        "flip_tta": params.embed.flip_tta,
        "precision": params.embed.precision,  # model.onnx, or model.int8.onnx when int8
        "training_data": {"source": params.data.source, "test_source": params.data.test_source, "protocol": params.data.protocol,
                          "layout": source.get("layout", "")},
        "params": {"lr": params.lr, "epochs": params.epochs, "batch_size": params.batch_size, "seed": params.seed, "loss": params.train.loss,
                   "freeze": params.train.freeze, "best_epoch": model.get("best_epoch")},
        "test_metrics": {k: metrics[k] for k in ("score", "score_ci95_low", "score_ci95_high", "recall@1", "recall@5", "recall@10", "mAP",
                                                 "n_queries", "n_gallery") if k in metrics},
        "licence": weights_licence(params.backbone, params.pretrained, params.model.hub_weights),
        "match": threshold,
    }
