"""index: FAISS index parts over the gallery embedding shards -> models/index/part-*.faiss + models/gallery_ids.json."""

import time
from pathlib import Path

import typer

from styleid import shards
from styleid.artifacts import EMBEDDINGS, INDEX, INDEX_IDS, METRICS
from styleid.fileio import read_json, write_json
from styleid.params import load_params
from styleid.runner import stage
from styleid.search import index as faiss_index


@stage
def index_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    p = params.index
    parts = list(shards.iter_shards(EMBEDDINGS / "gallery"))
    start = time.perf_counter()
    indexes = faiss_index.build_sharded(parts, p.factory, params.seed, p.shards, p.merge)
    seconds = time.perf_counter() - start
    faiss_index.save(indexes, INDEX)
    write_json(INDEX_IDS, {"names": [g["name"] for g in read_json(EMBEDDINGS / "gallery.json")]})
    write_json(METRICS / "index.json", {"index_build_seconds": round(seconds, 4)})  # timings stay out of data outputs
    layout = f"{p.shards} shards merged" if p.shards > 1 and p.merge else f"{len(indexes)} parts (IndexShards)" if len(indexes) > 1 else "one index"
    print(f"index: {p.factory} over {sum(i.ntotal for i in indexes)} gallery vectors (dim {indexes[0].d}), {layout}; {seconds * 1000:.1f} ms")


if __name__ == "__main__":
    typer.run(index_stage)
