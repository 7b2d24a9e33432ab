"""Every renderer (test galleries, training augmentation): seeded, size-keeping, and a real change of style."""

import numpy as np
import pytest
from PIL import Image

from styleid.data.stylize import RENDERERS, stylize


def _photo(width: int = 90, height: int = 110) -> Image.Image:
    """A face-like photo: a gradient background, a skin ellipse with dark eyes and mouth, sensor noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    arr = np.stack([120 + 80 * xx, 90 + 60 * yy, 150 - 50 * xx], -1)
    face = ((xx - 0.4) / 0.25) ** 2 + ((yy - 0.5) / 0.33) ** 2 < 1
    arr[face] = (200, 160, 140)
    for cx, cy, r in ((0.32, 0.42, 0.04), (0.48, 0.42, 0.04), (0.4, 0.65, 0.06)):
        arr[(xx - cx) ** 2 + (yy - cy) ** 2 < r**2] = (40, 30, 30)
    return Image.fromarray(np.clip(arr + rng.normal(0, 6, arr.shape), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("style", sorted(RENDERERS))
def test_renderer_is_seeded_keeps_the_size_and_changes_the_style(style):
    photo = _photo()
    a = stylize(photo, style, np.random.default_rng(3))
    b = stylize(photo, style, np.random.default_rng(3))
    assert a.size == photo.size and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.abs(np.asarray(a, float) - np.asarray(photo, float)).mean() > 8  # not the photo with a little noise


@pytest.mark.parametrize("style", ["hatching", "ink", "palette"])
def test_drawing_renderers_keep_where_the_face_is(style):
    """The dark features (eyes, mouth) stay dark in the drawing: identity lives in where things are."""
    photo = _photo()
    drawn = np.asarray(stylize(photo, style, np.random.default_rng(5)).convert("L"), float)
    gray = np.asarray(photo.convert("L"), float)
    features, face = gray < 60, (gray > 150) & (gray < 190)
    assert drawn[features].mean() < drawn[face].mean() - 20
