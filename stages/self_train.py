"""self_train: the trained model fine-tuned on pseudo-people found among the unlabelled test images -> models/self_trained/.

Transductive and off by default (self_train.epochs 0: the folder holds only off.json, and embed uses models/ as
trained). On: the test queries and gallery are embedded and adapted as the embed stage would, clustered into
pseudo-people (search/pseudo_identities.py: k-reciprocal clusters holding photos and renders; no test label is
read), the model is fine-tuned on them with the training recipe (training/self_training.py), then exported as the
export stage does (ONNX checked against torch, int8 calibrated on training images): embed and `styleid search` use it.
"""

import time
from pathlib import Path

import numpy as np
import typer

from styleid.artifacts import METRICS, MODEL_DIR, SELF_TRAINED, load_split
from styleid.fileio import atomic_dir, read_json, write_json
from styleid.inference.engines import open_engine
from styleid.inference.normalize import l2_normalize
from styleid.inference.onnx_export import export_onnx
from styleid.inference.quantize import quantize_export
from styleid.inference.runtimes import ONNX_FILE
from styleid.models.embedder import load, save
from styleid.params import load_params
from styleid.runner import stage
from styleid.search.adapt import adapt_pair
from styleid.search.pseudo_identities import find
from styleid.training.self_training import self_train


@stage
def self_train_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    s = params.self_train
    with atomic_dir(SELF_TRAINED) as out:
        summary = _self_train(params, out) if s.epochs else {"self_train": "off"}
        if "self_train_seconds" not in summary:
            write_json(out / "off.json", summary)  # no model here: embed uses models/ as trained
    write_json(METRICS / "self_train.json", summary)
    print("self_train: " + ("off (self_train.epochs 0): the test is embedded with the trained model" if s.epochs == 0
                            else ", ".join(f"{k} {v}" for k, v in summary.items())))


def _self_train(params, out: Path) -> dict:
    s, e = params.self_train, params.embed
    start = time.perf_counter()
    split = load_split()
    queries, gallery = [Path(x["image"]) for x in split["query"]], [Path(x["image"]) for x in split["gallery"]]
    with open_engine(MODEL_DIR, e) as engine:
        rows = l2_normalize(np.concatenate(list(engine.iter_embed([*queries, *gallery]))))
    adapt = e.adapt if e.adapt != "auto" else read_json(MODEL_DIR / "model.json").get("adapt", "none")
    pseudo = find(*adapt_pair(rows[: len(queries)], rows[len(queries):], adapt), s.eps, s.k1, s.k2, s.min_samples)
    if pseudo.people < 2:
        print(f"self_train: {pseudo.people} pseudo-people among the test images at eps {s.eps}; nothing to fine-tune on "
              "(the test is embedded with the trained model). Raise self_train.eps to cluster more loosely")
        return {"self_train": "no pseudo-people", **pseudo.summary()}
    domains = ["photo"] * len(queries) + ["render"] * len(gallery)
    result = self_train(load(MODEL_DIR), params, [*queries, *gallery], domains, np.concatenate([pseudo.query, pseudo.gallery]))
    save(result.model, out, {**read_json(MODEL_DIR / "model.json"), "self_trained": pseudo.summary()})
    error = export_onnx(result.model, out / ONNX_FILE)
    images = lambda *parts: [Path(x["image"]) for part in parts for x in split[part]]  # noqa: E731
    int8 = quantize_export(out, images("train"), images("val_query", "val_gallery"), e.calibration_images, params.seed)
    return {**pseudo.summary(), "self_train_seconds": round(result.seconds, 2), "self_train_total_seconds": round(time.perf_counter() - start, 2),
            "export_max_abs_diff": float(f"{error:.3g}"), "int8_mean_cosine": int8["int8_mean_cosine"]}


if __name__ == "__main__":
    typer.run(self_train_stage)
