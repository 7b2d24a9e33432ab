"""Evaluation protocols: who trains, who validates, and which test photos query which gallery.

- open:   people split disjointly into train / val / test; queries are val/test people's photos and
          the gallery their renders (one-domain data gets rendered galleries from `stylize`).
- closed: the reference's LFW protocol: per person 50/20/30 train/val/test images, then per person
          a fifth of the test images are queries and the rest gallery. The same people train and test.
The competition layout keeps its own test set; its train people are split into train and val.
- cross-dataset (data.test_source): every person of the training sources trains or validates; the
          test source's people are the test (photos query renders, or renders made with
          split.test_styles for photo-only data, or its own test/query and test/gallery).
Pure functions: the same manifest and params give the same split.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from styleid.data.manifest import RENDERED, Item
from styleid.errors import DataError
from styleid.params import SplitParams

PARTS = ("train", "holdout", "val_query", "val_gallery", "query", "gallery")


@dataclass(frozen=True)
class Entry:
    path: str  # relative to its source's root (for a rendered gallery image, source RENDERED: relative to data/)
    person: str
    domain: str
    style: str = ""  # the stylize renderer that made it, if any
    source: str = ""  # the source tag whose root `path` is relative to ("" for one-source data, RENDERED for rendered galleries)
    origin: Entry | None = None  # a rendered gallery image: the photo it was rendered from (same framing: align finds the face there)


Split = dict[str, list[Entry]]
ToRender = list["Entry"]  # rendered gallery entries still to draw, each from its `origin` photo


def _rng(seed: int, *salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, *salt])


def _by_person(items: list[Item]) -> dict[str, list[Item]]:
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.path):
        groups[item.person].append(item)
    return dict(sorted(groups.items()))


def _entry(item: Item) -> Entry:
    return Entry(item.path, item.person, item.domain, source=item.source)


def _shuffled(seq: list, rng: np.random.Generator) -> list:
    return [seq[i] for i in rng.permutation(len(seq))]


def _cut(n: int, fractions: tuple[float, ...]) -> list[int]:
    """Sizes for consecutive parts of n items; each part after the first gets at least one when possible."""
    sizes = [int(round(f * n)) for f in fractions]
    sizes = [max(1, s) if n >= len(fractions) + 1 else s for s in sizes]
    return [n - sum(sizes)] + sizes


def split_people(people: list[str], params: SplitParams, seed: int) -> tuple[list[str], list[str], list[str]]:
    if len(people) < 3:
        raise DataError(f"the open protocol needs at least 3 people with query and gallery images, found {len(people)}; add people or use data.protocol=closed")
    order = _shuffled(sorted(people), _rng(seed, 11))
    n_train, n_val, n_test = _cut(len(order), (params.val_people, 1 - params.train_people - params.val_people))
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def _train_and_holdout(images: list[Item], fraction: float, rng: np.random.Generator) -> tuple[list[Entry], list[Entry]]:
    images = _shuffled(images, rng)
    n_hold = int(round(fraction * len(images))) if len(images) >= 3 else 0
    return [_entry(i) for i in images[n_hold:]], [_entry(i) for i in images[:n_hold]]


def _query_gallery_one_domain(images: list[Item], params: SplitParams, rng: np.random.Generator) -> tuple[list[Entry], list[tuple[Entry, str]]]:
    images = _shuffled(images, rng)
    n_query = min(len(images) - 1, max(1, int(round(params.query_fraction * len(images)))))
    styles = params.test_styles
    renders = [(_entry(img), styles[int(rng.integers(len(styles)))]) for img in images[n_query:]]
    return [_entry(i) for i in images[:n_query]], renders


def open_split(items: list[Item], params: SplitParams, seed: int, two_domains: bool) -> tuple[Split, ToRender]:
    groups = _by_person(items)
    if two_domains:
        eligible = [p for p, imgs in groups.items() if {"photo", "render"} <= {i.domain for i in imgs}]
    else:
        eligible = [p for p, imgs in groups.items() if len(imgs) >= 2]
    train_p, val_p, test_p = split_people(eligible, params, seed)
    train_p = sorted(set(groups) - set(val_p) - set(test_p))  # single-image/one-domain people still train
    split: Split = {part: [] for part in PARTS}
    to_render: ToRender = []
    for k, person in enumerate(train_p):
        train, hold = _train_and_holdout(groups[person], params.holdout_fraction, _rng(seed, 12, k))
        split["train"] += train
        split["holdout"] += hold
    for prefix, people in (("val_", val_p), ("", test_p)):
        for k, person in enumerate(people):
            imgs = groups[person]
            if two_domains:
                split[prefix + "query"] += [_entry(i) for i in imgs if i.domain == "photo"]
                split[prefix + "gallery"] += [_entry(i) for i in imgs if i.domain == "render"]
            else:
                _one_domain_test(imgs, params, _rng(seed, 13, len(prefix), k), split, prefix, to_render)
    return split, to_render


def closed_split(items: list[Item], params: SplitParams, seed: int, two_domains: bool) -> Split:
    split: Split = {part: [] for part in PARTS}
    for k, (person, imgs) in enumerate(_by_person(items).items()):
        domains = ("photo", "render") if two_domains else ("photo",)
        parts: dict[str, dict[str, list[Entry]]] = {}
        for d, domain in enumerate(domains):
            pool = _shuffled([i for i in imgs if i.domain == domain], _rng(seed, 21, k, d))
            n_train, n_val, n_test = _cut(len(pool), (params.closed_val, 1 - params.closed_train - params.closed_val))
            parts[domain] = {"train": [_entry(i) for i in pool[:n_train]],
                             "val": [_entry(i) for i in pool[n_train : n_train + n_val]],
                             "test": [_entry(i) for i in pool[n_train + n_val :]]}
        for domain in domains:
            split["train"] += parts[domain]["train"]
            split["holdout"] += parts[domain]["val"]  # closed: val_loss on the same people's held-out images
        for prefix, part in (("val_", "val"), ("", "test")):
            if two_domains:
                split[prefix + "query"] += parts["photo"][part]
                split[prefix + "gallery"] += parts["render"][part]
            else:
                pool = parts["photo"][part]
                if len(pool) < 2:
                    continue  # too few images to be both query and gallery
                n_q = min(len(pool) - 1, max(1, int(round(params.query_fraction * len(pool)))))
                split[prefix + "query"] += pool[:n_q]
                split[prefix + "gallery"] += pool[n_q:]
    return split


def _train_and_val(train_items: list[Item], params: SplitParams, seed: int) -> Split:
    """Training people split into train and val. With domain-marked images (photos beside renders),
    validation is photo queries against render galleries, as the test is."""
    groups = _by_person(train_items)
    people = sorted(groups)
    two_domains = any(i.domain == "photo" for i in train_items) and any(i.domain == "render" for i in train_items)
    # who can validate: both domains (photo queries, render gallery), or at least two images
    eligible = {p for p in people if ({"photo", "render"} <= {i.domain for i in groups[p]} if two_domains else len(groups[p]) >= 2)}
    share = params.val_people / (params.train_people + params.val_people)
    order = _shuffled(people, _rng(seed, 31))
    n_val = max(1, int(round(share * len(eligible)))) if len(eligible) >= 2 else 0
    val_people = [p for p in order if p in eligible][:n_val]
    split: Split = {part: [] for part in PARTS}
    for k, person in enumerate(people):
        if person in val_people and two_domains:
            split["val_query"] += [_entry(i) for i in groups[person] if i.domain == "photo"]
            split["val_gallery"] += [_entry(i) for i in groups[person] if i.domain == "render"]
        elif person in val_people:
            imgs = _shuffled(groups[person], _rng(seed, 32, k))
            n_q = min(len(imgs) - 1, max(1, int(round(params.query_fraction * len(imgs)))))
            split["val_query"] += [_entry(i) for i in imgs[:n_q]]
            split["val_gallery"] += [_entry(i) for i in imgs[n_q:]]
        else:
            train, hold = _train_and_holdout(groups[person], params.holdout_fraction, _rng(seed, 33, k))
            split["train"] += train
            split["holdout"] += hold
    return split


def competition_split(items: list[Item], params: SplitParams, seed: int) -> Split:
    """train/ people split into train and val; test/ as given."""
    split = _train_and_val([i for i in items if i.subset in ("train", "")], params, seed)
    split["query"], split["gallery"] = _given_test(items)
    return split


def _given_test(items: list[Item]) -> tuple[list[Entry], list[Entry]]:
    """A competition test set as it comes: test/query and test/gallery, in path order."""
    ordered = sorted(items, key=lambda i: i.path)
    return [_entry(i) for i in ordered if i.subset == "query"], [_entry(i) for i in ordered if i.subset == "gallery"]


def _one_domain_test(imgs: list[Item], params: SplitParams, rng: np.random.Generator, split: Split, prefix: str,
                     to_render: ToRender) -> None:
    """One photo-only person: some photos query, the rest become gallery renders in split.test_styles."""
    queries, renders = _query_gallery_one_domain(imgs, params, rng)
    split[prefix + "query"] += queries
    for src, style in renders:
        # the source's whole file name, extension included: a.jpg and a.png of one person render to two files
        out = Entry(f"stylized/{src.person}/{src.path.rsplit('/', 1)[-1]}_{style}.jpg", src.person, "render", style, RENDERED, src)
        split[prefix + "gallery"].append(out)
        to_render.append(out)


def cross_dataset_split(items: list[Item], test_layout: str, params: SplitParams, seed: int, test_tag: str) -> tuple[Split, ToRender]:
    """Train and validate on every source but the test source; test on all of the test source's people."""
    train_items = [i for i in items if i.source != test_tag and i.subset in ("train", "")]
    split = _train_and_val(train_items, params, seed)
    test_items = [i for i in items if i.source == test_tag]
    to_render: ToRender = []
    if test_layout == "competition":
        split["query"], split["gallery"] = _given_test(test_items)
    elif test_layout == "domains":
        for person, imgs in _by_person(test_items).items():
            if {"photo", "render"} <= {i.domain for i in imgs}:
                split["query"] += [_entry(i) for i in imgs if i.domain == "photo"]
            split["gallery"] += [_entry(i) for i in imgs if i.domain == "render"]  # people without photos are distractors
    else:
        for k, (person, imgs) in enumerate(_by_person(test_items).items()):
            if len(imgs) >= 2:
                _one_domain_test(imgs, params, _rng(seed, 14, k), split, "", to_render)
    return split, to_render


