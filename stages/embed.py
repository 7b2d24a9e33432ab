"""embed: L2-normalised embeddings of the test queries and gallery -> data/embeddings/<part>/shard-*.npy + <part>.json.

With embed.self_train.epochs > 0 the trained model is first fine-tuned on the test images' pseudo-identities (no labels:
training/self_training.py), saved in data/embeddings/self_trained/, and the test images are embedded again with it.
"""

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import typer

from styleid import shards
from styleid.artifacts import EMBEDDINGS, METRICS, MODEL_DIR, SELF_TRAINED, load_split
from styleid.fileio import read_json, write_json
from styleid.inference.engines import open_engine
from styleid.inference.normalize import l2_normalize
from styleid.params import load_params
from styleid.runner import stage
from styleid.search.adapt import center
from styleid.shards import ShardWriter

log = logging.getLogger(__name__)


@stage
def embed_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    e = params.embed
    split = load_split()
    queries, gallery = split["query"], split["gallery"]
    paths = [Path(x["image"]) for x in [*queries, *gallery]]
    adapt = e.adapt if e.adapt != "auto" else read_json(MODEL_DIR / "model.json").get("adapt", "none")
    start = time.perf_counter()
    dim = _embed(MODEL_DIR, e, paths, len(queries))
    means = _adapt(adapt, e.shard_rows)
    embedded = len(paths) / max(time.perf_counter() - start, 1e-9)
    shutil.rmtree(SELF_TRAINED, ignore_errors=True)
    self_trained = _self_train(params, paths, len(queries)) if e.self_train.epochs else {}
    if self_trained.get("pseudo_people"):  # the test images again, through the fine-tuned model (torch: it has no ONNX export)
        dim = _embed(SELF_TRAINED, dataclasses.replace(e, runtime="torch", precision="fp32", engine="local"), paths, len(queries))
        means = _adapt(adapt, e.shard_rows)
    for part, entries in (("query", queries), ("gallery", gallery)):
        write_json(EMBEDDINGS / f"{part}.json", [{"name": x["name"], "person": x["person"], "file": x["file"]} for x in entries])
    seconds = time.perf_counter() - start
    write_json(EMBEDDINGS / "adapt.json", {"adapt": adapt, **means})  # `styleid search` adapts new photos the same way
    write_json(METRICS / "embed.json", {"embed_seconds": round(seconds, 3), "embed_images_per_s": round(embedded, 2), **self_trained})
    print(f"embed ({e.engine}): {len(queries)} queries, {len(gallery)} gallery images, dim {dim}, adapt {adapt}; {embedded:.1f} images/s"
          + "".join(f", {k} {v}" for k, v in self_trained.items()))


def _embed(model_dir: Path, e, paths: list[Path], n_queries: int) -> int:
    """Embed `paths` (queries first) into the query and gallery shards, L2-normalised; return the dimension."""
    with open_engine(model_dir, e) as engine:
        # both parts in one pass (one Ray job): the first n_queries rows are the queries
        with ShardWriter(EMBEDDINGS / "query", e.shard_rows) as query_out, ShardWriter(EMBEDDINGS / "gallery", e.shard_rows) as gallery_out:
            row = 0
            for block in engine.iter_embed(paths):
                block = l2_normalize(block)
                cut = max(0, min(len(block), n_queries - row))
                query_out.add(block[:cut])
                gallery_out.add(block[cut:])
                row += len(block)
    return gallery_out.dim or query_out.dim or 0


def _self_train(params, paths: list[Path], n_queries: int) -> dict:
    """embed.self_train: pseudo-people among the embedded test images (as adapted), the model fine-tuned on them and saved
    in SELF_TRAINED (what `styleid search` then embeds new photos with); the counts and seconds for metrics/embed.json."""
    from styleid.models.embedder import load, save
    from styleid.search.pseudo_identities import find
    from styleid.training.self_training import self_train

    s = params.embed.self_train
    pseudo = find(shards.read(EMBEDDINGS / "query"), shards.read(EMBEDDINGS / "gallery"), s.eps, s.k1, s.k2, s.min_samples)
    if pseudo.people < 2:  # nothing to tell apart: the embeddings stay as the trained model made them
        log.warning("embed.self_train: %d pseudo-people among the test images (eps %.2f); not self-training. Raise embed.self_train.eps",
                    pseudo.people, s.eps)
        return {**pseudo.summary(), "pseudo_people": 0}
    domains = ["photo"] * n_queries + ["render"] * (len(paths) - n_queries)
    result = self_train(load(MODEL_DIR), params, paths, domains, np.concatenate([pseudo.query, pseudo.gallery]))
    save(result.model, SELF_TRAINED, {"self_trained_from": str(MODEL_DIR / "model.safetensors"), **pseudo.summary()})
    return {**pseudo.summary(), "self_train_seconds": round(result.seconds, 2)}


def _adapt(method: str, shard_rows: int) -> dict:
    """Rewrite both parts' shards adapted (center: each part minus its own mean); return the means used."""
    if method == "none":
        return {}
    means = {}
    for part in ("query", "gallery"):
        folder = EMBEDDINGS / part
        blocks = [np.array(s) for s in shards.iter_shards(folder)]  # read once, in memory: the rewrite replaces these files
        mean = sum(b.astype(np.float64).sum(0) for b in blocks) / max(sum(len(b) for b in blocks), 1)
        with ShardWriter(folder, shard_rows) as out:
            for block in blocks:
                out.add(center(block, mean))
        means[f"{part}_mean"] = [round(float(v), 7) for v in mean]
    return means


if __name__ == "__main__":
    typer.run(embed_stage)
