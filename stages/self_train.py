"""self_train: the trained model fine-tuned on pseudo-people found among the unlabelled test images -> models/self_trained/.

Transductive. self_train.use auto (the default) first runs the whole procedure on the validation people as if they
were the test (training/self_training.py: validation_gain) and goes on only when their score rises beyond its
paired bootstrap noise (or, where it cannot move, their mAP: keeps); always skips that check; never turns it off. Kept: the test queries and gallery, embedded
and adapted as the embed stage does, are clustered into pseudo-people (search/pseudo_identities.py: k-reciprocal
clusters holding photos and renders; no test label is read), the model's top is fine-tuned on them, its lower layers'
outputs cached once per view (self_train.rounds times, re-clustering with each round's model), then exported as the
export stage does (ONNX checked against torch; int8 calibrated on training images, unless embed.precision is fp32): embed and `styleid search` use
it. Not kept: models/self_trained/ holds only off.json, and embed uses models/ as trained.

Every view cache and fine-tune (the validation check's and the test's) is kept in models/self_train_checkpoint/ (a
persisted DVC output): the views once made, a fine-tune after each epoch and when it ends: a killed run's next `dvc repro` goes on from there, and the folder is
emptied once the outputs are written.
"""

import time
from pathlib import Path

import typer

from styleid.artifacts import ALIGNED_INDEX, MANIFEST, METRICS, MODEL_DIR, SELF_TRAINED, SPLITS, load_split
from styleid.fileio import atomic_dir, empty_resume_folder, read_json, write_json
from styleid.params import load_params
from styleid.runner import stage

CHECKPOINTS = MODEL_DIR / "self_train_checkpoint"  # each fine-tune's state (a persisted DVC output): a killed run resumes


@stage
def self_train_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    start = time.perf_counter()
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    with atomic_dir(SELF_TRAINED, "self-trained") as out:
        summary = _switched_off(params) or _self_train(params, params_file, out)
        if summary["self_train"] != "kept":
            write_json(out / "off.json", summary)  # no model here: embed uses models/ as trained
    empty_resume_folder(CHECKPOINTS)
    summary["self_train_total_seconds"] = round(time.perf_counter() - start, 2)
    write_json(METRICS / "self_train.json", summary)
    print("self_train: " + ", ".join(f"{k} {v}" for k, v in summary.items()))


def _switched_off(params) -> dict | None:
    """Why the stage does nothing, decided from the params alone (before torch is imported), or None."""
    if params.self_train.use == "never":
        return {"self_train": "off (self_train.use never)"}
    if params.train.freeze == "all" and params.self_train.use == "auto":  # the frozen baseline: the backbone's own features
        return {"self_train": "off (train.freeze all under self_train.use auto; use always fine-tunes the frozen backbone's top)"}
    return None


def _self_train(params, params_file: Path, out: Path) -> dict:
    from styleid.inference.onnx_export import export_runtimes
    from styleid.inference.onnx_trunk import onnx_trunk
    from styleid.models.embedder import load, save
    from styleid.models.split import split as split_model
    from styleid.search.adapt import resolve
    from styleid.training import checkpoint as checkpoints
    from styleid.training.self_training import Resume, adapt_rounds, keeps, validation_gain

    s, e = params.self_train, params.embed
    resume = Resume(CHECKPOINTS, checkpoints.stage_key(params_file, __file__, [SPLITS, ALIGNED_INDEX, MANIFEST, MODEL_DIR / "model.safetensors",
                                                                              MODEL_DIR / "model.json"]))
    split = load_split()
    model = load(MODEL_DIR)
    adapt = resolve(e.adapt, MODEL_DIR)
    # the trunk as the export stage wrote it (int8 where embed runs int8): the views' bulk, at the embed stage's speed
    exported = onnx_trunk(MODEL_DIR, e.precision, split_model(model, s.top_stages).scope) if e.runtime != "torch" else []
    checked = validation_gain(model, params, split, adapt, resume, exported) if s.use == "auto" else {}
    if s.use == "auto" and not keeps(checked):
        return {"self_train": "not kept: no gain beyond the noise on the validation people", **checked}
    queries, gallery = [Path(x["image"]) for x in split["query"]], [Path(x["image"]) for x in split["gallery"]]
    result = adapt_rounds(model, params, queries, gallery, adapt, resume=resume, exported=exported)
    timing = {"self_train_views_runtime": result.views_runtime, "self_train_views_seconds": round(result.views_seconds, 2), "self_train_seconds": round(result.seconds, 2),
              "self_train_images_per_s": round(result.seen / result.seconds, 1) if result.seconds else 0.0}
    if result.rounds == 0:
        return {"self_train": f"skipped: {result.first.people} pseudo-people among the test images (raise self_train.eps)", **checked,
                **result.first.summary(), **timing}
    save(result.model, out, {**read_json(MODEL_DIR / "model.json"), "self_trained": {**result.first.summary(), **result.summary()}})
    written = export_runtimes(result.model, out, split, e.calibration_images, params.seed, out if e.makes_int8 else None)  # int8 beside it
    return {"self_train": "kept", **checked, **result.first.summary(), **result.summary(), **timing,
            **{k: v for k, v in written.items() if k in ("export_max_abs_diff", "int8_mean_cosine")}}


if __name__ == "__main__":
    typer.run(self_train_stage)
