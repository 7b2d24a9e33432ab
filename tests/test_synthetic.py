import numpy as np
from PIL import Image

from styleid.data.synthetic import generate


def _pixels(root, rows, domain):
    picked = [(r[1], np.asarray(Image.open(root / r[0]).convert("RGB").resize((24, 24)), float).ravel()) for r in rows if r[2] == domain]
    return [p for p, _ in picked], np.stack([v for _, v in picked])


def test_generator_is_deterministic(tmp_path):
    a = generate(tmp_path / "a", seed=5, people=3, photos=2, renders=2, size=48)
    b = generate(tmp_path / "b", seed=5, people=3, photos=2, renders=2, size=48)
    assert a == b
    for rel, _, _ in a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    c = generate(tmp_path / "c", seed=6, people=3, photos=2, renders=2, size=48)
    assert (tmp_path / "c" / c[0][0]).read_bytes() != (tmp_path / "a" / a[0][0]).read_bytes()


def _flat_share(path) -> float:
    """Share of pixels with the image's most common colour: large for flat renders, tiny for noisy photos."""
    arr = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    _, counts = np.unique(arr, axis=0, return_counts=True)
    return counts.max() / len(arr)


def test_domains_clearly_differ(synthetic_root):
    photos = [_flat_share(p) for p in (synthetic_root / "photos").rglob("*.png")]
    renders = [_flat_share(p) for p in (synthetic_root / "renders").rglob("*.png")]
    assert max(photos) < 0.05 < 0.15 < min(renders)


def test_identities_are_separable(synthetic_root):
    # the nearest photo of each photo shows the same person far more often than chance (2 of 23 others),
    # even on raw pixels where the random backgrounds dominate; averaged over seeds, as one draw of 8 people is noisy
    rates = []
    for seed in range(4):
        rows = generate(synthetic_root.parent / f"sep{seed}", seed=seed, people=8, photos=3, renders=3, size=64)
        people, photos = _pixels(synthetic_root.parent / f"sep{seed}", rows, "photo")
        d = ((photos[:, None] - photos[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        rates.append(np.mean([people[i] == people[j] for i, j in enumerate(d.argmin(1))]))
    assert np.mean(rates) > 3 * 2 / 23, rates


def test_generator_writes_the_same_bytes_with_several_workers(tmp_path):
    one = generate(tmp_path / "one", seed=4, people=3, photos=2, renders=1, size=40, test_people=2)
    two = generate(tmp_path / "two", seed=4, people=3, photos=2, renders=1, size=40, test_people=2, workers=2)
    assert one == two
    assert all((tmp_path / "one" / r).read_bytes() == (tmp_path / "two" / r).read_bytes() for r, _, _ in one)


def test_test_people_get_their_own_image_counts(tmp_path):
    rows = generate(tmp_path, seed=4, people=3, photos=2, renders=2, size=40, test_people=2, test_photos=1, test_renders=3)
    per_folder: dict[str, int] = {}
    for rel, person, _ in rows:
        key = rel.rsplit("/", 2)[0] + ":" + person
        per_folder[key] = per_folder.get(key, 0) + 1
    assert per_folder["train/photos:person_000"] == 2 and per_folder["train/renders:person_002"] == 2
    assert per_folder["test/query:person_003"] == 1 and per_folder["test/gallery:person_004"] == 3
    assert not any(k.startswith("test/") and k.endswith(("person_000", "person_002")) for k in per_folder)


def test_photo_background_is_the_two_dimensional_gaussian_blend():
    """The separable blobs draw what the direct 2-D formula draws (the same bytes: the generator's data did not change)."""
    from styleid.data.synthetic_faces import _photo_background

    def direct(rng, size):
        yy, xx = np.mgrid[0:size, 0:size] / size
        c0, c1 = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
        a = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(a) * xx + np.sin(a) * yy)[..., None]
        arr = c0 + (c1 - c0) * (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
        for _ in range(int(rng.integers(3, 8))):
            bx, by, br = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25)
            mask = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * br**2))[..., None]
            arr = arr * (1 - mask) + rng.uniform(0, 255, 3) * mask
        return np.clip(arr, 0, 255).astype(np.uint8)

    for seed in range(20):
        fast = np.asarray(_photo_background(np.random.default_rng(seed), 64)).astype(int)
        assert np.abs(fast - direct(np.random.default_rng(seed), 64)).max() <= 1


def test_worker_processes_write_the_same_bytes(tmp_path):
    one = generate(tmp_path / "one", seed=3, people=4, photos=1, renders=1, size=40)
    two = generate(tmp_path / "two", seed=3, people=4, photos=1, renders=1, size=40, workers=2)
    assert one == two
    assert all((tmp_path / "one" / r).read_bytes() == (tmp_path / "two" / r).read_bytes() for r, _, _ in one)


def test_written_hashes_and_sizes_are_what_fetch_would_read_back(tmp_path):
    """fetch takes a generated image's hash and size from the generator instead of decoding the file again: the two agree."""
    from styleid.data.fetch import scan_and_check
    from styleid.data.synthetic import generate_written
    from styleid.hashing import file_digest
    from styleid.images import check_image

    rows = generate_written(tmp_path / "ds", seed=4, people=3, photos=2, renders=1, size=40, test_people=2, workers=2)
    for rel, _, _, sha1, width, height in rows:
        assert (sha1, (width, height)) == (file_digest(tmp_path / "ds" / rel, "sha1"), check_image(tmp_path / "ds" / rel))
    written = {rel: (sha1, width, height) for rel, _, _, sha1, width, height in rows}
    decoded = scan_and_check(tmp_path / "ds", "auto", 0.0)
    assert scan_and_check(tmp_path / "ds", "auto", 0.0, written=written).items == decoded.items and len(decoded.items) == len(rows)
