"""Who is in a gallery, without labels (`styleid people INDEX --out DIR`): the index's embeddings grouped by the
clustering self-training uses (DBSCAN on the k-reciprocal Jaccard distance, search/sparse_jaccard.py), one group a
presumed person. DIR gets people.csv (image, group, confidence), one contact sheet a group (groups/group-NNN.png) and
summary.json. Group -1 holds the images that joined no group."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from styleid.fileio import atomic_dir, write_json
from styleid.gallery.folder_index import EMBEDDINGS, FolderIndex

SHEET_COLUMNS = 8  # images a row on a group's contact sheet
SHEET_MAX = 48  # images shown a group (the most confident first); the CSV lists them all
TILE = 112  # px


@dataclass(frozen=True)
class Grouping:
    groups: np.ndarray  # each image's group, numbered from 0 by size (largest first), -1 = none
    confidence: np.ndarray  # share of an image's nearest neighbours that share its group (0 for none)
    seconds: float

    @property
    def count(self) -> int:
        return int(self.groups.max(initial=-1) + 1)


def group(rows: np.ndarray, eps: float, k1: int, k2: int, min_samples: int) -> Grouping:
    """DBSCAN on the sparse k-reciprocal Jaccard graph of L2-normalised rows (memory grows with the rows, not their square)."""
    from sklearn.cluster import DBSCAN

    from styleid.search.sparse_jaccard import jaccard_graph, nearest

    start = time.perf_counter()
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(jaccard_graph(rows, k1, k2, keep_upto=eps))
    found = [c for c in set(labels.tolist()) if c >= 0]
    order = sorted(found, key=lambda c: (-int((labels == c).sum()), int(np.argmax(labels == c))))
    groups = np.array([{old: new for new, old in enumerate(order)}.get(c, -1) for c in labels], dtype=np.int64)
    confidence = np.zeros(len(rows), np.float32)
    if found:
        k = min(len(rows), k1 + 1)
        neighbours = nearest(rows, k)[:, 1:]  # itself left out
        sizes = np.bincount(groups[groups >= 0], minlength=len(order))
        for i in np.flatnonzero(groups >= 0):
            n = max(1, min(k - 1, int(sizes[groups[i]]) - 1))  # as many neighbours as its group could hold
            confidence[i] = float((groups[neighbours[i, :n]] == groups[i]).mean())
    return Grouping(groups, confidence, time.perf_counter() - start)


def _sheet(files: list[Path]):
    from PIL import Image

    from styleid.panels import tile_image

    rows = (len(files) + SHEET_COLUMNS - 1) // SHEET_COLUMNS
    sheet = Image.new("RGB", (SHEET_COLUMNS * (TILE + 4) + 4, rows * (TILE + 4) + 4), (255, 255, 255))
    for k, file in enumerate(files):
        sheet.paste(tile_image(file, TILE), (4 + (k % SHEET_COLUMNS) * (TILE + 4), 4 + (k // SHEET_COLUMNS) * (TILE + 4)))
    return sheet


def write_people(index_dir: Path, out: Path, eps: float, k1: int, k2: int, min_samples: int, force: bool = False) -> dict:
    """Group INDEX's images and write OUT (replaced only when it is styleid's own people folder); returns the summary."""
    from styleid import ownership

    index = FolderIndex.load(index_dir)
    ownership.separate(out, {"the index": index_dir, "the gallery folder": index.folder})
    grouping = group(np.load(index_dir / EMBEDDINGS), eps, k1, k2, min_samples)
    summary = {"images": len(index.paths), "groups": grouping.count, "grouped_images": int((grouping.groups >= 0).sum()),
               "seconds": round(grouping.seconds, 2), "eps": eps, "k1": k1, "k2": k2, "min_samples": min_samples}
    with atomic_dir(out, "people", force=force) as tmp:
        with open(tmp / "people.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "id", "group", "confidence"])
            for row in np.lexsort((-grouping.confidence, np.where(grouping.groups < 0, 1 << 30, grouping.groups))):
                writer.writerow([index.paths[row], index.entries[row]["id"], int(grouping.groups[row]), round(float(grouping.confidence[row]), 3)])
        (tmp / "groups").mkdir()
        for g in range(grouping.count):
            members = np.flatnonzero(grouping.groups == g)
            members = members[np.argsort(-grouping.confidence[members], kind="stable")][:SHEET_MAX]
            _sheet([index.file(int(i)) for i in members]).save(tmp / "groups" / f"group-{g:03d}.png")
        write_json(tmp / "summary.json", summary)
    return summary
