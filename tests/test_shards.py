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


def test_rows_reads_any_rows_by_global_id_across_shards_without_reading_the_rest(tmp_path):
    rows = np.arange(23 * 4, dtype=np.float32).reshape(23, 4)
    with shards.ShardWriter(tmp_path / "gallery", rows_per_shard=10) as writer:
        writer.add(rows)
    lazy = shards.Rows(tmp_path / "gallery")
    ids = np.array([[22, 0, 10], [9, 11, 3]])  # 2-d, as re-rankers index candidates, crossing every shard boundary
    np.testing.assert_array_equal(lazy[ids], rows[ids])
    assert len(lazy) == 23 and lazy.dim == 4
    np.testing.assert_array_equal(np.asarray(lazy), rows)
    assert all(isinstance(p, np.memmap) for p in lazy.parts)  # memory-mapped: only the rows asked for are read


def test_aqe_over_lazy_rows_equals_aqe_over_the_whole_matrix(tmp_path):
    from styleid.inference.normalize import l2_normalize
    from styleid.search.rerank import RerankSettings, rerank_head

    rng = np.random.default_rng(0)
    gallery, queries = l2_normalize(rng.normal(size=(50, 8))), l2_normalize(rng.normal(size=(5, 8)))
    with shards.ShardWriter(tmp_path / "g", rows_per_shard=16) as writer:
        writer.add(gallery)
    ids = np.argsort(-(queries @ gallery.T), axis=1)[:, :20]
    scores = np.take_along_axis(queries @ gallery.T, ids, axis=1)
    for method in ("aqe", "kreciprocal", "kreciprocal_local"):
        whole = rerank_head(method, queries, gallery, ids, scores, 10, RerankSettings())
        lazy = rerank_head(method, queries, shards.Rows(tmp_path / "g"), ids, scores, 10, RerankSettings())
        np.testing.assert_array_equal(whole[0], lazy[0])
        np.testing.assert_allclose(whole[1], lazy[1], atol=1e-6)


def test_retrieve_reranks_per_query_in_blocks_with_the_same_result(monkeypatch):
    from styleid.inference.normalize import l2_normalize
    from styleid.params import RetrieveParams
    from styleid.search import index as faiss_index
    from styleid.search import retriever

    rng = np.random.default_rng(1)
    gallery, queries = l2_normalize(rng.normal(size=(60, 8))), l2_normalize(rng.normal(size=(25, 8)))
    index = faiss_index.build(gallery)
    for method in ("aqe", "kreciprocal_local"):
        monkeypatch.setattr(retriever, "QUERY_BLOCK", 1024)
        whole = retriever.retrieve(index, queries, 30, RetrieveParams(rerank=method, depth=20), lambda: gallery)
        monkeypatch.setattr(retriever, "QUERY_BLOCK", 7)  # blocks of 7, 7, 7 and 4 queries
        blocked = retriever.retrieve(index, queries, 30, RetrieveParams(rerank=method, depth=20), lambda: gallery)
        np.testing.assert_array_equal(whole[0], blocked[0])
        np.testing.assert_allclose(whole[1], blocked[1], atol=1e-6)
