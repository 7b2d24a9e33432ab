"""`styleid`: commands for people, on top of a pipeline that `dvc repro` has built."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from styleid import shards
from styleid.artifacts import ALIGNED_INDEX, EMBEDDINGS, INDEX, INDEX_IDS, MODEL_DIR, RERANK_CHOICE, embedding_model
from styleid.errors import StyleidError
from styleid.fileio import read_json
from styleid.index_cli import index_app
from styleid.params.sections import SelfTrainParams
from styleid.runner import stage

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="styleid: find a person's stylized renderings from a photo. Build the model and index with `dvc repro` first.")


@app.callback()
def main() -> None:
    """styleid: cross-domain identity retrieval (photo -> cartoons, caricatures, renders)."""


app.add_typer(index_app, name="index")


def _need(path: Path, target: str) -> None:
    if not path.exists():
        raise StyleidError(f"{path}: missing; run `dvc repro {target}` to build it")


def _embed_photos(photos: List[Path], params) -> np.ndarray:
    """The photos as the pipeline embedded its test queries: its alignment, flip averaging and runtime."""
    from styleid.data.align import query_settings
    from styleid.devices import best
    from styleid.gallery.embedder import PhotoEmbedder
    from styleid.images import read_photo

    d, e = params.data, params.embed
    settings = query_settings(read_json(ALIGNED_INDEX) if ALIGNED_INDEX.is_file() else None, d.align, d.align_size, d.align_margin)
    embedder = PhotoEmbedder(embedding_model(), settings, e.flip_tta, e.runtime, best(), e.batch_size, e.precision)  # the gallery's model
    return embedder.embed([read_photo(photo) for photo in photos])  # a bad file is a one-line error naming it


@app.command("search")
@stage
def search(photos: List[Path] = typer.Argument(..., help="photos of the people to look for, or folders of them"),
           top_k: int = typer.Option(10, "--top-k", "-k", min=1, help="gallery images per photo"),
           index_dir: Optional[Path] = typer.Option(None, "--index", help="an index from `styleid index` (default: the pipeline's)"),
           as_json: bool = typer.Option(False, "--json", help="print the results as JSON"),
           out: Optional[Path] = typer.Option(None, "--out", help="write the results here instead of printing them (.csv or .json)"),
           sheet: Optional[Path] = typer.Option(None, "--sheet", help="also write a contact sheet here (one HTML page)"),
           panel: Optional[Path] = typer.Option(None, "--panel", help="also write a picture of the results here (PNG)"),
           params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    """Rank a gallery for each PHOTO (a folder: every image in it): your own index (--index, from any directory), or the
    pipeline's (from its repository)."""
    from styleid.gallery.batch import query_files, search_many, write_results, write_sheet

    photos, found = query_files(photos)
    if index_dir is not None:
        results, how, skipped = search_many(photos, found, index_dir, top_k)
    else:
        results, how = _search_pipeline(photos, top_k, params_file)
        skipped = []
    if out is not None:
        write_results(out, results, how)
        typer.echo(f"{out}: {len(results)} photos, {top_k} matches each" + (f"; {len(skipped)} unreadable skipped" if skipped else ""))
    elif as_json:
        import json

        typer.echo(json.dumps({"score": how, "results": results}, indent=2))
    else:
        typer.echo(f"(score: {how})")
        for result in results:
            typer.echo(f"{result['photo']}:")
            for m in result["matches"]:
                verdict = f"  {m['verdict']:<11}" if "verdict" in m else ""
                typer.echo(f"  {m['rank']:3d}  {m['score']:.4f}{verdict}  {m['name']}")
    if sheet is not None:
        write_sheet(sheet, results, how)
        typer.echo(f"contact sheet: {sheet}")
    if panel is not None:
        from styleid.panels import write_search_panel

        write_search_panel(panel, [Path(r["photo"]) for r in results], results)
        typer.echo(f"panel: {panel}")


