import numpy as np
import pytest

from styleid import shards
from styleid.errors import StyleidError


def test_rows_are_split_into_numbered_shards_and_read_back_in_order(tmp_path):
    rows = np.arange(23 * 4, dtype=np.float32).reshape(23, 4)
    with shards.ShardWriter(tmp_path / "gallery", rows_per_shard=10) as writer:
        for block in np.split(rows, [3, 4, 15]):  # blocks of any size
            writer.add(block)
    files = [f.name for f in shards.shard_files(tmp_path / "gallery")]
    assert files == ["shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    assert [len(s) for s in shards.iter_shards(tmp_path / "gallery")] == [10, 10, 3]
    np.testing.assert_array_equal(shards.read(tmp_path / "gallery"), rows)
    assert shards.count(tmp_path / "gallery") == 23


def test_an_empty_part_is_one_empty_shard(tmp_path):
    with shards.ShardWriter(tmp_path / "query", rows_per_shard=10):
        pass
    assert shards.read(tmp_path / "query").shape[0] == 0


def test_a_failed_write_keeps_the_previous_shards(tmp_path):
    with shards.ShardWriter(tmp_path / "g", rows_per_shard=2) as writer:
        writer.add(np.ones((3, 2)))
    with pytest.raises(RuntimeError):
        with shards.ShardWriter(tmp_path / "g", rows_per_shard=2) as writer:
            writer.add(np.zeros((5, 2)))
            raise RuntimeError("killed")
    np.testing.assert_array_equal(shards.read(tmp_path / "g"), np.ones((3, 2)))
    assert [p.name for p in tmp_path.iterdir()] == ["g"]  # no temporary folder left behind


def test_missing_shards_and_mixed_widths_are_clear_errors(tmp_path):
    with pytest.raises(StyleidError, match="no embedding shards; run `dvc repro embed`"):
        shards.read(tmp_path / "nothing")
    with pytest.raises(ValueError, match="width 3 after rows of width 2"):
        with shards.ShardWriter(tmp_path / "g", rows_per_shard=4) as writer:
            writer.add(np.ones((1, 2)))
            writer.add(np.ones((1, 3)))
