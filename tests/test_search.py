import numpy as np
import pytest

from styleid.errors import ParamsError
from styleid.search import index as faiss_index


def _vectors(n, d=32, seed=0):
    return faiss_index.l2_normalize(np.random.default_rng(seed).normal(size=(n, d)))


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF8,Flat"])
def test_index_finds_each_vector_itself(factory, tmp_path):
    gallery = _vectors(400)
    index = faiss_index.build(gallery, factory, seed=1)
    faiss_index.set_search_params(index, nprobe=8, ef_search=64)
    faiss_index.save(index, tmp_path / "g.faiss")
    scores, ids = faiss_index.search(faiss_index.load(tmp_path / "g.faiss"), gallery[:50], 3)
    assert (ids[:, 0] == np.arange(50)).mean() > 0.95
    assert np.all(scores[:, 0] >= scores[:, 1])


def test_bad_factory_string_is_a_params_error():
    with pytest.raises(ParamsError, match="index.factory: 'Flot'"):
        faiss_index.build(_vectors(10), "Flot")
