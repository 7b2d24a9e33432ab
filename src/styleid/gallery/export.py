"""`styleid export`: the repository's trained model as a folder anyone can use: model.onnx (runs with onnxruntime
alone), model.json, and card.json with a match threshold calibrated on the validation people."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from styleid.artifacts import MODEL_DIR
from styleid import ownership
from styleid.errors import StyleidError
from styleid.fileio import atomic_dir, write_json
from styleid.gallery.card import calibrate, make_card
from styleid.gallery.model_dir import check_model
from styleid.inference.onnx_session import copy_model_files


def validation_threshold(params) -> dict:
    """Embed the validation people's query photos and gallery renders (as the pipeline aligned them) and calibrate."""
    from styleid.artifacts import load_split
    from styleid.inference.engines import open_engine
    from styleid.inference.normalize import l2_normalize

    split = load_split()
    parts = {name: split[name] for name in ("val_query", "val_gallery")}
    if not parts["val_query"] or not parts["val_gallery"]:
        return {}
    with open_engine(MODEL_DIR, params.embed) as engine:
        rows = {name: l2_normalize(np.concatenate(list(engine.iter_embed([Path(e["image"]) for e in entries]))))
                for name, entries in parts.items()}
    return calibrate(rows["val_query"], [e["person"] for e in parts["val_query"]], rows["val_gallery"], [e["person"] for e in parts["val_gallery"]])


def export_model(out: Path, params, force: bool = False) -> dict:
    """From the repository root (the pipeline's paths are relative to it). OUT is never inside the pipeline's outputs
    and replaces only an earlier export (force: any styleid folder)."""
    ownership.outside_pipeline(out)
    ownership.claim(out, "export", force)
    for name in ("model.json", "model.onnx"):
        if not (MODEL_DIR / name).is_file():
            raise StyleidError(f"{MODEL_DIR / name}: missing; run `dvc repro export` first")
    check_model(MODEL_DIR)
    card = make_card(params, validation_threshold(params))
    with atomic_dir(out, "export", force=force) as tmp:
        copy_model_files(MODEL_DIR, tmp)
        write_json(tmp / "card.json", card)
    return card
