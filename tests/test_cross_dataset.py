"""Several sources and a separate test source: tags, disjoint people, and who trains, validates and tests."""

import shutil
from collections import Counter

import pytest

from styleid.data.fetch import fetch, source_fingerprint
from styleid.data.splits import make_split
from styleid.data.synthetic import generate
from styleid.errors import DataError, ParamsError
from styleid.params import DataParams, SplitParams, params_from_dict


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """Two domains-layout datasets whose people share folder names (person_000, ...) but are other people."""
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    generate(a, seed=1, people=8, photos=2, renders=2, size=40)
    generate(b, seed=2, people=5, photos=2, renders=1, size=40)
    return a, b


def _fetch(tmp_path, **kw):
    return fetch(DataParams(**kw), seed=0, raw_dir=tmp_path / "raw", cache_dir=tmp_path / "cache")


def _people(split, part):
    return {e.person for e in split[part]}


def test_test_source_people_are_the_whole_test_and_never_merge_with_training_people(tmp_path, two_datasets):
    a, b = two_datasets
    result = _fetch(tmp_path, source=str(a), test_source=str(b))
    assert result.roots == {"s0": a, "test": b} and result.layouts == {"s0": "domains", "test": "domains"}
    assert Counter(i.source for i in result.items) == {"s0": 8 * 4, "test": 5 * 3}
    assert all(i.person.startswith(f"{i.source}:") for i in result.items)  # s0:person_000 is not test:person_000
    split, to_render = make_split(result.items, "domains", "open", SplitParams(), seed=1, test_layout="domains")
    assert _people(split, "query") == _people(split, "gallery") == {f"test:person_{k:03d}" for k in range(5)}
    assert len(split["query"]) == 10 and len(split["gallery"]) == 5 and not to_render
    assert all(e.domain == "photo" for e in split["query"]) and all(e.domain == "render" for e in split["gallery"])
    trained = _people(split, "train") | _people(split, "val_query")
    assert len(trained) == 8 and all(p.startswith("s0:") for p in trained)
    assert len(_people(split, "val_query")) == 2 and not _people(split, "val_query") & _people(split, "train")  # 8 x 0.25
    assert all(e.source == "test" for e in split["query"] + split["gallery"])


def test_photo_only_test_source_gets_galleries_in_the_test_styles(tmp_path, two_datasets):
    a, b = two_datasets
    photos_only = tmp_path / "lfw_like"
    shutil.copytree(b / "photos", photos_only)  # <person>/*: the people layout
    result = _fetch(tmp_path, source=str(a), test_source=str(photos_only))
    assert result.layouts["test"] == "people"
    params = SplitParams(test_styles=["sketch"])
    split, to_render = make_split(result.items, "domains", "open", params, seed=1, test_layout="people")
    assert len(split["query"]) == 5 and len(split["gallery"]) == 5 and len(to_render) == 5  # 1 of 2 photos each is rendered
    assert all(e.style == "sketch" and e.path.startswith("stylized/test:") for e in split["gallery"])
    assert all(out.origin.source == "test" for out in to_render)


def test_several_training_sources_keep_their_people_apart_unless_merged(tmp_path, two_datasets):
    a, b = two_datasets
    result = _fetch(tmp_path, source=[str(a), str(b)])
    assert len({i.person for i in result.items}) == 8 + 5
    merged = fetch(DataParams(source=[str(a), str(b)], merge_names=True), seed=0, raw_dir=tmp_path / "raw2", cache_dir=tmp_path / "c")
    assert len({i.person for i in merged.items}) == 8  # person_000..004 of b join a's people of the same name, on purpose
    split, _ = make_split(result.items, "domains", "open", SplitParams(), seed=1)
    assert sum(len(_people(split, p)) for p in ("train", "val_query", "query")) == 13


def test_source_lists_are_checked(two_datasets):
    a, b = two_datasets
    assert params_from_dict({"data": {"source": [str(a), str(b)]}}).data.sources == [str(a), str(b)]
    assert params_from_dict({"data": {"source": str(a)}}).data.sources == [str(a)]
    for bad, message in (([], "must not be empty"), ([str(a), str(a)], "twice")):
        with pytest.raises(ParamsError, match=message):
            params_from_dict({"data": {"source": bad}})
    with pytest.raises(ParamsError, match="data.test_source: is also a training source"):
        params_from_dict({"data": {"source": str(a), "test_source": str(a)}})


def test_synthetic_twice_is_refused_and_fingerprints_name_every_source(tmp_path, two_datasets):
    a, _ = two_datasets
    with pytest.raises(DataError, match="'synthetic' twice"):
        _fetch(tmp_path, source=["synthetic"], test_source="synthetic ")
    one = source_fingerprint(DataParams(source=str(a)), 0)
    cross = source_fingerprint(DataParams(source=str(a), test_source="synthetic"), 0)
    assert cross.startswith("s0=" + one) and ";test=synthetic:" in cross
