"""train: learn the embedder -> models/model.safetensors + models/model.json, dvclive logs, metrics/train.json.

train.nproc > 1: the stage starts itself again under torchrun in that many processes (DDP); a run
that torchrun launched already (several nodes, a GPU cluster) trains with torchrun's world as it is.
"""

from pathlib import Path

import typer

from styleid.artifacts import ALIGNED_INDEX, DOMAINS, MANIFEST, METRICS, MODEL_DIR, SPLITS, load_split
from styleid.data.domains import apply_domains
from styleid.training import ddp
from styleid.fileio import read_json, write_json
from styleid.images import median_side
from styleid.models.backbones import check_name
from styleid.models.embedder import save
from styleid.params import load_params
from styleid.runner import stage
from styleid.search.adapt import choose
from styleid.training import checkpoint as checkpoints
from styleid.training.loop import TrainSet, train

CHECKPOINT = MODEL_DIR / "checkpoint" / "state.pt"  # every epoch's state (a persisted DVC output): a killed run resumes


def _pairs(split: dict, part: str) -> list[tuple[Path, str]]:
    return [(Path(e["image"]), e["person"]) for e in split[part]]


@stage
def train_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    check_name(params.backbone, params.pretrained)
    ddp.run(params.train.nproc, __file__, ["--params", str(params_file)], lambda here: _train(params, params_file, here))


def _train(params, params_file: Path, here: ddp.World) -> None:
    from dvclive import Live

    inferred = read_json(DOMAINS)["domains"] if DOMAINS.is_file() else {}
    split = apply_domains(load_split(), {file: v["domain"] for file, v in inferred.items()})
    data = TrainSet(_pairs(split, "train"), [e["domain"] for e in split["train"]], _pairs(split, "holdout"),
                    _pairs(split, "val_query"), _pairs(split, "val_gallery"), median_side([e["image"] for e in split["train"]]))
    key = checkpoints.stage_key(params_file, __file__, [SPLITS, DOMAINS, ALIGNED_INDEX, MANIFEST])
    if not here.main:
        train(params, data, checkpoint=CHECKPOINT, key=key)
        return
    with Live(dir="dvclive", save_dvc_exp=False, dvcyaml=None, report=None) as live:
        def log_epoch(epoch: int, row: dict) -> None:
            for name, value in row.items():
                if name != "epoch":
                    live.log_metric(f"train/{name}", value)
            live.next_step()

        result = train(params, data, log_epoch, CHECKPOINT, key)
    best = result.history[result.best_epoch - 1]
    save(result.model, MODEL_DIR, {"best_epoch": result.best_epoch, "adapt": choose(best)})  # embed.adapt auto follows it
    checkpoints.finish(CHECKPOINT, key)
    summary = {"input_size": result.model.spec.input_size, "best_epoch": result.best_epoch, "epochs_run": len(result.history), "train_seconds": round(result.seconds, 2),
               "train_images_per_s": round(result.images_seen / max(result.step_seconds, 1e-9), 2), "train_processes": here.size,
               **{f"final_{k}": v for k, v in result.history[-1].items() if k != "epoch"}}
    summary.update({f"best_{k}": round(v, 6) for k, v in best.items() if k != "epoch"})
    write_json(METRICS / "train.json", summary)
    print(f"train: {params.backbone} ({params.pretrained}), {params.train.loss}, freeze={params.train.freeze}, {here.size} process(es): "
          f"best epoch {result.best_epoch}/{len(result.history)} " + ", ".join(f"{k}={v:.4f}" for k, v in best.items() if k != "epoch")
          + f"; {result.seconds:.1f}s")


if __name__ == "__main__":
    typer.run(train_stage)