def _search_pipeline(photos: List[Path], top_k: int, params_file: Path) -> tuple[list[dict], str]:
    """The pipeline's index, from the repository root, with its re-ranking and adaptation."""
    from styleid.params import load_params
    from styleid.search import index as faiss_index
    from styleid.search.retriever import retrieve

    params = load_params(params_file)
    _need(MODEL_DIR / "model.safetensors", "train")
    _need(INDEX, "index")
    _need(INDEX_IDS, "index")
    gallery_meta = read_json(EMBEDDINGS / "gallery.json") if (EMBEDDINGS / "gallery.json").is_file() else None
    names = read_json(INDEX_IDS)["names"]
    top_k = min(top_k, len(names))
    queries = _embed_photos(photos, params)
    adapt = read_json(EMBEDDINGS / "adapt.json") if (EMBEDDINGS / "adapt.json").is_file() else {"adapt": "none"}
    if adapt["adapt"] == "center":  # as the pipeline's queries were: minus the test photos' mean
        from styleid.search.adapt import center

        queries = center(queries, np.array(adapt["query_mean"], np.float32))
    index = faiss_index.load(INDEX)
    faiss_index.set_search_params(index, params.index.nprobe, params.index.ef_search)
    keep = min(len(names), max(top_k, params.retrieve.depth))
    settings = params.retrieve
    if settings.rerank == "auto":  # what the pipeline's validation people chose (the retrieve stage), none before it ran
        settings = dataclasses.replace(settings, rerank=read_json(RERANK_CHOICE)["rerank"] if RERANK_CHOICE.is_file() else "none")
    ids, scores = retrieve(index, queries, keep, settings, lambda: shards.Rows(EMBEDDINGS / "gallery"))
    results = [{"photo": str(photo), "matches": [{"rank": r, "score": round(float(s), 4), "name": names[i],
                                                   "file": gallery_meta[i]["file"] if gallery_meta else names[i]}
                                                  for r, (i, s) in enumerate(zip(row_ids[:top_k], row_scores[:top_k]), start=1) if i >= 0]}
               for photo, row_ids, row_scores in zip(photos, ids, scores)]
    rerank = settings.rerank
    how = "cosine similarity to the photo" + (f"; order re-ranked by {rerank}, so scores need not fall down the list" if rerank != "none" else "")
    return results, how


