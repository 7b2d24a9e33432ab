"""Searching a folder index with photos: embedded with the index's own model, scored by cosine similarity,
each match marked "same person" above the card's calibrated threshold, "unsure" below it."""

from __future__ import annotations

from pathlib import Path

from styleid.fileio import read_json
from styleid.gallery.embedder import PhotoEmbedder
from styleid.gallery.folder_index import FolderIndex
from styleid.images import load_rgb


def verdict(score: float, threshold: float | None) -> str:
    return "unknown" if threshold is None else "same person" if score >= threshold else "unsure"


def search_images(images: list, labels: list[str], index: FolderIndex, embedder: PhotoEmbedder, top_k: int) -> tuple[list[dict], str]:
    """Each image's top_k gallery images (rank, cosine score, verdict, gallery row and file), and what the score is."""
    card = read_json(index.model_dir / "card.json") if (index.model_dir / "card.json").is_file() else {}
    match = card.get("match") or {}
    threshold = match.get("threshold")
    ids, scores = index.search(embedder.embed(images), top_k)
    results = [{"photo": label, "matches": [{"rank": r, "score": round(float(s), 4), "verdict": verdict(float(s), threshold), "row": int(i),
                                              "name": index.paths[i], "file": str(index.folder / index.paths[i])}
                                             for r, (i, s) in enumerate(zip(row_ids, row_scores), start=1) if i >= 0]}
               for label, row_ids, row_scores in zip(labels, ids, scores)]
    how = "cosine similarity to the photo" + (f"; same person at {threshold} or more ({match.get('false_match_rate', 0):.0%} false matches "
                                              "on the validation people)" if threshold is not None else "; no calibrated threshold in this model's card")
    return results, how


def search_index(photos: list[Path], index_dir: Path, top_k: int) -> tuple[list[dict], str]:
    index = FolderIndex.load(index_dir)
    return search_images([load_rgb(p) for p in photos], [str(p) for p in photos], index, PhotoEmbedder(index.model_dir), top_k)
