"""Search latency of `styleid serve` (model and index loaded once) on a gallery of N images, against the bare embedding
of the same photo, and of a cold `styleid search --index` (a new process: imports, model and index load, one photo).

    python scripts/bench_serve.py [--gallery 10000] [--model models] [--queries 50] [--clients 50]

The gallery's rows are random unit vectors (a query's cost does not depend on them); the query is a photo through the
whole path: decode, alignment as the card says, flip averaging, search, the response. Prints one JSON line:
  cli_search_cold_s     median wall time of 3 cold `styleid search --index --json` processes
  embed_ms_per_query    median of the bare embedding (the model on the photo and its mirror), the floor for a search
  serve_ms_per_query    median of the service's search, in process (serve_p99_ms: its 99th percentile)
  http_one_ms_median    over HTTP, one client: each POST /search's wall time (http_one_ms_p99)
  http_ms_median        over HTTP with `clients` clients at once, each request's wall time, queueing included (http_ms_p99,
                        http_errors)
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import typer

REPO = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values) * 1000, q)), 1)


def _make_index(root: Path, model: Path, gallery: int) -> Path:
    import faiss
    from PIL import Image

    from styleid import ownership
    from styleid.fileio import read_json, write_json
    from styleid.gallery.folder_index import EMBEDDINGS, FAISS, FILES, MODEL
    from styleid.inference.onnx_session import copy_model_files

    dim = read_json(model / "model.json")
    dim = dim["embed_dim"] or dim["feature_dim"]
    rows = np.random.default_rng(0).standard_normal((gallery, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index_dir = root / "index"
    (index_dir / MODEL).mkdir(parents=True)
    copy_model_files(model, index_dir / MODEL)
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(root / "photo.png")
    write_json(index_dir / FILES, {"folder": str(root), "files": [{"path": "photo.png", "size": 0, "mtime_ns": 0, "id": f"{k:012x}"}
                                                                  for k in range(gallery)]})
    np.save(index_dir / EMBEDDINGS, rows)
    flat = faiss.IndexFlatIP(dim)
    flat.add(rows)
    faiss.write_index(flat, str(index_dir / FAISS))
    ownership.write_marker(index_dir, "index")
    return index_dir


def _http(index_dir: Path, photo: bytes, clients: int, requests: int, prefix: str = "http") -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "styleid.cli", "serve", "--index", str(index_dir), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if json.loads(r.read())["status"] == "ready":
                        break
            except OSError:
                pass
            time.sleep(0.2)
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.png\"\r\n"
                "Content-Type: image/png\r\n\r\n").encode() + photo + f"\r\n--{boundary}--\r\n".encode()

        def one(_: int) -> float | None:
            start = time.perf_counter()
            try:
                request = urllib.request.Request(url + "/search", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
                with urllib.request.urlopen(request, timeout=120) as r:
                    r.read()
                return time.perf_counter() - start
            except OSError:
                return None

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            times = list(pool.map(one, range(requests)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    ok = [t for t in times if t is not None]
    return {f"{prefix}_clients": clients, f"{prefix}_ms_median": _percentile(ok, 50), f"{prefix}_ms_p99": _percentile(ok, 99),
            f"{prefix}_errors": len(times) - len(ok)}


def main(gallery: int = typer.Option(10_000), model: Path = typer.Option(REPO / "models"), queries: int = typer.Option(50),
         clients: int = typer.Option(50)) -> None:
    from PIL import Image

    from styleid.serve.service import Service

    root = Path(tempfile.mkdtemp(prefix="styleid-serve-bench-"))
    try:
        index_dir = _make_index(root, model, gallery)
        cold = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "styleid.cli", "search", str(root / "photo.png"), "--index", str(index_dir), "--json"],
                           check=True, capture_output=True, cwd=root)
            cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        service = Service(index_dir)
        while service.status == "loading":
            time.sleep(0.01)
        if service.status != "ready":
            raise SystemExit(f"bench_serve: the index did not load: {service.error}")
        load_s = time.perf_counter() - start
        image = Image.open(root / "photo.png").convert("RGB")
        embed, serve = [], []
        for _ in range(queries + 1):
            start = time.perf_counter()
            service.embedder.embed([image])
            embed.append(time.perf_counter() - start)
            start = time.perf_counter()
            service.search(image, 10)
            serve.append(time.perf_counter() - start)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        http = {**_http(index_dir, buffer.getvalue(), 1, queries, "http_one"), **_http(index_dir, buffer.getvalue(), clients, 4 * clients)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"gallery": gallery, "cores": os.cpu_count(), "embedder": type(service.embedder).__name__,
                      "cli_search_cold_s": round(float(np.median(cold)), 2), "serve_load_s": round(load_s, 2),
                      "embed_ms_per_query": _percentile(embed[1:], 50), "serve_ms_per_query": _percentile(serve[1:], 50),
                      "serve_p99_ms": _percentile(serve[1:], 99), **http}))


if __name__ == "__main__":
    typer.run(main)
