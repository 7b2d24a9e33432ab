"""embed: L2-normalised embeddings of the test queries and gallery -> data/embeddings/<part>/shard-*.npy + <part>.json
(with retrieve.rerank auto, also of the validation people: val_query, val_gallery).

The model is the trained one (models/), or its fine-tune on the test images' pseudo-people when the self_train stage made one.
"""

import contextlib
import time
from pathlib import Path

import numpy as np
import typer

from styleid import shards
from styleid.artifacts import EMBEDDINGS, METRICS, MODEL_DIR, embedding_model, load_split
from styleid.fileio import write_json
from styleid.inference.engines import open_engine
from styleid.inference.normalize import l2_normalize
from styleid.params import load_params
from styleid.runner import stage
from styleid.search.adapt import center, resolve
from styleid.shards import ShardWriter


@stage
def embed_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    e = params.embed
    split = load_split()
    model_dir = embedding_model()
    # the test queries and gallery; with retrieve.rerank auto also the validation people's photos and renders, embedded the same
    # way, on which the retrieve stage chooses the re-ranker (search/rerank_choice.py)
    parts = {"query": split["query"], "gallery": split["gallery"]}
    if params.retrieve.rerank == "auto" and split.get("val_query") and split.get("val_gallery"):
        parts.update(val_query=split["val_query"], val_gallery=split["val_gallery"])
    with open_engine(model_dir, e) as engine:
        start = time.perf_counter()
        entries = [x for part in parts.values() for x in part]
        with contextlib.ExitStack() as stack:  # every part in one pass (one Ray job), cut into the parts in order
            writers = [(stack.enter_context(ShardWriter(EMBEDDINGS / name, e.shard_rows)), len(part)) for name, part in parts.items()]
            row, at = 0, 0
            for block in engine.iter_embed([Path(x["image"]) for x in entries]):
                block = l2_normalize(block)
                while len(block):
                    writer, size = writers[at]
                    if row == size:  # this part is full (or empty): the rows go on into the next
                        at, row = at + 1, 0
                        continue
                    cut = min(len(block), size - row)
                    writer.add(block[:cut])
                    block, row = block[cut:], row + cut
        adapt = resolve(e.adapt, MODEL_DIR)
        means = _adapt(adapt, e.shard_rows, list(parts))
        for part, rows in parts.items():
            write_json(EMBEDDINGS / f"{part}.json", [{"name": x["name"], "person": x["person"], "file": x["file"]} for x in rows])
        total, dim = len(entries), writers[1][0].dim or writers[0][0].dim or 0
        seconds = time.perf_counter() - start
    write_json(EMBEDDINGS / "adapt.json", {"adapt": adapt, **means})  # `styleid search` adapts new photos the same way
    write_json(METRICS / "embed.json", {"embed_seconds": round(seconds, 3), "embed_images_per_s": round(total / max(seconds, 1e-9), 2)})
    print(f"embed ({e.engine}): {model_dir}, {len(split['query'])} queries, {len(split['gallery'])} gallery images"
          f"{', and the validation people' if 'val_query' in parts else ''}, dim {dim}, adapt {adapt}; "
          f"{total / max(seconds, 1e-9):.1f} images/s")


def _adapt(method: str, shard_rows: int, parts: list[str]) -> dict:
    """Rewrite every part's shards adapted (center: each part minus its own mean); return the means used."""
    if method == "none":
        return {}
    means = {}
    for part in parts:
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
