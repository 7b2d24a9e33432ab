"""Qualitative panels: a query beside its top-k gallery images, hits framed green and misses red.

Unlabelled rankings (no ground truth) get neutral grey frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from styleid.images import BadImage, load_rgb

HIT = (0, 170, 0)
MISS = (210, 0, 0)
NEUTRAL = (150, 150, 150)
QUERY = (40, 90, 200)
TILE = 112  # px per image
FRAME = 5  # frame width, px
GAP = 4  # px between tiles


def tile_image(path: Path, size: int) -> Image.Image:
    try:
        img = load_rgb(path)
    except (BadImage, OSError):
        return Image.new("RGB", (size, size), (255, 255, 255))
    img.thumbnail((size, size), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return canvas


def frame_colour(hit: bool | None) -> tuple[int, int, int]:
    return NEUTRAL if hit is None else (HIT if hit else MISS)


def make_panel(query: Path, results: Sequence[Path], hits: Sequence[bool | None], tile: int = TILE) -> Image.Image:
    """One row: the query (blue frame), a gap, then the results in rank order with their frames."""
    cell = tile + 2 * FRAME
    width = cell * (1 + len(results)) + GAP * (len(results) + 1) + GAP * 3
    panel = Image.new("RGB", (width, cell + 2 * GAP), (255, 255, 255))
    draw = ImageDraw.Draw(panel)

    def put(x: int, path: Path, colour: tuple[int, int, int]) -> None:
        draw.rectangle([x, GAP, x + cell - 1, GAP + cell - 1], fill=colour)
        panel.paste(tile_image(path, tile), (x + FRAME, GAP + FRAME))

    put(GAP, query, QUERY)
    x = GAP + cell + GAP * 4
    for path, hit in zip(results, hits):
        put(x, path, frame_colour(hit))
        x += cell + GAP
    return panel


def frame_pixel(panel: Image.Image, position: int, tile: int = TILE) -> tuple[int, int, int]:
    """The colour of result `position`'s frame (0 = first result); tests and tools read frames back."""
    cell = tile + 2 * FRAME
    x = GAP + cell + GAP * 4 + position * (cell + GAP)
    return panel.getpixel((x + FRAME // 2, GAP + cell // 2))


def _is_panel(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return getattr(img, "text", {}).get("styleid") == "panel"
    except (OSError, ValueError):
        return False


def write_search_panel(panel: Path, photos: list[Path], results: list[dict]) -> None:
    """`styleid search --panel`: a row a photo, its matches in rank order (neutral frames); replaces only a panel it wrote."""
    from PIL import PngImagePlugin

    from styleid.fileio import atomic_path
    from styleid.ownership import claim_file

    claim_file(panel, _is_panel, "panel", "--panel")
    rows = [make_panel(photo, [Path(m["file"]) for m in r["matches"]], [None] * len(r["matches"])) for photo, r in zip(photos, results)]
    sheet = Image.new("RGB", (max(p.width for p in rows), sum(p.height for p in rows)), (255, 255, 255))
    y = 0
    for p in rows:
        sheet.paste(p, (0, y))
        y += p.height
    info = PngImagePlugin.PngInfo()
    info.add_text("styleid", "panel")  # how the next --panel knows this file may be replaced
    with atomic_path(panel) as tmp:
        sheet.save(tmp, format="PNG", pnginfo=info)
