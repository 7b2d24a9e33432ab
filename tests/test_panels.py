"""Qualitative panels: frames follow the ranking's hits and misses; unlabelled rankings get neutral frames."""

from __future__ import annotations

from PIL import Image

from styleid.panels import FRAME, HIT, MISS, NEUTRAL, TILE, frame_pixel, make_panel


def _images(tmp_path, n):
    paths = []
    for k in range(n):
        path = tmp_path / f"{k}.png"
        Image.new("RGB", (40 + k, 60), (20 * k, 100, 200)).save(path)
        paths.append(path)
    return paths


def test_hits_are_green_and_misses_red(tmp_path):
    query, *results = _images(tmp_path, 11)
    hits = [True, False, False, True, False, True, False, False, False, True]
    panel = make_panel(query, results, hits)
    cell = TILE + 2 * FRAME
    assert panel.height >= cell and panel.width >= 11 * cell
    assert [frame_pixel(panel, k) for k in range(10)] == [HIT if h else MISS for h in hits]


def test_unlabelled_results_get_neutral_frames(tmp_path):
    query, *results = _images(tmp_path, 4)
    panel = make_panel(query, results, [None] * 3)
    assert {frame_pixel(panel, k) for k in range(3)} == {NEUTRAL}


def test_an_unreadable_result_is_a_blank_tile_not_a_crash(tmp_path):
    query, good = _images(tmp_path, 2)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    panel = make_panel(query, [good, bad], [True, False])
    assert frame_pixel(panel, 1) == MISS
