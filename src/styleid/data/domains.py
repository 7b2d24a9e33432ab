"""Which unmarked training images are photos and which are renders.

The competition ships its training images unmarked (train/<person>/*), but its test split says what
each domain looks like: test/query holds photos, test/gallery renders. A logistic regression on the
frozen backbone's style statistics (models/style_stats.py; no identity labels) learns that difference
from the test images and labels each training image photo or render with a probability; below
domains.min_confidence it stays unknown. With the labels, batches pair photos with renders again and validation mirrors the test:
photo queries against render galleries of unseen people.

Pure functions on arrays and split documents; the stage (stages/domains.py) computes the features.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from styleid.errors import DataError

PHOTO, RENDER, UNKNOWN = "photo", "render", "unknown"
TRAIN_PARTS = ("train", "holdout", "val_query", "val_gallery")  # the parts whose images are training people's


@dataclass
class DomainLabels:
    p_photo: np.ndarray  # probability that each image is a photo
    labels: list[str]  # photo | render | unknown (below min_confidence)
    cv_accuracy: float  # 5-fold cross-validated accuracy on the labelled (test) images


def _classifier(seed: int, folds: int):
    """Logistic regression on standardised features, its probabilities calibrated (Platt) on held-out folds,
    so that domains.min_confidence means what it says."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    base = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, random_state=seed))
    return CalibratedClassifierCV(base, method="sigmoid", cv=StratifiedKFold(folds, shuffle=True, random_state=seed))


def label_domains(fit_x: np.ndarray, fit_is_photo: np.ndarray, x: np.ndarray, min_confidence: float, seed: int) -> DomainLabels:
    """Fit photo-vs-render on (fit_x, fit_is_photo) and label the rows of x."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    fit_is_photo = np.asarray(fit_is_photo, dtype=int)
    counts = np.bincount(fit_is_photo, minlength=2)
    if counts.min() < 4:
        raise DataError(f"domains: the classifier needs photos and renders to learn from (test queries {counts[1]}, gallery {counts[0]}; "
                        "at least 4 of each); set domains.infer false")
    folds = int(min(5, counts.min() // 2))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    cv_accuracy = float(cross_val_score(_classifier(seed, folds), fit_x, fit_is_photo, cv=cv).mean())
    model = _classifier(seed, folds).fit(fit_x, fit_is_photo)
    p_photo = model.predict_proba(x)[:, 1] if len(x) else np.zeros(0)
    return DomainLabels(p_photo, to_labels(p_photo, min_confidence), cv_accuracy)


def to_labels(p_photo: np.ndarray, min_confidence: float) -> list[str]:
    return [PHOTO if p >= min_confidence else RENDER if 1 - p >= min_confidence else UNKNOWN for p in p_photo]


def apply_domains(split: dict, inferred: dict[str, str]) -> dict:
    """The split with inferred domains (file -> photo|render|unknown) on the training people's images.

    Validation people whose images now include photos and renders validate as the test does: their
    photos query, their renders are the gallery; their still-unknown images sit out of validation.
    Everyone else validates as before.
    """
    if not inferred:
        return split
    relabel = lambda e: {**e, "domain": inferred.get(e["file"], e["domain"])}  # noqa: E731
    out = {**split, **{part: [relabel(e) for e in split[part]] for part in ("train", "holdout", "val_query", "val_gallery")}}
    by_person: dict[str, list[dict]] = {}  # each validation person's images, queries first, in split order
    for e in out["val_query"] + out["val_gallery"]:
        by_person.setdefault(e["person"], []).append(e)
    mirrored = [p for p, entries in by_person.items() if {PHOTO, RENDER} <= {e["domain"] for e in entries}]
    as_before = set(by_person) - set(mirrored)
    for part, domain in (("val_query", PHOTO), ("val_gallery", RENDER)):
        out[part] = [e for e in out[part] if e["person"] in as_before] + [e for p in mirrored for e in by_person[p] if e["domain"] == domain]
    return out


def read_truth(path: Path, root: Path | None = None) -> dict[str, str]:
    """A CSV of known domains: path (relative to the dataset root `root`, or absolute inside it), domain (photo or render)."""
    if not path.is_file():
        raise DataError(f"{path}: domains.truth names no file; give a CSV of path,domain or set it to \"\"")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    truth = {}
    for line, row in enumerate(rows, start=1):
        if line == 1 and row[:2] == ["path", "domain"]:
            continue
        if len(row) != 2 or row[1] not in (PHOTO, RENDER):
            raise DataError(f"{path}:{line}: expected `path,domain` with domain photo or render; fix the line")
        name = row[0]
        if root is not None and Path(name).is_absolute():
            real, base = Path(os.path.realpath(name)), Path(os.path.realpath(root))
            if not real.is_relative_to(base):
                raise DataError(f"{path}:{line}: {name} is not inside the dataset {root}; give paths relative to it")
            name = real.relative_to(base).as_posix()
        truth[name] = row[1]
    return truth


def accuracy_against(truth: dict[str, str], predicted: dict[str, tuple[str, float]]) -> dict:
    """How the classifier did on images whose domain is known: all of them (most likely domain), and the confident ones."""
    known = [(truth[k], v) for k, v in predicted.items() if k in truth]
    if not known:
        return {"truth_images": 0}
    best = [PHOTO if p >= 0.5 else RENDER for _, (_, p) in known]
    confident = [(t, label) for t, (label, _) in known if label != UNKNOWN]
    return {"truth_images": len(known),
            "truth_accuracy": round(float(np.mean([t == b for (t, _), b in zip(known, best)])), 4),
            "truth_confident_share": round(len(confident) / len(known), 4),
            "truth_confident_accuracy": round(float(np.mean([t == label for t, label in confident])), 4) if confident else 0.0}
