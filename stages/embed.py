"""embed: L2-normalised embeddings of the test queries and gallery -> data/embeddings/<part>/shard-*.npy + <part>.json.

The model is the trained one (models/), or its fine-tune on the test images' pseudo-people when the self_train stage made one.
"""

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
    with open_engine(model_dir, e) as engine:
        start = time.perf_counter()
        queries, gallery = split["query"], split["gallery"]
        # both parts in one pass (one Ray job): the first len(queries) rows are the queries
        with ShardWriter(EMBEDDINGS / "query", e.shard_rows) as query_out, ShardWriter(EMBEDDINGS / "gallery", e.shard_rows) as gallery_out:
            row = 0
            for block in engine.iter_embed([Path(x["image"]) for x in [*queries, *gallery]]):
                block = l2_normalize(block)
                cut = max(0, min(len(block), len(queries) - row))
                query_out.add(block[:cut])
                gallery_out.add(block[cut:])
                row += len(block)
        adapt = resolve(e.adapt, MODEL_DIR)
        means = _adapt(adapt, e.shard_rows)
        for part, entries in (("query", queries), ("gallery", gallery)):
            write_json(EMBEDDINGS / f"{part}.json", [{"name": x["name"], "person": x["person"], "file": x["file"]} for x in entries])
        total, dim = len(queries) + len(gallery), gallery_out.dim or query_out.dim or 0
        seconds = time.perf_counter() - start
    write_json(EMBEDDINGS / "adapt.json", {"adapt": adapt, **means})  # `styleid search` adapts new photos the same way
    write_json(METRICS / "embed.json", {"embed_seconds": round(seconds, 3), "embed_images_per_s": round(total / max(seconds, 1e-9), 2)})
    print(f"embed ({e.engine}): {model_dir}, {len(split['query'])} queries, {len(split['gallery'])} gallery images, dim {dim}, adapt {adapt}; "
          f"{total / max(seconds, 1e-9):.1f} images/s")


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
