"""Frozen features kept by image content and model identity: read back, never computed twice, never mixed up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_image

from styleid.inference.feature_cache import FeatureCache, model_key


def _rows_of(paths):
    return np.stack([np.frombuffer(p.read_bytes()[-64:], np.uint8).astype(np.float32)[:8] for p in paths])


def test_rows_are_computed_once_per_content_and_read_back(tmp_path):
    files = [write_image(tmp_path / "img" / f"{k}.png", k) for k in range(4)]
    (tmp_path / "img" / "same_as_0.png").write_bytes(files[0].read_bytes())  # the same content under another name
    files.append(tmp_path / "img" / "same_as_0.png")
    computed: list[int] = []
    cache = FeatureCache(tmp_path / "cache", "model-a")
    first = cache.rows(files, lambda paths: computed.append(len(paths)) or _rows_of(paths))
    assert computed == [4] and (cache.hits, cache.misses) == (1, 4)  # five files, four contents
    again = FeatureCache(tmp_path / "cache", "model-a").rows(files, lambda paths: pytest.fail("computed again"))
    assert np.array_equal(first, again) and np.array_equal(first[0], first[4])
    other = FeatureCache(tmp_path / "cache", "model-b").rows(files[:1], lambda paths: np.zeros((len(paths), 8), np.float32))
    assert not other.any()  # another model never reads model-a's rows


def test_a_damaged_cached_row_is_computed_again(tmp_path):
    files = [write_image(tmp_path / "a.png", 1)]
    cache = FeatureCache(tmp_path / "cache", "m")
    cache.rows(files, _rows_of)
    next((tmp_path / "cache" / "m").rglob("*.npy")).write_bytes(b"cut")
    assert np.array_equal(FeatureCache(tmp_path / "cache", "m").rows(files, _rows_of), _rows_of(files))


def test_the_model_key_follows_the_weights_and_the_settings():
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    same = torch.nn.Linear(3, 2)
    same.load_state_dict(a.state_dict())
    assert model_key(a, "x") == model_key(same, "x") != model_key(a, "y")
    with torch.no_grad():
        same.weight[0, 0] += 1e-3
    assert model_key(same, "x") != model_key(a, "x")
