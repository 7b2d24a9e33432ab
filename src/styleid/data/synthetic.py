"""A deterministic generator of synthetic people: natural-looking photos and stylized renders.

Each person is a set of facial traits (face and chin shape, skin, hair style, colour and parting,
eye size and shape, brows, nose type, mouth, beard, glasses, moles, freckles, forehead lines): enough
of them, and enough of them shape rather than colour, that thousands of people stay tellable apart
in a pencil sketch. Photos draw those traits under a random pose with shading, a cluttered background and
sensor noise; renders draw the same traits, exaggerated like a caricature, as flat colours with
outlines, a pencil sketch or a posterized print. Identity survives the style change; pixels do not.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import hashlib
import io
import multiprocessing
from pathlib import Path

import numpy as np

from styleid.data.synthetic_faces import RENDER_STYLES, person_traits, render_photo, render_stylized

GENERATOR_FILES = (Path(__file__), Path(__file__).with_name("synthetic_faces.py"))  # fetch hashes them: a new generator is new data


def _reuse_freed_memory() -> None:
    """In a generator worker: glibc keeps freed blocks for reuse instead of unmapping every array over 128 KB, which
    the next image's arrays would then fault in again, zeroed (a quarter of the generation time; the bytes written are
    the same)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    for option, value in ((m_mmap_threshold, 256 << 20), (m_trim_threshold, 512 << 20), (m_top_pad, 64 << 20)):
        libc.mallopt(option, value)


Written = tuple[str, str, str, str, int, int]  # (relpath, person, domain, sha1 of the file, width, height)


def _write_person(root: Path, seed: int, p: int, folders: dict[str, str], photos: int, renders: int, size: int) -> list[Written]:
    person = f"person_{p:03d}"
    traits = person_traits(seed, p)
    rows = []
    for domain, count in (("photos", photos), ("renders", renders)):
        (root / folders[domain] / person).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            rng = np.random.default_rng([seed, p, 2 if domain == "photos" else 3, k])
            if domain == "photos":
                img = render_photo(traits, size, rng)
            else:
                img = render_stylized(traits, size, rng, RENDER_STYLES[(p + k) % len(RENDER_STYLES)])
            name = f"{folders[domain]}/{person}/{k:02d}.png"
            encoded = io.BytesIO()
            img.save(encoded, format="PNG", optimize=False)
            png = encoded.getvalue()
            (root / name).write_bytes(png)
            # what fetch's check would read back from the file (its hash and size), known here without decoding it again
            rows.append((name, person, "photo" if domain == "photos" else "render", hashlib.sha1(png).hexdigest(), *img.size))
    return rows


def generate(root: Path, seed: int, people: int, photos: int, renders: int, size: int, test_people: int = 0,
             workers: int = 1, test_photos: int = 1, test_renders: int = 1) -> list[tuple[str, str, str]]:
    """`generate_written` without the files' hashes and sizes: (relpath, person, domain) per image."""
    return [row[:3] for row in generate_written(root, seed, people, photos, renders, size, test_people, workers, test_photos, test_renders)]


def generate_written(root: Path, seed: int, people: int, photos: int, renders: int, size: int, test_people: int = 0,
                     workers: int = 1, test_photos: int = 1, test_renders: int = 1) -> list[Written]:
    """Write `root/photos/<person>/*.png` and `root/renders/<person>/*.png`; return (relpath, person, domain, sha1, width, height).

    With `test_people`, the competition layout instead: the `people` as train/photos/ and
    train/renders/, and `test_people` more (never seen in training) as test/query/<person>/ (photos)
    and test/gallery/<person>/ (renders), with `test_photos` and `test_renders` each. Every image is seeded by (seed, person, domain, k), so
    `workers` processes write the same bytes as one. Each row also carries the SHA-1 and size of what was written.
    """
    def folders(p: int) -> dict[str, str]:
        if not test_people:
            return {"photos": "photos", "renders": "renders"}
        return {"photos": "train/photos", "renders": "train/renders"} if p < people else {"photos": "test/query", "renders": "test/gallery"}

    def counts(p: int) -> tuple[int, int]:
        return (photos, renders) if p < people or not test_people else (test_photos, test_renders)

    jobs = [(root, seed, p, folders(p), *counts(p), size) for p in range(people + test_people)]
    if workers > 1 and len(jobs) > 1:
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_reuse_freed_memory) as pool:
            per_person = list(pool.map(_write_person, *zip(*jobs), chunksize=8))
    else:
        per_person = [_write_person(*job) for job in jobs]
    return [row for rows in per_person for row in rows]
