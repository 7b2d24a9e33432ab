"""`styleid`: commands for people, on top of a pipeline that `dvc repro` has built."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
import typer

from styleid import shards
from styleid.artifacts import ALIGNED_INDEX, EMBEDDINGS, INDEX, INDEX_IDS, MODEL_DIR
from styleid.errors import StyleidError
from styleid.fileio import read_json
from styleid.runner import stage

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="styleid: find a person's stylized renderings from a photo. Build the model and index with `dvc repro` first.")


@app.callback()
def main() -> None:
    """styleid: cross-domain identity retrieval (photo -> cartoons, caricatures, renders)."""


def _need(path: Path, target: str) -> None:
    if not path.exists():
        raise StyleidError(f"{path}: missing; run `dvc repro {target}` to build it")


def _embed_photos(photos: List[Path], params) -> np.ndarray:
    from styleid.data.align import FaceAligner, query_settings
    from styleid.images import load_rgb
    from styleid.inference.embed import embed_images
    from styleid.inference.normalize import l2_normalize
    from styleid.inference.transforms import eval_transform
    from styleid.models.embedder import load

    model = load(MODEL_DIR)
    d = params.data
    settings = query_settings(read_json(ALIGNED_INDEX) if ALIGNED_INDEX.is_file() else None, d.align, d.align_size, d.align_margin)
    aligner = FaceAligner(settings) if settings.method == "mtcnn" else None
    images = [load_rgb(photo) for photo in photos]  # a bad file is a one-line error naming it
    images = [aligner(img).crop for img in images] if aligner else images
    return l2_normalize(embed_images(model, images, eval_transform(model.spec), params.embed.flip_tta, params.embed.batch_size))


@app.command("search")
@stage
def search(photos: List[Path] = typer.Argument(..., help="photos of the people to look for"),
           top_k: int = typer.Option(10, "--top-k", "-k", min=1, help="gallery images per photo"),
           panel: Path = typer.Option(Path("search_panel.png"), "--panel", help="where to write the picture of the results"),
           params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    """Rank the indexed gallery for each PHOTO: prints gallery files with scores and writes a panel image."""
    from PIL import Image

    from styleid.fileio import atomic_path
    from styleid.panels import make_panel
    from styleid.params import load_params
    from styleid.search import index as faiss_index
    from styleid.search.retriever import retrieve

    for photo in photos:
        if not photo.is_file():
            raise StyleidError(f"{photo}: no such file")
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
    ids, scores = retrieve(index, queries, keep, params.retrieve, lambda: shards.read(EMBEDDINGS / "gallery"))
    rows = []
    for photo, row_ids, row_scores in zip(photos, ids, scores):
        typer.echo(f"{photo}:")
        files = []
        for rank, (i, s) in enumerate(zip(row_ids[:top_k], row_scores[:top_k]), start=1):
            if i < 0:
                continue
            file = gallery_meta[i]["file"] if gallery_meta else names[i]
            files.append(Path(file))
            typer.echo(f"  {rank:3d}  {s:.4f}  {names[i]}")
        rows.append(make_panel(photo, files, [None] * len(files)))
    width = max(p.width for p in rows)
    sheet = Image.new("RGB", (width, sum(p.height for p in rows)), (255, 255, 255))
    y = 0
    for p in rows:
        sheet.paste(p, (0, y))
        y += p.height
    with atomic_path(panel) as tmp:
        sheet.save(tmp, format="PNG")
    typer.echo(f"panel: {panel}")


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
