"""`styleid index`: build an index of a folder, and change it by hand (add, remove, list) without re-indexing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperGroup

from styleid.runner import stage

VERBS_HELP = "build (the default: `styleid index FOLDER --out INDEX`), add, remove, list"


class BuildByDefault(TyperGroup):
    """`styleid index FOLDER --out INDEX`, with no verb, is `styleid index build FOLDER --out INDEX`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


index_app = typer.Typer(cls=BuildByDefault, no_args_is_help=True, add_completion=False,
                        help=f"Index a folder of gallery images, or change an index by hand: {VERBS_HELP}.")


def _named(name: str):
    """stage() with the command's own name in its one-line errors ("styleid index add: error: ...")."""
    def wrap(fn):
        fn.__name__ = name
        return stage(fn)
    return wrap


@index_app.command("build")
@_named("index")
def build(folder: Path = typer.Argument(..., help="a folder of gallery images (searched recursively)"),
          out: Path = typer.Option(..., "--out", help="the index folder to write or update: new, empty, or an earlier index"),
          force: bool = typer.Option(False, "--force", help="also replace another kind of styleid folder (never anything else)"),
          model: Optional[str] = typer.Option(None, "--model", help="an exported model folder, a repository, or a repository's git URL "
                                              "(its styleid-model DVC artifact; URL#v1.0.0 for a version); default: this repository's")) -> None:
    """Index every image under FOLDER; run again, only new or changed files are embedded and removed ones dropped."""
    from styleid.gallery.folder_index import build_index
    from styleid.gallery.model_dir import find_model

    report = build_index(folder, out, find_model(model), force=force)
    typer.echo(f"{out}: {report.added} added, {report.changed} changed, {report.removed} removed, {report.kept} unchanged, "
               f"{len(report.skipped)} skipped; {report.seconds:.1f}s")


@index_app.command("add")
@_named("index add")
def add(index_dir: Path = typer.Argument(..., help="an index from `styleid index FOLDER --out INDEX`"),
        images: List[Path] = typer.Argument(..., help="image files to add (kept inside the index)"),
        label: Optional[str] = typer.Option(None, "--label", help="the person they show, returned with every match")) -> None:
    """Add images to INDEX as they are; each gets an id (the same image twice keeps its first id)."""
    from styleid.errors import StyleidError
    from styleid.gallery.edit import add_images

    for image in images:
        if not image.is_file():
            raise StyleidError(f"{image}: no such file (nothing was added)")
    for entry in add_images(index_dir, [(str(image), image.read_bytes()) for image in images], label):
        typer.echo(f"{entry['id']}  {entry.get('name', entry['path'])}" + (f"  ({entry['label']})" if entry.get("label") else ""))


@index_app.command("remove")
@_named("index remove")
def remove(index_dir: Path = typer.Argument(..., help="an index"),
           ids: List[str] = typer.Argument(..., help="ids from `styleid index list INDEX`")) -> None:
    """Remove images from INDEX by id; a folder image stays in its folder but out of the index, even when re-indexed."""
    from styleid.gallery.edit import remove_images

    for entry in remove_images(index_dir, ids):
        typer.echo(f"removed {entry['id']}  {entry.get('name', entry['path'])}")


@index_app.command("list")
@_named("index list")
def list_(index_dir: Path = typer.Argument(..., help="an index"),
          offset: int = typer.Option(0, "--offset", help="skip this many images"),
          limit: int = typer.Option(100, "--limit", help="show at most this many (1 to 1000)"),
          as_json: bool = typer.Option(False, "--json", help="the page as JSON, as GET /gallery answers")) -> None:
    """List INDEX's images, in order: id, name (or path), person label, and whether it was added by hand."""
    from styleid.gallery.edit import list_images
    from styleid.gallery.folder_index import FolderIndex

    page = list_images(FolderIndex.load(index_dir), offset, limit)
    if as_json:
        typer.echo(json.dumps(page, indent=2, ensure_ascii=False))
        return
    for image in page["images"]:
        typer.echo(f"{image['id']}  {image['name']}" + (f"  ({image['label']})" if image["label"] else "") + ("  [added]" if image["added"] else ""))
    typer.echo(f"{len(page['images'])} of {page['total']} images (from {offset})")
