"""retrieve: top-k gallery images per query -> submission.json (query name -> ranked gallery names).

retrieve.rerank auto: the validation people choose the re-ranker first (search/rerank_choice.py) -> metrics/rerank.json.
"""

import dataclasses
import time
from pathlib import Path

import numpy as np
import typer

from styleid import shards
from styleid.artifacts import EMBEDDINGS, INDEX, INDEX_IDS, RERANK_CHOICE, RETRIEVED, SUBMISSION
from styleid.errors import ParamsError
from styleid.fileio import atomic_path, read_json, write_json
from styleid.params import load_params
from styleid.runner import stage
from styleid.search import index as faiss_index
from styleid.search.rerank_choice import choose
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
    settings = params.retrieve
    chosen = _choose(params, len(queries) + len(names)) if settings.rerank == "auto" else \
        {"rerank": settings.rerank, "rerank_checked": f"retrieve.rerank is {settings.rerank}: nothing weighed"}
    write_json(RERANK_CHOICE, chosen)
    settings = dataclasses.replace(settings, rerank=chosen["rerank"])
    start = time.perf_counter()
    ids, scores = retrieve(index, queries, depth, settings, lambda: shards.Rows(EMBEDDINGS / "gallery"))
    ms_per_query = (time.perf_counter() - start) * 1000 / max(len(queries), 1)
    submission = {q: [names[i] for i in row[:top_k] if i >= 0] for q, row in zip(query_names, ids)}
    write_json(SUBMISSION, submission)
    with atomic_path(RETRIEVED) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=ids.astype(np.int64), scores=scores.astype(np.float32), ms_per_query=np.float64(ms_per_query))
    how = f", re-ranked ({settings.rerank}{', chosen by the validation people' if params.retrieve.rerank == 'auto' else ''})" \
        if settings.rerank != "none" else ""
    print(f"retrieve: top-{top_k} for {len(query_names)} queries{how} -> {SUBMISSION}; {ms_per_query:.3f} ms/query")


def _choose(params, test_images: int) -> dict:
    """retrieve.rerank auto: the re-ranker the validation people (embedded by the embed stage as the test) gain from."""
    if not (EMBEDDINGS / "val_query.json").is_file():
        return {"rerank": "none", "rerank_checked": "no validation people: nothing re-ranked"}
    people = {part: [x["person"] for x in read_json(EMBEDDINGS / f"{part}.json")] for part in ("val_query", "val_gallery")}
    return choose(params.retrieve, shards.read(EMBEDDINGS / "val_query"), shards.read(EMBEDDINGS / "val_gallery"), people["val_query"],
                  people["val_gallery"], test_images, params.seed)


if __name__ == "__main__":
    typer.run(retrieve_stage)
