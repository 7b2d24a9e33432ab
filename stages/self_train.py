"""self_train: the trained model fine-tuned on pseudo-people found among the unlabelled test images -> models/self_trained/.

Transductive. self_train.use auto (the default) first runs the whole procedure on the validation people as if they
were the test (training/self_training.py: validation_gain) and goes on only when their score rises beyond its
paired bootstrap noise (or, where it cannot move, their mAP: keeps); always skips that check; never turns it off. Kept: the test queries and gallery, embedded
and adapted as the embed stage does, are clustered into pseudo-people (search/pseudo_identities.py: k-reciprocal
clusters holding photos and renders; no test label is read), the model is fine-tuned on them (self_train.rounds times,
re-clustering with each round's model), then exported as the
export stage does (ONNX checked against torch, int8 calibrated on training images): embed and `styleid search` use
it. Not kept: models/self_trained/ holds only off.json, and embed uses models/ as trained.

Every fine-tune (the validation check's and the test's) is checkpointed in models/self_train_checkpoint/ (a persisted
DVC output) after each epoch and when it ends: a killed run's next `dvc repro` goes on from there, and the folder is
emptied once the outputs are written.
"""

import time
from pathlib import Path

import typer

from styleid.artifacts import ALIGNED_INDEX, MANIFEST, METRICS, MODEL_DIR, SELF_TRAINED, SPLITS, load_split
from styleid.fileio import atomic_dir, read_json, write_json
from styleid.inference.onnx_export import export_runtimes
from styleid.models.embedder import load, save
from styleid.params import load_params
from styleid.runner import stage
from styleid.search.adapt import resolve
from styleid.training import checkpoint as checkpoints
from styleid.training.self_training import Resume, adapt_rounds, embed_pair, keeps, pseudo_people, validation_gain

CHECKPOINTS = MODEL_DIR / "self_train_checkpoint"  # each fine-tune's state (a persisted DVC output): a killed run resumes


@stage
def self_train_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    start = time.perf_counter()
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    resume = Resume(CHECKPOINTS, checkpoints.stage_key(params_file, __file__, [SPLITS, ALIGNED_INDEX, MANIFEST, MODEL_DIR / "model.safetensors",
                                                                              MODEL_DIR / "model.json"]))
    with atomic_dir(SELF_TRAINED, "self-trained") as out:
        summary = _self_train(params, out, resume)
        if summary["self_train"] != "kept":
            write_json(out / "off.json", summary)  # no model here: embed uses models/ as trained
    resume.clear()
    summary["self_train_total_seconds"] = round(time.perf_counter() - start, 2)
    write_json(METRICS / "self_train.json", summary)
    print("self_train: " + ", ".join(f"{k} {v}" for k, v in summary.items()))


def _self_train(params, out: Path, resume: Resume) -> dict:
    s, e = params.self_train, params.embed
    if s.use == "never":
        return {"self_train": "off (self_train.use never)"}
    split = load_split()
    model = load(MODEL_DIR)
    adapt = resolve(e.adapt, MODEL_DIR)
    checked = validation_gain(model, params, split, adapt, resume) if s.use == "auto" else {}
    if s.use == "auto" and not keeps(checked):
        return {"self_train": "not kept: no gain beyond the noise on the validation people", **checked}
    queries, gallery = [Path(x["image"]) for x in split["query"]], [Path(x["image"]) for x in split["gallery"]]
    pseudo = pseudo_people(*embed_pair(model, params, queries, gallery, adapt), params)
    if pseudo.people < 2:
        return {"self_train": f"skipped: {pseudo.people} pseudo-people among the test images (raise self_train.eps)", **checked, **pseudo.summary()}
    result = adapt_rounds(model, params, queries, gallery, adapt, first=pseudo, resume=resume)
    save(result.model, out, {**read_json(MODEL_DIR / "model.json"), "self_trained": {**pseudo.summary(), **result.summary()}})
    exported = export_runtimes(result.model, out, split, e.calibration_images, params.seed)
    return {"self_train": "kept", **checked, **pseudo.summary(), **result.summary(), "self_train_seconds": round(result.seconds, 2),
            "export_max_abs_diff": exported["export_max_abs_diff"], "int8_mean_cosine": exported["int8_mean_cosine"]}


if __name__ == "__main__":
    typer.run(self_train_stage)
