"""index: a FAISS index over the gallery embeddings -> models/gallery.faiss + models/gallery_ids.json."""

import time
from pathlib import Path

import numpy as np
import typer

from styleid.fileio import read_json, write_json
from styleid.params import load_params
from styleid.pipeline import EMBEDDINGS, INDEX, INDEX_IDS, METRICS, stage
from styleid.search import index as faiss_index


@stage
def index_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    gallery = np.load(EMBEDDINGS / "gallery.npy")
    start = time.perf_counter()
    index = faiss_index.build(gallery, params.index.factory, params.seed)
    seconds = time.perf_counter() - start
    faiss_index.save(index, INDEX)
    write_json(INDEX_IDS, {"names": [g["name"] for g in read_json(EMBEDDINGS / "gallery.json")]})
    write_json(METRICS / "index.json", {"index_build_seconds": round(seconds, 4)})  # timings stay out of data outputs
    print(f"index: {params.index.factory} over {index.ntotal} gallery vectors (dim {index.d}); {seconds * 1000:.1f} ms")


if __name__ == "__main__":
    typer.run(index_stage)
