"""`styleid compare`: the gain of one run over another on the same test set, with its paired interval."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from styleid.cli import app
from styleid.errors import StyleidError
from styleid.paired_comparison import compare, headroom, ideal, load_run

PEOPLE = 40


def _write_run(root, right_at_1: set[int], query_order=None, gallery_order=None):
    """A finished run: one photo and one render per person; person p's query ranks its render first when p is in right_at_1."""
    query_order = list(range(PEOPLE)) if query_order is None else query_order
    gallery_order = list(range(PEOPLE)) if gallery_order is None else gallery_order
    row_of = {p: i for i, p in enumerate(gallery_order)}
    ids = []
    for p in query_order:
        wrong = [row_of[o] for o in range(PEOPLE) if o != p][:10]
        ids.append([row_of[p]] + wrong[:9] if p in right_at_1 else wrong)
    (root / "data" / "embeddings").mkdir(parents=True)
    np.savez(root / "data" / "retrieved.npz", ids=np.array(ids), scores=np.zeros((PEOPLE, 10)), ms_per_query=0.1)
    (root / "data" / "embeddings" / "query.json").write_text(json.dumps([{"name": f"photos/{p}.jpg", "person": f"p{p}", "file": "x"} for p in query_order]))
    (root / "data" / "embeddings" / "gallery.json").write_text(json.dumps([{"name": f"renders/{p}.jpg", "person": f"p{p}", "file": "y"} for p in gallery_order]))
    return root


def test_a_clear_gain_is_beyond_the_noise_and_no_gain_is_within_it(tmp_path):
    base = load_run(_write_run(tmp_path / "a", set(range(10))))
    better = load_run(_write_run(tmp_path / "b", set(range(30))))
    result = compare(base, better)
    assert (result.base_value, result.other_value) == (250.0, 750.0) and result.gain == 500.0
    assert 0 < result.gain_low < 500 < result.gain_high and result.verdict == "better beyond the noise"
    assert compare(better, base).verdict == "worse beyond the noise"
    same = compare(base, load_run(_write_run(tmp_path / "c", set(range(1, 11)))))  # as many right, other people
    assert same.gain == 0 and same.gain_low < 0 < same.gain_high and same.verdict == "within the noise"
    # a gain of zero can hide changes: one person fixed and another broken
    assert (result.better, result.worse, result.first_fixed, result.first_broken) == (20, 0, 20, 0)
    assert (same.better, same.worse, same.first_fixed, same.first_broken) == (1, 1, 1, 1)
    assert (result.n_queries, result.n_people) == (PEOPLE, PEOPLE)


def test_runs_listing_queries_and_gallery_in_another_order_are_matched_by_name(tmp_path):
    base = load_run(_write_run(tmp_path / "a", set(range(10))))
    shuffled = load_run(_write_run(tmp_path / "b", set(range(10)), query_order=list(range(PEOPLE))[::-1],
                                   gallery_order=list(np.random.default_rng(0).permutation(PEOPLE))))
    result = compare(base, shuffled)
    assert result.gain == 0 and result.gain_low == result.gain_high == 0


def test_different_test_sets_and_unfinished_runs_are_refused_with_one_line(tmp_path):
    base = load_run(_write_run(tmp_path / "a", set(range(10))))
    other = _write_run(tmp_path / "b", set(range(10)))
    gallery = json.loads((other / "data/embeddings/gallery.json").read_text())
    (other / "data/embeddings/gallery.json").write_text(json.dumps(gallery[:-1]))
    with pytest.raises(StyleidError, match="differ from"):
        compare(base, load_run(other))
    with pytest.raises(StyleidError, match=r"retrieved.npz: missing; run `dvc repro`"):
        load_run(tmp_path / "nothing")


def test_the_command_prints_the_gain_and_writes_json(tmp_path):
    _write_run(tmp_path / "a", set(range(10)))
    _write_run(tmp_path / "b", set(range(30)))
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(tmp_path / "gain.json")])
    assert out.exit_code == 0, out.output
    assert "= +500.0" in out.output and "better beyond the noise" in out.output and "40 queries of 40 people" in out.output
    assert "20 queries better, 0 worse (first result: 20 fixed, 0 broken)" in out.output
    saved = json.loads((tmp_path / "gain.json").read_text())
    assert saved["gain"] == 500.0 and saved["verdict"] == "better beyond the noise"
    missing = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "missing; run `dvc repro`" in missing.output and "Traceback" not in missing.output


