"""embed: L2-normalised embeddings of the test queries and gallery -> data/embeddings/."""

import time
from pathlib import Path

import numpy as np
import typer

from styleid.embedding import extract
from styleid.fileio import atomic_path, write_json
from styleid.models.embedder import load
from styleid.params import load_params
from styleid.pipeline import EMBEDDINGS, METRICS, MODEL_DIR, load_split, stage
from styleid.search.index import l2_normalize
from styleid.training.transforms import eval_transform


@stage
def embed_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    split = load_split()
    model = load(MODEL_DIR)
    transform = eval_transform(model.spec)
    EMBEDDINGS.mkdir(parents=True, exist_ok=True)
    start, total = time.perf_counter(), 0
    for part in ("query", "gallery"):
        entries = split[part]
        vectors = l2_normalize(extract(model, [Path(e["image"]) for e in entries], transform, params.embed.batch_size,
                                       params.embed.num_workers, desc=f"embed: {part}", flip=params.embed.flip_tta))
        with atomic_path(EMBEDDINGS / f"{part}.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, vectors)
        write_json(EMBEDDINGS / f"{part}.json", [{"name": e["name"], "person": e["person"], "file": e["file"]} for e in entries])
        total += len(entries)
    seconds = time.perf_counter() - start
    write_json(METRICS / "embed.json", {"embed_seconds": round(seconds, 3), "embed_images_per_s": round(total / max(seconds, 1e-9), 2)})
    print(f"embed: {len(split['query'])} queries, {len(split['gallery'])} gallery images, dim {model.spec.out_dim}; "
          f"{total / max(seconds, 1e-9):.1f} images/s")


if __name__ == "__main__":
    typer.run(embed_stage)
