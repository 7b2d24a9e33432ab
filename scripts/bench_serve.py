"""Search latency of `styleid serve` (model and index loaded once) on a gallery of N images, and of one cold
`styleid search --index` call (process start, model and index load, one photo).

    python scripts/bench_serve.py [--gallery 10000] [--model models] [--queries 20]

The gallery's rows are random unit vectors (the embedding cost of a query does not depend on them); the
queries are real photos through the whole path: decode, alignment as the card says, flip averaging, search.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import typer

REPO = Path(__file__).resolve().parents[1]


def main(gallery: int = typer.Option(10_000), model: Path = typer.Option(REPO / "models"), queries: int = typer.Option(20)) -> None:
    import faiss
    from PIL import Image

    from styleid.fileio import read_json, write_json
    from styleid.gallery.folder_index import EMBEDDINGS, FAISS, FILES, MODEL
    from styleid.serve.app import Service

    root = Path(tempfile.mkdtemp(prefix="styleid-serve-bench-"))
    try:
        dim = read_json(model / "model.json")
        dim = dim["embed_dim"] or dim["feature_dim"]
        rows = np.random.default_rng(0).standard_normal((gallery, dim)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        index_dir = root / "index"
        (index_dir / MODEL).mkdir(parents=True)
        for name in ("model.json", "model.onnx", "card.json"):
            if (model / name).is_file():
                shutil.copy2(model / name, index_dir / MODEL / name)
        photo = root / "photo.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(photo)
        write_json(index_dir / FILES, {"folder": str(root), "files": [{"path": "photo.png", "size": 0, "mtime_ns": 0}] * gallery})
        np.save(index_dir / EMBEDDINGS, rows)
        flat = faiss.IndexFlatIP(dim)
        flat.add(rows)
        faiss.write_index(flat, str(index_dir / FAISS))
        start = time.perf_counter()
        service = Service(index_dir)
        while service.status == "loading":
            time.sleep(0.01)
        load_s = time.perf_counter() - start
        image = Image.open(photo).convert("RGB")
        service.search(image, 10)  # warm-up
        start = time.perf_counter()
        for _ in range(queries):
            service.search(image, 10)
        warm_ms = (time.perf_counter() - start) * 1000 / queries
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "styleid.cli", "search", str(photo), "--index", str(index_dir), "--json"], check=True,
                       capture_output=True, cwd=root)
        cold_s = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"gallery": gallery, "serve_load_s": round(load_s, 2), "serve_ms_per_query": round(warm_ms, 1),
                      "cli_search_cold_s": round(cold_s, 2)}))


if __name__ == "__main__":
    typer.run(main)