def test_people_renamed_by_source_tags_still_match_but_regrouped_people_do_not(tmp_path):
    base = load_run(_write_run(tmp_path / "a", set(range(10))))
    tagged = _write_run(tmp_path / "b", set(range(20)))
    for part in ("query", "gallery"):
        path = tagged / f"data/embeddings/{part}.json"
        path.write_text(json.dumps([{**e, "person": "s0:" + e["person"]} for e in json.loads(path.read_text())]))
    assert compare(base, load_run(tagged)).gain == 250.0  # 10 more of 40 people right at 1: a quarter of 1000
    merged = _write_run(tmp_path / "c", set(range(10)))
    path = merged / "data/embeddings/gallery.json"
    path.write_text(json.dumps([{**e, "person": "p0" if e["person"] == "p1" else e["person"]} for e in json.loads(path.read_text())]))
    with pytest.raises(StyleidError, match="other people"):
        compare(base, load_run(merged))


def test_the_mAP_gain_is_paired_too_and_an_unknown_measure_is_refused(tmp_path):
    _write_run(tmp_path / "a", set(range(10)))
    _write_run(tmp_path / "b", set(range(30)))
    result = compare(load_run(tmp_path / "a"), load_run(tmp_path / "b"), measure="mAP")  # one render a person: AP 1 when first, else 0 here
    assert (result.base_value, result.other_value, result.gain, result.measure) == (0.25, 0.75, 0.5, "mAP")
    assert 0 < result.gain_low < 0.5 < result.gain_high and result.verdict == "better beyond the noise"
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--measure", "mAP"])
    assert out.exit_code == 0 and "mAP 0.750 - 0.250 = +0.500" in out.output, out.output
    saved = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--measure", "mAP", "--json", str(tmp_path / "m.json")])
    assert saved.exit_code == 0 and json.loads((tmp_path / "m.json").read_text())["other_value"] == 0.75  # named for any measure, not score_*
    bad = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--measure", "ndcg"])
    assert bad.exit_code != 0 and "measure 'ndcg': unknown; use one of score, mAP" in bad.output and "Traceback" not in bad.output


def test_the_ideal_ranking_puts_every_right_image_first_and_keeps_the_rest(tmp_path):
    base = load_run(_write_run(tmp_path / "a", set(range(10))))
    best = ideal(base)
    assert compare(base, best).other_value == 1000.0
    assert (best.ids[:10] == base.ids[:10]).all()  # already right: untouched
    assert list(best.ids[10][1:]) == list(base.ids[10][:9])  # the wrong ones follow in base's order
    only = ideal(base, np.array([10]))
    assert compare(base, only).gain == 25.0 and (only.ids[11:] == base.ids[11:]).all()


def test_headroom_says_when_no_model_could_show_a_gain(tmp_path):
    near_ceiling = headroom(load_run(_write_run(tmp_path / "a", set(range(PEOPLE - 1)))))
    assert near_ceiling.misses == 1 and near_ceiling.perfect.gain == 25.0
    assert near_ceiling.perfect.verdict == "within the noise" and near_ceiling.fewest_fixes is None  # one person: most resamples miss them
    room = headroom(load_run(_write_run(tmp_path / "b", set(range(10)))))
    # 30 misses, one a person; fixing n of them gains nothing in the resamples that draw none of those n people:
    # (37/40)^40 = 4.4% of them for 3 (the 2.5% quantile stays 0), (36/40)^40 = 1.5% for 4
    assert room.misses == 30 and room.perfect.verdict == "better beyond the noise" and room.fewest_fixes == 4


def test_the_headroom_script_prints_the_perfect_gain_and_refuses_a_missing_run(tmp_path, monkeypatch, capsys):
    import sys

    from conftest import load_script

    script = load_script("headroom")
    _write_run(tmp_path / "a", set(range(10)))
    monkeypatch.setattr(sys, "argv", ["headroom", str(tmp_path / "a")])
    script.main()
    out = capsys.readouterr().out
    assert "score 250.0; 30 of 40 queries (40 people)" in out and "perfect: 1000.0, +750.0" in out and "fixing 4 of them" in out
    monkeypatch.setattr(sys, "argv", ["headroom", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit, match=r"^headroom: .*retrieved.npz: missing; run `dvc repro`"):
        script.main()
