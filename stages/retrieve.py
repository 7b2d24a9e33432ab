"""retrieve: top-k gallery images per query -> submission.json (query name -> ranked gallery names)."""

import time
from pathlib import Path

import numpy as np
import typer

from styleid import shards
from styleid.artifacts import EMBEDDINGS, INDEX, INDEX_IDS, RETRIEVED, SUBMISSION
from styleid.errors import ParamsError
from styleid.fileio import atomic_path, read_json, write_json
from styleid.params import load_params
from styleid.runner import stage
from styleid.search import index as faiss_index
from styleid.search.retriever import retrieve

EVAL_DEPTH = 1000  # results kept for evaluation (mAP), beyond the submission's top_k


@stage
def retrieve_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    names = read_json(INDEX_IDS)["names"]
    top_k = params.retrieve.top_k
    if top_k > len(names):
        raise ParamsError(f"retrieve.top_k: {top_k} is more than the {len(names)} gallery images; lower it")
    queries = shards.read(EMBEDDINGS / "query")
    query_names = [q["name"] for q in read_json(EMBEDDINGS / "query.json")]
    index = faiss_index.load(INDEX)
    faiss_index.set_search_params(index, params.index.nprobe, params.index.ef_search)
    depth = min(len(names), max(top_k, EVAL_DEPTH))
    start = time.perf_counter()
    ids, scores = retrieve(index, queries, depth, params.retrieve, lambda: shards.Rows(EMBEDDINGS / "gallery"))
    ms_per_query = (time.perf_counter() - start) * 1000 / max(len(queries), 1)
    submission = {q: [names[i] for i in row[:top_k] if i >= 0] for q, row in zip(query_names, ids)}
    write_json(SUBMISSION, submission)
    with atomic_path(RETRIEVED) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=ids.astype(np.int64), scores=scores.astype(np.float32), ms_per_query=np.float64(ms_per_query))
    how = f", re-ranked ({params.retrieve.rerank})" if params.retrieve.rerank != "none" else ""
    print(f"retrieve: top-{top_k} for {len(query_names)} queries{how} -> {SUBMISSION}; {ms_per_query:.3f} ms/query")


if __name__ == "__main__":
    typer.run(retrieve_stage)
