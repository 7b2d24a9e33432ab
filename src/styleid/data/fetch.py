"""The fetch step: materialise the source, recognise its layout, and check every image once."""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from styleid.data import layouts, sources, synthetic
from styleid.data.manifest import TEST, Item
from styleid.errors import DataError
from styleid.fileio import atomic_dir
from styleid.hashing import file_digest
from styleid.images import BadImage, check_image
from styleid.params import DataParams

log = logging.getLogger(__name__)


@dataclass
class FetchResult:
    root: Path  # the folder the manifest's paths are relative to (the first source's)
    layout: str
    items: list[Item]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    roots: dict[str, Path] = field(default_factory=dict)  # per source tag (see tagged_sources)
    layouts: dict[str, str] = field(default_factory=dict)


def tagged_sources(data: DataParams) -> list[tuple[str, str]]:
    """(tag, source) pairs: one source alone is tagged "", several are s0, s1, ..., and data.test_source is test."""
    sources_ = data.sources
    if len(sources_) == 1 and not data.test_source:
        return [("", sources_[0])]
    return [(f"s{k}", s) for k, s in enumerate(sources_)] + ([(TEST, data.test_source)] if data.test_source else [])


def sha256_of(data: DataParams, source: str) -> str:
    """data.sha256 checks the first source only (the one archive of a one-source run)."""
    return data.sha256 if source == data.sources[0] else ""


def _fingerprint_one(source: str, data: DataParams, seed: int) -> str:
    src = sources.classify(source)
    if src.kind == "synthetic":
        s = data.synthetic
        code = hashlib.sha1(b"".join(f.read_bytes() for f in synthetic.GENERATOR_FILES)).hexdigest()[:12]  # new generator, new data
        return f"synthetic:{code}:{seed}:{s.people}:{s.test_people}:{s.photos}:{s.renders}:{s.test_photos}:{s.test_renders}:{s.image_size}"
    return sources.fingerprint(src, sha256_of(data, source)) + f":{data.layout}:{data.max_bad_fraction}"


def source_fingerprint(data: DataParams, seed: int) -> str:
    parts = [f"{tag}={_fingerprint_one(source, data, seed)}" if tag else _fingerprint_one(source, data, seed)
             for tag, source in tagged_sources(data)]
    return ";".join(parts) + (":merge" if data.merge_names else "")


Generated = dict[str, tuple[str, int, int]]  # relpath -> (sha1, width, height) of images this run generated itself


def materialise(source: str, data: DataParams, seed: int, raw_dir: Path, cache_dir: Path, tag: str = "") -> tuple[Path, Generated]:
    """Return a local folder holding the source's images (generated, extracted or in place), and what is already known
    of the images this run generated (their checks need no second decoding)."""
    src = sources.classify(source)
    named = lambda what: raw_dir / (f"{tag}-{what}" if tag else what)  # noqa: E731
    if src.kind == "folder":
        return Path(src.location), {}
    if src.kind == "synthetic":
        s = data.synthetic
        target = named("synthetic")
        with atomic_dir(target, "synthetic") as tmp:
            rows = synthetic.generate_written(tmp, seed, s.people, s.photos, s.renders, s.image_size, s.test_people,
                                              workers=os.cpu_count() or 1, test_photos=s.test_photos, test_renders=s.test_renders)
        return target, {rel: (sha1, width, height) for rel, _, _, sha1, width, height in rows}
    sha256 = sha256_of(data, source)
    target = named("extracted")
    if src.kind == "archive":
        sources.materialise_archive(Path(src.location), target, sha256, data.max_archive_bytes, data.max_archive_members)
    else:
        sources.fetch_archive(src, cache_dir, sha256, target, data.max_archive_bytes, data.max_archive_members, data.download_min_rate,
                              data.download_deadline)
    return target, {}


def _check(root: Path, entry: layouts.Entry) -> Item | tuple[str, str]:
    rel, person, domain, subset = entry
    path = root / rel
    try:
        if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
            log.info("following link %s -> %s", rel, path.resolve())
        width, height = check_image(path)
        return Item(rel, person, domain, subset, file_digest(path, "sha1"), width, height)
    except BadImage as exc:
        return rel, str(exc)
    except OSError as exc:
        return rel, f"unreadable ({exc.strerror or exc})"


