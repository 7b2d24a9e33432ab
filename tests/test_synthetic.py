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
    rows = generate(synthetic_root.parent / "sep", seed=3, people=8, photos=3, renders=3, size=64)
    people, photos = _pixels(synthetic_root.parent / "sep", rows, "photo")
    # nearest photo of another picture of the same person beats chance (1/8) by far, even on raw pixels
    d = ((photos[:, None] - photos[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    hits = np.mean([people[i] == people[j] for i, j in enumerate(d.argmin(1))])
    assert hits > 0.4


def test_generator_writes_the_same_bytes_with_several_workers(tmp_path):
    one = generate(tmp_path / "one", seed=4, people=3, photos=2, renders=1, size=40, test_people=2)
    two = generate(tmp_path / "two", seed=4, people=3, photos=2, renders=1, size=40, test_people=2, workers=2)
    assert one == two
    assert all((tmp_path / "one" / r).read_bytes() == (tmp_path / "two" / r).read_bytes() for r, _, _ in one)