def make_split(items: list[Item], layout: str, protocol: str, params: SplitParams, seed: int,
               test_layout: str = "", test_tag: str = "test") -> tuple[Split, ToRender]:
    """Return (split, to_render): to_render lists the gallery renders to draw, each from its `origin` photo.

    test_layout: the layout of a separate test source (its images tagged `test_tag`): cross-dataset."""
    if test_layout:
        split, to_render = cross_dataset_split(items, test_layout, params, seed, test_tag)
        protocol = "cross-dataset"
    elif layout == "competition":
        split, to_render = competition_split(items, params, seed), []
    elif protocol == "closed":
        split, to_render = closed_split(items, params, seed, two_domains=layout == "domains"), []
    else:
        split, to_render = open_split(items, params, seed, two_domains=layout == "domains")
    for part in ("query", "gallery"):
        if not split[part]:
            raise DataError(f"the {protocol} protocol left the test {part} empty ({layout} layout); add images or people per side")
    if not split["train"]:
        raise DataError(f"the {protocol} protocol left no training images ({layout} layout); add people")
    return split, to_render


def is_labelled(split: Split) -> bool:
    """True when every test query and gallery image has a person (ground truth to score against)."""
    return all(e.person for part in ("query", "gallery") for e in split[part])


def display_name(path: str) -> str:
    """The name a submission uses: relative to test/query or test/gallery for the competition layout."""
    for prefix in ("test/query/", "test/gallery/"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path
