"""Lay a photos-beside-renders dataset out as the competition ships its data.

    <out>/train/<person>/*          training people, photos and renders mixed and unmarked
                                    (renamed to their content hash, so names say nothing of the domain)
    <out>/test/query/<person>/*     test people's photos (in person folders: the ground truth)
    <out>/test/gallery/<person>/*   test people's renders
    <out>.domains.csv               the true domain of every training image (beside the copy, unseen by fetch)

With mark_domains the training images keep their domain folders instead (train/photos/<person>/ beside
train/<renders>/<person>/): the same people in the same roles, so a run on each copy measures what
unmarked training data costs, and domains.truth=<out>.domains.csv measures the domain classifier.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np

from styleid import ownership
from styleid.data import layouts
from styleid.errors import DataError
from styleid.fileio import atomic_dir, atomic_path


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def truth_path(out: Path) -> Path:
    return out.with_name(out.name + ".domains.csv")


def _is_truth_csv(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.readline().strip() == "path,domain"


def to_competition(src: Path, out: Path, test_share: float = 0.2, seed: int = 42, mark_domains: bool = False) -> dict:
    """Write the copy (atomically) and its truth CSV; return counts of people and images per part."""
    if not 0 < test_share < 1:
        raise DataError(f"test share must be in (0, 1), got {test_share}")
    ownership.separate(out, {"the source": src}, flag="OUT")
    ownership.claim(out, "competition", flag="OUT")
    ownership.claim_file(truth_path(out), _is_truth_csv, "domains CSV", "OUT another name, or move")
    src = layouts.unwrap(src)
    layout, entries = layouts.scan(src, "domains")
    by_person: dict[str, list[tuple[str, str]]] = {}
    for rel, person, domain, _ in entries:
        by_person.setdefault(person, []).append((rel, domain))
    both = sorted(p for p, imgs in by_person.items() if {"photo", "render"} <= {d for _, d in imgs})
    if len(both) < 2:
        raise DataError(f"{src}: needs at least 2 people with photos and renders to make a competition copy (found {len(both)})")
    order = [both[i] for i in np.random.default_rng([seed, 61]).permutation(len(both))]
    test = set(order[: max(1, int(round(test_share * len(order))))])
    truth: list[tuple[str, str]] = []
    counts = {"train_people": 0, "test_people": len(test), "train_images": 0, "query_images": 0, "gallery_images": 0}
    with atomic_dir(out, "competition", flag="OUT") as tmp:
        for person, imgs in sorted(by_person.items()):
            if person in test:
                for rel, domain in imgs:
                    part = "query" if domain == "photo" else "gallery"
                    _place(src / rel, tmp / "test" / part / person / Path(rel).name)
                    counts[f"{part}_images"] += 1
                continue
            counts["train_people"] += 1
            for rel, domain in imgs:
                path = Path(rel)
                if mark_domains:
                    target = Path("train") / path.parts[0] / person / path.name  # photos/ or caricatures/ ...
                else:
                    digest = hashlib.sha1((src / rel).read_bytes()).hexdigest()[:16]
                    target = Path("train") / person / f"{digest}{path.suffix.lower()}"
                    if (tmp / target).exists():
                        continue  # the same image twice
                _place(src / rel, tmp / target)
                truth.append((target.as_posix(), domain))
                counts["train_images"] += 1
    with atomic_path(truth_path(out)) as tmp_csv:
        with open(tmp_csv, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "domain"])
            writer.writerows(sorted(truth))
    return counts
