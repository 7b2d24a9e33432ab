"""How well `styleid people` finds the people of a labelled gallery (labels read only here, to score it): index GALLERY
(<person>/<image> folders) with a model, group it without labels, then compare the groups with the folders.

    python scripts/probe_people.py GALLERY [--model EXPORTED | --frozen-facenet] [--k1 20 --k2 6 --eps 0.6 --min-samples 4] [--keep DIR]

Prints one JSON line: purity (share of grouped images whose person is their group's most common one), recovered_people
(people who are the most common person of at least one group) of people (those with at least min_samples images: the
most a grouping could find), groups, grouped_share, and the seconds each part took.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import typer


def frozen_facenet(folder: Path) -> Path:
    """FaceNet with its offline weights and no head, exported as `styleid export` would (no alignment, flip averaging)."""
    from styleid.fileio import atomic_dir, write_json
    from styleid.inference.onnx_export import export_onnx
    from styleid.models.embedder import ModelConfig, build, save

    model = build(ModelConfig("facenet", "offline", 160, embed_dim=0))
    with atomic_dir(folder, "export") as tmp:
        save(model.eval(), tmp)
        export_onnx(model.eval(), tmp / "model.onnx")
        write_json(tmp / "card.json", {"alignment": {"method": "none"}, "flip_tta": True})
    return folder


def score(rows: list[dict], min_samples: int) -> dict:
    """purity, recovered_people and the rest from people.csv's rows, each image's person its first folder."""
    person = [r["image"].split("/", 1)[0] for r in rows]
    group = [int(r["group"]) for r in rows]
    members: dict[int, list[str]] = {}
    for g, p in zip(group, person):
        if g >= 0:
            members.setdefault(g, []).append(p)
    majority = {g: Counter(ps).most_common(1)[0] for g, ps in members.items()}
    grouped = sum(len(ps) for ps in members.values())
    sizes = Counter(person)
    return {"images": len(rows), "groups": len(members), "grouped_share": round(grouped / max(1, len(rows)), 3),
            "purity": round(sum(n for _, n in majority.values()) / max(1, grouped), 3),
            "recovered_people": len({p for p, _ in majority.values()}), "people": sum(1 for n in sizes.values() if n >= min_samples),
            "all_people": len(sizes)}


def main(gallery: Path, model: Optional[Path] = typer.Option(None, "--model"), frozen: bool = typer.Option(False, "--frozen-facenet"),
         k1: int = typer.Option(20, "--k1"), k2: int = typer.Option(6, "--k2"), eps: float = typer.Option(0.6, "--eps"),
         min_samples: int = typer.Option(4, "--min-samples"), keep: Optional[Path] = typer.Option(None, "--keep")) -> None:
    from styleid.gallery.folder_index import build_index
    from styleid.gallery.people import write_people

    root = Path(tempfile.mkdtemp(prefix="styleid-people-probe-"))
    try:
        if model is None:
            if not frozen:
                raise SystemExit("probe_people: give --model EXPORTED or --frozen-facenet")
            model = frozen_facenet(root / "model")
        start = time.perf_counter()
        build_index(gallery, root / "index", model)
        index_s = time.perf_counter() - start
        out = keep or root / "people"
        summary = write_people(root / "index", out, eps, k1, k2, min_samples)
        with open(out / "people.csv", newline="", encoding="utf-8") as handle:
            result = score(list(csv.DictReader(handle)), min_samples)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"gallery": str(gallery), **result, "index_seconds": round(index_s, 1), "group_seconds": summary["seconds"],
                      "k1": k1, "k2": k2, "eps": eps, "min_samples": min_samples}))


if __name__ == "__main__":
    typer.run(main)
