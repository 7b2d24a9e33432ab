"""Many queries at once (`styleid search DIR --index INDEX --out results.csv`): the photos of a folder searched in
batches with a progress bar, the results as CSV or JSON, and a contact sheet (one HTML page, images inside it) of each
query beside its top matches."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
from pathlib import Path

from styleid.errors import StyleidError
from styleid.fileio import atomic_path, write_json
from styleid.images import BadImage, is_image_name, load_rgb
from styleid.ownership import claim_file
from styleid.progress import bar

log = logging.getLogger(__name__)

KIND = "styleid search"  # the "kind" of --out's JSON, and the sheet's generator: how a later run knows it may replace them
CSV_HEADER = ["query", "rank", "id", "name", "label", "score", "verdict", "file"]
SHEET_TILE = 128  # px, the longer side of each image on the contact sheet


def query_files(paths: list[Path]) -> tuple[list[Path], set[Path]]:
    """The photos to search: files as named, and every image under a named folder (sorted, at any depth, hidden names
    left out); and which of them came from folders (an unreadable one of those is skipped, not fatal)."""
    files, found = [], set()
    for path in paths:
        if path.is_dir():
            inside = sorted((p for p in path.rglob("*") if p.is_file() and is_image_name(p)
                             and not any(part.startswith(".") for part in p.relative_to(path).parts)), key=lambda p: p.parts)
            if not inside:
                raise StyleidError(f"{path}: no images (.jpg, .png, ...) in this folder")
            files += inside
            found.update(inside)
        elif path.is_file():
            files.append(path)
        else:
            raise StyleidError(f"{path}: no such file or folder")
    return files, found


def search_many(files: list[Path], found: set[Path], index_dir: Path, top_k: int, batch_size: int = 32) -> tuple[list[dict], str, list[tuple[str, str]]]:
    """Every photo ranked against the index, a batch at a time; returns the results, what the score is, and the
    photos from folders that could not be read (with why)."""
    from styleid.gallery.embedder import PhotoEmbedder
    from styleid.gallery.folder_index import FolderIndex
    from styleid.gallery.search import rank

    index = FolderIndex.load(index_dir)
    embedder = PhotoEmbedder.from_card(index.model_dir)
    results, skipped, how = [], [], ""
    for lo in bar(range(0, len(files), batch_size), desc="search", unit="batch", hide=len(files) <= batch_size):
        images, labels = [], []
        for file in files[lo : lo + batch_size]:
            try:
                images.append(load_rgb(file))
                labels.append(str(file))
            except BadImage as exc:
                if file not in found:
                    raise StyleidError(f"{file}: {exc}; give a JPEG, PNG or WebP photo") from None
                skipped.append((str(file), str(exc)))
                log.warning("search: skipped %s: %s", file, exc)
        if images:
            batch, how = rank(embedder.embed(images), labels, index, top_k)
            results += batch
    if not results:
        raise StyleidError(f"none of the {len(files)} photos could be read (first: {skipped[0][0]}: {skipped[0][1]})")
    return results, how, skipped


def _is_results(path: Path) -> bool:
    try:
        if path.suffix.lower() == ".json":
            return json.loads(path.read_text(encoding="utf-8")).get("kind") == KIND
        with open(path, newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), None) == CSV_HEADER
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        return False


def write_results(out: Path, results: list[dict], how: str) -> None:
    """.json: {"kind", "score", "results"} as `--json` prints them; .csv: one row per match (CSV_HEADER)."""
    if out.suffix.lower() not in (".csv", ".json"):
        raise StyleidError(f"{out}: --out writes .csv or .json; give a name ending in one of them")
    claim_file(out, _is_results, "search results file", "--out")
    if out.suffix.lower() == ".json":
        write_json(out, {"kind": KIND, "score": how, "results": results})
        return
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for result in results:
            for m in result["matches"]:
                writer.writerow([result["photo"], m["rank"], m.get("id", ""), m["name"], m.get("label", ""), m["score"], m.get("verdict", ""), m["file"]])


def _thumbnail(path: Path) -> str:
    try:
        image = load_rgb(path)
    except (BadImage, OSError):
        return ""
    image.thumbnail((SHEET_TILE, SHEET_TILE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _is_sheet(path: Path) -> bool:
    try:
        return f'<meta name="generator" content="{KIND}">' in path.read_text(encoding="utf-8")[:2000]
    except (OSError, UnicodeDecodeError):
        return False


def write_sheet(out: Path, results: list[dict], how: str) -> None:
    """One self-contained HTML page: each query (blue) beside its matches in rank order, with score, verdict and label."""
    claim_file(out, _is_sheet, "contact sheet", "--sheet")
    cell = "<figure><img src='{src}' alt=''><figcaption>{text}</figcaption></figure>"
    rows = []
    for result in results:
        matches = [cell.format(src=_thumbnail(Path(m["file"])), text=html.escape(
            f"{m['rank']}. {m['score']:.3f} {m.get('verdict', '')} {m.get('label') or Path(m['name']).name}")) for m in result["matches"]]
        query = cell.format(src=_thumbnail(Path(result["photo"])), text=html.escape(Path(result["photo"]).name))
        rows.append(f"<section><div class='query'>{query}</div>{''.join(matches)}</section>")
    page = (f'<!doctype html><html><head><meta charset="utf-8"><meta name="generator" content="{KIND}"><title>styleid search</title>'
            "<style>body{font-family:sans-serif;margin:1em}section{display:flex;gap:6px;margin-bottom:10px;align-items:flex-start}"
            "figure{margin:0;width:132px;font-size:11px}img{width:128px;height:128px;object-fit:contain;background:#eee}"
            ".query img{outline:4px solid #285ac8}</style></head><body>"
            f"<p>{len(results)} photos; score: {html.escape(how)}</p>{''.join(rows)}</body></html>\n")
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
