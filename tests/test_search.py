import faiss
import numpy as np
import pytest

from styleid.errors import ParamsError
from styleid.inference.normalize import l2_normalize
from styleid.search import index as faiss_index


def _vectors(n, d=32, seed=0):
    return l2_normalize(np.random.default_rng(seed).normal(size=(n, d)))


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF8,Flat"])
def test_index_finds_each_vector_itself(factory, tmp_path):
    gallery = _vectors(400)
    index = faiss_index.build(gallery, factory, seed=1)
    faiss_index.set_search_params(index, nprobe=8, ef_search=64)
    faiss_index.save(index, tmp_path / "g")
    scores, ids = faiss_index.search(faiss_index.load(tmp_path / "g"), gallery[:50], 3)
    assert (ids[:, 0] == np.arange(50)).mean() > 0.95
    assert np.all(scores[:, 0] >= scores[:, 1])


def test_bad_factory_string_is_a_params_error():
    with pytest.raises(ParamsError, match="index.factory: 'Flot'"):
        faiss_index.build(_vectors(10), "Flot")


def _split(vectors, sizes):
    return np.split(vectors, np.cumsum(sizes)[:-1])


@pytest.mark.parametrize("factory", ["Flat", "IVF8,Flat", "IVF8,PQ4x4"])  # PQ4x4: 16-centroid codebooks, quick to train
def test_shards_merged_equal_one_index_built_in_one_go(factory):
    gallery = _vectors(600, seed=2)
    queries = _vectors(40, seed=3)
    whole = faiss_index.build(gallery, factory, seed=1)
    merged = faiss_index.build_sharded(_split(gallery, [250, 100, 250]), factory, seed=1, shards=3, merge=True)
    assert len(merged) == 1 and merged[0].ntotal == 600
    for index in (whole, merged[0]):
        faiss_index.set_search_params(index, nprobe=4, ef_search=64)
    want, got = faiss_index.search(whole, queries, 10), faiss_index.search(merged[0], queries, 10)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF8,Flat"])
def test_index_shards_search_with_global_ids(factory, tmp_path):
    gallery = _vectors(500, seed=4)
    parts = faiss_index.build_sharded(_split(gallery, [120, 380]), factory, seed=1, shards=4, merge=False)
    assert [p.ntotal for p in parts] == [125, 125, 125, 125]
    faiss_index.save(parts, tmp_path / "idx")
    assert sorted(f.name for f in (tmp_path / "idx").iterdir()) == [".styleid.json"] + [f"part-00{i}.faiss" for i in range(4)]
    loaded = faiss_index.load(tmp_path / "idx")
    assert loaded.ntotal == 500
    faiss_index.set_search_params(loaded, nprobe=8, ef_search=128)
    if factory.startswith("IVF"):
        assert all(faiss.extract_index_ivf(loaded.at(i)).nprobe == 8 for i in range(loaded.count()))
    scores, ids = faiss_index.search(loaded, gallery, 1)
    assert (ids[:, 0] == np.arange(500)).mean() > 0.97  # every vector found as itself, ids global across shards
    if factory == "Flat":
        exact = faiss_index.search(faiss_index.build(gallery, "Flat"), gallery[:30], 5)
        np.testing.assert_array_equal(faiss_index.search(loaded, gallery[:30], 5)[1], exact[1])


def test_unmergeable_factory_and_too_many_shards_are_params_errors():
    with pytest.raises(ParamsError, match="index.merge: FAISS cannot merge 'HNSW16'.*index.merge: false"):
        faiss_index.build_sharded([_vectors(100)], "HNSW16", shards=2, merge=True)
    with pytest.raises(ParamsError, match="index.shards: 200 shards for 100"):
        faiss_index.build_sharded([_vectors(100)], "Flat", shards=200)


def test_ivf_trains_on_a_seeded_sample_when_the_gallery_is_large(monkeypatch):
    monkeypatch.setattr(faiss_index, "TRAIN_ROWS", 300)
    parts = _split(_vectors(1000, seed=5), [400, 600])
    sample_a = faiss_index._training_sample(parts, 1000, seed=1)
    sample_b = faiss_index._training_sample(parts, 1000, seed=1)
    assert sample_a.shape == (300, 32)
    np.testing.assert_array_equal(sample_a, sample_b)
    index = faiss_index.build_sharded(parts, "IVF8,Flat", seed=1, shards=2)[0]
    assert index.ntotal == 1000