def scan_and_check(root: Path, layout: str, max_bad_fraction: float, workers: int = 4, written: Generated | None = None) -> FetchResult:
    """List the dataset's images, decode each once, and skip (with a logged reason) what is unusable. `written`: images
    this run generated from pixels in memory (hash and size known), taken as they are."""
    root, unwrapped = layouts.unwrap(root), root
    layout, entries = layouts.scan(root, layout)
    known = {(unwrapped / rel).relative_to(root).as_posix(): check for rel, check in (written or {}).items()}

    def check(entry: layouts.Entry) -> Item | tuple[str, str]:
        if entry[0] in known:
            return Item(*entry, *known[entry[0]])
        return _check(root, entry)

    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(check, entries), total=len(entries), desc="fetch: checking images", leave=False))
    items = [r for r in results if isinstance(r, Item)]
    skipped = [r for r in results if not isinstance(r, Item)]
    for rel, reason in skipped:
        log.warning("skipped %s: %s", root / rel, reason)
    if len(skipped) > max_bad_fraction * len(entries):
        example = f"{root / skipped[0][0]}: {skipped[0][1]}"
        raise DataError(f"{root}: {len(skipped)} of {len(entries)} images are unusable (more than data.max_bad_fraction="
                        f"{max_bad_fraction}), e.g. {example}; fix or remove them, or raise data.max_bad_fraction")
    if not items:
        raise DataError(f"{root}: no usable images; {layouts.FIX}")
    return FetchResult(root, layout, items, skipped)


def check_distinct(tagged: list[tuple[str, str]]) -> None:
    """No source twice under two spellings (D and D/./, a link to D, a trailing slash), and no test source that is, holds
    or lies inside a training source: compared by real path, so the test people are never trained on by accident."""
    seen: dict[str, tuple[str, str]] = {}
    for tag, source in tagged:
        src = sources.classify(source)
        if src.kind == "synthetic":
            continue
        key = os.path.realpath(src.location) if src.kind in ("folder", "archive") else src.location.rstrip("/")
        for other_key, (other_tag, other) in seen.items():
            nested = src.kind == "folder" and (Path(key).is_relative_to(other_key) or Path(other_key).is_relative_to(key))
            if key == other_key or (nested and TEST in (tag, other_tag)):
                what = "data.test_source" if TEST in (tag, other_tag) else "data.source"
                how = "the same place as" if key == other_key else "inside or around"
                raise DataError(f"{what}: {source} is {how} {other} ({key}); "
                                f"{'test on data you do not train on' if what == 'data.test_source' else 'list each source once'}")
        seen[key] = (tag, source)


def fetch(data: DataParams, seed: int, raw_dir: Path, cache_dir: Path) -> FetchResult:
    """Every source, materialised and checked; with several, each image is tagged with its source and
    each person's name with the tag too (s0:ann, test:ann), so people of two sources never merge by
    accident (data.merge_names merges the training sources' people on purpose)."""
    tagged = tagged_sources(data)
    check_distinct(tagged)
    if sum(sources.classify(s).kind == "synthetic" for _, s in tagged) > 1:
        raise DataError("data.source / data.test_source: 'synthetic' twice would be the same people; use it once")
    results = {}
    for tag, source in tagged:
        root, written = materialise(source, data, seed, raw_dir, cache_dir, tag)
        results[tag] = scan_and_check(root, data.layout if tag != TEST else "auto", data.max_bad_fraction, written=written)
    first = results[tagged[0][0]]
    if len(results) == 1:
        return FetchResult(first.root, first.layout, first.items, first.skipped, {"": first.root}, {"": first.layout})

    def person(tag: str, name: str) -> str:
        return name if not name or (data.merge_names and tag != TEST) else f"{tag}:{name}"

    items = [replace(i, person=person(tag, i.person), source=tag) for tag, r in results.items() for i in r.items]
    if TEST in results:
        trained = {i.person for tag, r in results.items() if tag != TEST for i in r.items}
        same = sorted({i.person for i in results[TEST].items if i.person} & trained)
        if same:
            log.warning("fetch: %d test people share a folder name with training people (e.g. %s); if they are the same "
                        "people, the test is not of unseen people", len(same), same[0])
    skipped = [(f"{tag}:{rel}", why) for tag, r in results.items() for rel, why in r.skipped]
    return FetchResult(first.root, first.layout, items, skipped, {t: r.root for t, r in results.items()},
                       {t: r.layout for t, r in results.items()})