@app.command("export")
@stage
def export(out: Path = typer.Option(Path("exported"), "--out", help="the folder to write: new, empty, or an earlier export (replaced)"),
           force: bool = typer.Option(False, "--force", help="also replace another kind of styleid folder (never anything else)"),
           params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    """Write the trained model as ONNX with its model card (metrics, licence, a calibrated match threshold) to OUT."""
    from styleid.gallery.export import export_model
    from styleid.params import load_params

    card = export_model(out, load_params(params_file), force)
    match = card.get("match") or {}
    typer.echo(f"{out}: model.onnx, model.json, card.json ({card['backbone']}, {card['embedding_size']}-d; test score "
               f"{card['test_metrics'].get('score', '-')}; same-person threshold {match.get('threshold', '-')} at "
               f"{match.get('false_match_rate', 0):.0%} false matches)")


@app.command("serve")
@stage
def serve(index_dir: Path = typer.Option(..., "--index", help="an index from `styleid index`"),
          host: str = typer.Option("127.0.0.1", "--host", help="the address to listen on (0.0.0.0: every network; think first)"),
          port: int = typer.Option(8000, "--port", min=1, max=65535),
          token: Optional[str] = typer.Option(None, "--token", help="needed to change the gallery (POST, DELETE /gallery); "
                                              "also $STYLEID_TOKEN. Without one, a server beyond 127.0.0.1 is read-only")) -> None:
    """Serve a search page and a JSON API (POST /search, GET /health, GET/POST/DELETE /gallery) over INDEX."""
    from styleid.serve.app import serve as run

    typer.echo(f"styleid: http://{host}:{port}/ (index {index_dir}); Ctrl-C stops")
    run(index_dir, host, port, token)


_CLUSTER = SelfTrainParams()  # `styleid people` groups as self-training clusters, with its defaults


@app.command("people")
@stage
def people(index_dir: Path = typer.Argument(..., help="an index from `styleid index`"),
           out: Path = typer.Option(..., "--out", help="the folder to write: new, empty, or an earlier `styleid people` folder"),
           k1: int = typer.Option(_CLUSTER.k1, "--k1", min=1, help="neighbourhood size: about the most images one person has"),
           k2: int = typer.Option(_CLUSTER.k2, "--k2", min=1, help="local query expansion size"),
           eps: float = typer.Option(_CLUSTER.eps, "--eps", min=0.01, max=0.99, help="how near (Jaccard distance) a group's images lie"),
           min_samples: int = typer.Option(_CLUSTER.min_samples, "--min-samples", min=1, help="the fewest images that make a group"),
           force: bool = typer.Option(False, "--force", help="also replace another kind of styleid folder (never anything else)")) -> None:
    """Group INDEX's images into presumed people, without labels (self-training's clustering): people.csv (image,
    group, confidence), a contact sheet a group, summary.json."""
    from styleid.gallery.people import write_people

    summary = write_people(index_dir, out, eps, k1, k2, min_samples, force)
    typer.echo(f"{out}: {summary['groups']} groups holding {summary['grouped_images']} of {summary['images']} images; "
               f"people.csv and groups/; {summary['seconds']:.1f}s")


COMPARISON = "styleid compare"  # the "kind" of compare's JSON: how a later --json knows the file may be replaced


def _is_comparison(path: Path) -> bool:
    try:
        return read_json(path).get("kind") == COMPARISON
    except (OSError, ValueError, AttributeError):
        return False


@app.command("compare")
@stage
def compare(base: Path = typer.Argument(..., help="the baseline run's project folder (after `dvc repro`)"),
            other: Path = typer.Argument(..., help="the run to compare with it, on the same test set"),
            seed: int = typer.Option(0, "--seed", help="seeds the bootstrap draws of the people"),
            measure: str = typer.Option("score", "--measure", help="score (600 R@1 + 300 R@5 + 100 R@10) | mAP (where every right image ranks)"),
            json_out: Optional[Path] = typer.Option(None, "--json", help="also write the comparison here as JSON")) -> None:
    """OTHER's score (or mAP) minus BASE's, with the 95% interval of that gain (the same test people resampled for both)."""
    from dataclasses import asdict

    from styleid.fileio import write_json
    from styleid.ownership import claim_file
    from styleid.paired_comparison import MEASURE_FORMAT, compare as compare_runs, load_run

    if json_out:
        claim_file(json_out, _is_comparison, "comparison", "--json")
    result = compare_runs(load_run(base), load_run(other), seed, measure)
    if json_out:
        write_json(json_out, {"kind": COMPARISON, **asdict(result), "verdict": result.verdict})
    fmt = MEASURE_FORMAT[measure]
    typer.echo(f"{other} - {base}: {measure} {result.other_value:{fmt}} - {result.base_value:{fmt}} = {result.gain:+{fmt}} "
               f"(95% paired interval {result.gain_low:+{fmt}} to {result.gain_high:+{fmt}}; {result.n_queries} queries of "
               f"{result.n_people} people): {result.verdict}; {result.better} queries better, {result.worse} worse "
               f"(first result: {result.first_fixed} fixed, {result.first_broken} broken)")


@app.command("make-competition")
@stage
def make_competition(source: Path = typer.Argument(..., help="a dataset with photos/<person>/ beside <renders>/<person>/"),
                     out: Path = typer.Argument(..., help="the folder to write (replaced if it exists)"),
                     test_share: float = typer.Option(0.2, "--test-share", help="share of the people that become test people"),
                     seed: int = typer.Option(42, "--seed", help="chooses the test people"),
                     mark_domains: bool = typer.Option(False, "--mark-domains", help="keep train/photos/ beside train/<renders>/ (else mixed and unmarked)")) -> None:
    """Copy SOURCE into the competition's layout (train/<person>/ unmarked, test/query, test/gallery) and write OUT.domains.csv."""
    from styleid.data.convert import to_competition, truth_path

    if not source.is_dir():
        raise StyleidError(f"{source}: no such folder")
    counts = to_competition(source, out, test_share, seed, mark_domains)
    typer.echo(f"{out}: {counts['train_people']} training people ({counts['train_images']} images, "
               f"{'marked' if mark_domains else 'unmarked'}), {counts['test_people']} test people ({counts['query_images']} queries, "
               f"{counts['gallery_images']} gallery); true domains in {truth_path(out)}")


if __name__ == "__main__":
    app()
