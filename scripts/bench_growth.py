"""Costs as the gallery grows: index build, search and retrieve with re-ranking at one gallery size, in a process
of its own so its peak memory is its own. `scripts/bench.py` runs it at 10k, 100k and 1M and fits the growth.

    python scripts/bench_growth.py --size 100000 [--queries 10000 --dim 512 --depth 100]

Clustered random unit vectors stand in for embeddings (about 10 images a person, as galleries have); they are
written as embedding shards, and retrieve reads its re-ranking rows from them (shards.Rows), as the stage does.
"""

from __future__ import annotations

import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import typer


def reset_peak() -> None:
    """Linux: restart the process's peak resident memory (VmHWM) from its current size."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_since_reset() -> float | None:
    """VmHWM in GB (the peak since reset_peak), or None where /proc has no such line."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) / 2**20  # kB


def main(size: int = typer.Option(...), queries: int = typer.Option(10_000), dim: int = typer.Option(512),
         depth: int = typer.Option(100), factory: str = typer.Option("Flat"), rerank: str = typer.Option("aqe")) -> None:
    from styleid import shards
    from styleid.inference.normalize import l2_normalize
    from styleid.params import RetrieveParams
    from styleid.search import index as faiss_index
    from styleid.search.retriever import retrieve

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((max(1, size // 10), dim)).astype(np.float32)
    folder = Path(tempfile.mkdtemp(prefix="styleid-growth-"))
    try:
        with shards.ShardWriter(folder / "gallery", 100_000) as out:
            for lo in range(0, size, 100_000):  # written a block at a time: the generator never holds the gallery
                n = min(100_000, size - lo)
                out.add(l2_normalize(centres[rng.integers(len(centres), size=n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)))
        q = l2_normalize(centres[rng.integers(len(centres), size=queries)] + 0.5 * rng.standard_normal((queries, dim)).astype(np.float32))
        start = time.perf_counter()
        index = faiss_index.build_sharded(list(shards.iter_shards(folder / "gallery")), factory, 0)[0]
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        faiss_index.search(index, q, depth)
        search_s = time.perf_counter() - start
        before_retrieve_gb = peak_since_reset()  # generating, building and searching: resetting the peak would forget it
        reset_peak()  # the retrieve stage's own peak: the index is in memory, as the stage loads it; building it is the index stage's
        start = time.perf_counter()
        retrieve(index, q, depth, RetrieveParams(rerank=rerank, depth=depth), lambda: shards.Rows(folder / "gallery"))
        retrieve_s = time.perf_counter() - start
        retrieve_peak_gb = peak_since_reset()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # ru_maxrss follows the reset too on Linux, so the whole run's peak is the larger of the two phases' peaks
    peak_gb = max(before_retrieve_gb, retrieve_peak_gb) if retrieve_peak_gb else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"size": size, "queries": queries, "dim": dim, "factory": factory, "rerank": rerank, "build_s": round(build_s, 3),
                      "search_ms_per_query": round(search_s * 1000 / queries, 4), "retrieve_ms_per_query": round(retrieve_s * 1000 / queries, 4),
                      "peak_gb": round(peak_gb, 3), "retrieve_peak_gb": round(retrieve_peak_gb, 3) if retrieve_peak_gb else None}))


if __name__ == "__main__":
    typer.run(main)
