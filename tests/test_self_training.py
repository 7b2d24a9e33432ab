"""The self_train stage's parts: pseudo-identities from k-reciprocal clusters, the model cut into trunk and top, the cached views,
and the fine-tune of the top that starts from the trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from styleid.inference.normalize import l2_normalize
from styleid.models.embedder import ModelConfig, build
from styleid.params import params_from_dict
from styleid.search.pseudo_identities import find, purity
from styleid.search.rerank import jaccard_distance
from styleid.training.self_training import keeps


def _people(rng, n_people: int, photos: int, renders: int, photo_only: int, dim: int = 32):
    """Photo and render embeddings around each person's centre (renders offset by one shared style shift), plus photo-only people."""
    centres = l2_normalize(rng.normal(size=(n_people + photo_only, dim)))
    style = 0.3 * l2_normalize(rng.normal(size=(1, dim)))
    q, q_people, g, g_people = [], [], [], []
    for p, c in enumerate(centres):
        for _ in range(photos):
            q.append(c + 0.08 * rng.normal(size=dim))
            q_people.append(p)
        for _ in range(renders if p < n_people else 0):
            g.append(c + style[0] + 0.08 * rng.normal(size=dim))
            g_people.append(p)
    return l2_normalize(np.array(q, np.float32)), q_people, l2_normalize(np.array(g, np.float32)), g_people


def test_jaccard_distance_is_a_symmetric_distance_that_separates_people():
    q, q_people, g, g_people = _people(np.random.default_rng(0), 6, 4, 3, 0)
    dist = jaccard_distance(np.concatenate([q, g]), k1=6, k2=2)
    people = np.array(q_people + g_people)
    same = people[:, None] == people[None, :]
    assert np.allclose(dist, dist.T) and np.all(np.diag(dist) == 0) and dist.min() >= 0 and dist.max() <= 1
    assert dist[same & ~np.eye(len(people), dtype=bool)].max() < dist[~same].min()


def test_pseudo_people_are_the_clusters_that_hold_both_domains():
    q, q_people, g, g_people = _people(np.random.default_rng(1), 6, 4, 3, photo_only=3)
    pseudo = find(q, g, eps=0.6, k1=6, k2=2, min_samples=3)
    assert pseudo.people == 6
    photo_only = np.array(q_people) >= 6
    assert np.all(pseudo.query[photo_only] == -1)  # photo-only people teach nothing across domains: left out
    assert np.all(pseudo.query[~photo_only] >= 0) and np.all(pseudo.gallery >= 0)
    assert purity(np.concatenate([pseudo.query, pseudo.gallery]), q_people + g_people) == 1.0
    summary = pseudo.summary()
    assert summary.pop("pseudo_cluster_seconds") >= 0
    assert summary == {"pseudo_people": 6, "pseudo_queries": 24, "pseudo_gallery": 18, "pseudo_clustered_images": 54}
    # each pseudo-person is one true person, on both sides
    for c in range(6):
        assert len({p for p, k in zip(q_people + g_people, np.concatenate([pseudo.query, pseudo.gallery])) if k == c}) == 1


def test_no_clusters_when_nothing_is_close_enough():
    q, _, g, _ = _people(np.random.default_rng(2), 4, 2, 2, 0)
    assert find(q, g, eps=0.01, k1=3, k2=1, min_samples=3).people == 0


def test_purity_counts_the_majority_person_of_each_cluster():
    assert purity(np.array([0, 0, 0, 1, 1, -1]), ["a", "a", "b", "c", "c", "z"]) == 0.8


RAW = {"backbone": "tf_efficientnet_lite0", "pretrained": "none", "batch_size": 8, "model": {"input_size": 32, "embed_dim": 16},
       "train": {"m_per_class": 2}, "embed": {"batch_size": 8}}


def _tiny_model():
    torch.manual_seed(5)
    return build(ModelConfig("tf_efficientnet_lite0", "none", 32, 16, 1.0, True))


def _fine_tune_setup(synthetic_root, epochs: int = 1, **more):
    """A tiny untrained model, its params, and the synthetic images' cached views with four pseudo-people (the others unclustered)."""
    from styleid.training.self_training import cache_views

    params = params_from_dict({**RAW, "self_train": {"use": "always", "epochs": epochs, "lr": 0.001, "top_stages": 2, "views": 3, **more}})
    people = sorted(p.name for p in (synthetic_root / "photos").iterdir())
    queries = [f for p in people for f in sorted((synthetic_root / "photos" / p).iterdir())]
    gallery = [f for p in people for f in sorted((synthetic_root / "renders" / p).iterdir())]
    model = _tiny_model()
    cached = cache_views(model, params, queries, gallery)
    person = [people.index(f.parent.name) for f in [*queries, *gallery]]
    return model, params, cached, np.array([k if k < 4 else -1 for k in person])


def test_the_cut_model_is_the_model_and_only_its_top_trains(synthetic_root):
    from styleid.models.split import split

    for backbone, size, top in (("tf_efficientnet_lite0", 32, 2), ("facenet", 80, 3), ("facenet", 80, 100), ("resnet18", 32, 2)):
        torch.manual_seed(0)
        model = build(ModelConfig(backbone, "none", size, 0, 1.0, True)).eval()
        parts = split(model, top)
        x = torch.randn(2, 3, size, size)
        with torch.inference_mode():
            assert torch.allclose(model(x), parts.top(parts.trunk(x)), atol=1e-5), (backbone, top)
        whole = backbone == "resnet18" or top == 100  # no cut known for resnet; a count past the first stage takes it all
        assert parts.whole == whole and (len(parts.parameters()) == len(list(model.parameters()))) == whole
    facenet = split(build(ModelConfig("facenet", "none", 80, 0, 1.0, True)), 3)
    names = {n.split(".")[2] for n, p in facenet.model.named_parameters() if any(p is q for q in facenet.parameters())}
    assert names == {"repeat_3", "block8", "last_linear", "last_bn"}


def test_views_are_the_image_its_mirror_and_seeded_augmentations(synthetic_root):
    from styleid.inference.embed import extract
    from styleid.inference.normalize import l2_normalize
    from styleid.inference.transforms import eval_transform
    from styleid.models.split import split
    from styleid.training.view_cache import embed_cached, trunk_views

    model, params, cached, _ = _fine_tune_setup(synthetic_root)
    assert cached.views.dtype == torch.float16 and cached.views.shape[:2] == (len(cached.paths), 3)
    parts = split(model, 2)
    again, exported = trunk_views(parts, cached.paths[:4], cached.domains[:4], params, 3, params.seed)
    assert torch.equal(again, cached.views[:4]) and exported == "torch"  # seeded: the same views on every run
    assert not torch.equal(cached.views[:, 2], cached.views[:, 0])  # the augmented view is another picture
    plain = l2_normalize(extract(model, cached.paths, eval_transform(model.spec), 8, 0, "test", flip=True))
    assert np.abs(embed_cached(parts, cached.views, flip=True) - plain).max() < 2e-2  # as the embed stage embeds, but for float16


def test_the_trunk_cut_out_of_the_onnx_export_gives_torchs_views_and_a_disagreeing_one_is_not_used(synthetic_root, tmp_path):
    from styleid.inference.onnx_export import export_onnx
    from styleid.inference.onnx_trunk import onnx_trunk
    from styleid.models.embedder import save
    from styleid.models.split import split
    from styleid.training.view_cache import trunk_views

    model, params, cached, _ = _fine_tune_setup(synthetic_root)
    save(model, tmp_path)
    export_onnx(model, tmp_path / "model.onnx")
    parts = split(model, 2)
    trunks = onnx_trunk(tmp_path, "auto", parts.scope)  # no int8 export here: auto is fp32
    assert [name for _, name in trunks] == ["onnxruntime fp32"]
    views, used = trunk_views(parts, cached.paths[:6], cached.domains[:6], params, 3, params.seed, exported=trunks)
    assert used == "onnxruntime fp32" and torch.allclose(views.float(), cached.views[:6].float(), atol=1e-2)
    wrong = (lambda x: -parts.trunk(x), "onnxruntime int8")  # disagrees with torch on the first batch: the next in line is used
    views, used = trunk_views(parts, cached.paths[:6], cached.domains[:6], params, 3, params.seed, exported=[wrong, *trunks])
    assert used == "onnxruntime fp32"
    views, used = trunk_views(parts, cached.paths[:6], cached.domains[:6], params, 3, params.seed, exported=[wrong])
    assert used == "torch" and torch.equal(views, cached.views[:6])  # none agrees: torch makes them all
    assert onnx_trunk(tmp_path, "fp32", "/backbone/no_such_module/") == [] and onnx_trunk(tmp_path / "none", "fp32", parts.scope) == []


def test_self_training_starts_from_the_given_model_and_trains_only_the_top_on_the_clustered_images(synthetic_root):
    from styleid.training.self_training import self_train

    start, params, cached, pseudo = _fine_tune_setup(synthetic_root)
    before = {k: v.clone() for k, v in start.state_dict().items()}
    result = self_train(start, params, cached, pseudo)
    assert result.images_seen > 0 and len(result.history) == 1 and np.isfinite(result.history[0]["train_loss"])
    after = result.model.state_dict()
    assert all(torch.equal(before[k], v) for k, v in start.state_dict().items())  # the given model is left as it was
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("backbone.blocks.6", "backbone.conv_head", "backbone.bn2", "head.")) for k in changed), changed
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith("backbone.") and "running_" in k)  # BN statistics held


def test_a_finished_fine_tune_is_reused_under_its_key_and_redone_under_another(synthetic_root, tmp_path, monkeypatch):
    """A stage killed after a fine-tune ended (during the next round, or the export) gets that fine-tune's weights back at
    once; other pseudo-labels (or params, inputs, code: the stage's key) fine-tune afresh; clear() leaves only a marker."""
    from styleid.training import top_fine_tune
    from styleid.training.self_training import Resume, self_train

    start, params, cached, pseudo = _fine_tune_setup(synthetic_root, epochs=2)
    resume = Resume(tmp_path / "checkpoints", "stage-key")
    first = self_train(start, params, cached, pseudo, resume.at("test-round-1", pseudo))
    calls = []
    real = top_fine_tune._fine_tune
    monkeypatch.setattr(top_fine_tune, "_fine_tune", lambda *a: calls.append(a[-1]) or real(*a))
    again = self_train(start, params, cached, pseudo, resume.at("test-round-1", pseudo))
    assert calls == [] and again.model is not first.model
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in first.model.state_dict().items())
    assert (again.best_epoch, again.history, again.images_seen, again.seconds) == (first.best_epoch, first.history, first.images_seen, first.seconds)
    other = pseudo.copy()
    other[other == 3] = 2  # the clustering found other pseudo-people: another key
    assert resume.at("test-round-1", other)[1] != resume.at("test-round-1", pseudo)[1] != Resume(resume.folder, "other").at("test-round-1", pseudo)[1]
    self_train(start, params, cached, other, resume.at("test-round-1", other))
    assert calls == [resume.at("test-round-1", other)]
    resume.clear()
    assert [f.name for f in resume.folder.iterdir()] == ["finished.json"]


def test_a_fine_tune_killed_after_an_epoch_goes_on_and_ends_as_an_uninterrupted_one(synthetic_root, tmp_path, monkeypatch):
    from styleid.training import checkpoint as checkpoints
    from styleid.training.self_training import Resume, self_train

    start, params, cached, pseudo = _fine_tune_setup(synthetic_root, epochs=3)
    whole = self_train(start, params, cached, pseudo)

    class Killed(Exception):
        pass

    def kill(epoch):
        if epoch == 1:
            raise Killed

    resume = Resume(tmp_path / "checkpoints", "stage-key")
    monkeypatch.setattr(checkpoints, "stop_here_for_tests", kill)
    with pytest.raises(Killed):
        self_train(start, params, cached, pseudo, resume.at("test-round-1", pseudo))
    assert torch.load(resume.at("test-round-1", pseudo)[0], weights_only=True)["epoch"] == 1
    resumed = self_train(start, params, cached, pseudo, resume.at("test-round-1", pseudo))
    assert resumed.history == whole.history and resumed.images_seen == whole.images_seen
    assert all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in whole.model.state_dict().items())


def test_the_views_are_cached_once_and_read_back_by_a_rerun(synthetic_root, tmp_path, monkeypatch):
    from styleid.training import view_cache
    from styleid.training.self_training import Resume, cache_views

    model, params, cached, _ = _fine_tune_setup(synthetic_root)
    resume = Resume(tmp_path / "checkpoints", "stage-key")
    queries, gallery = cached.paths[: cached.n_queries], cached.paths[cached.n_queries:]
    made = cache_views(model, params, queries, gallery, resume, "validation")
    monkeypatch.setattr(view_cache, "trunk_views", lambda *a, **k: pytest.fail("the views were made again"))
    again = cache_views(model, params, queries, gallery, resume, "validation")
    assert torch.equal(again.views, made.views) and again.n_queries == made.n_queries
    assert Resume(resume.folder, "other").views("validation", cached.paths)[1] != resume.views("validation", cached.paths)[1]


def test_validation_gain_runs_the_procedure_on_the_validation_people_and_reports_its_paired_interval(synthetic_root):
    from styleid.training.self_training import validation_gain

    people = sorted(p.name for p in (synthetic_root / "photos").iterdir())
    split = {"val_query": [{"image": str(f), "person": p} for p in people for f in sorted((synthetic_root / "photos" / p).iterdir())],
             "val_gallery": [{"image": str(f), "person": p} for p in people for f in sorted((synthetic_root / "renders" / p).iterdir())]}
    raw = {**RAW, "self_train": {"epochs": 1, "lr": 0.001, "k1": 4, "k2": 2, "min_samples": 2, "eps": 0.9, "top_stages": 2, "views": 2}}
    model = _tiny_model()
    row = validation_gain(model, params_from_dict(raw), split, "center")
    assert row["val_people"] == len(people) and row["val_pseudo_people"] >= 2 and 0 <= row["val_purity"] <= 1
    assert row["val_gain_low"] <= row["val_score_self_trained"] - row["val_score"] <= row["val_gain_high"] or row["val_gain_low"] == row["val_gain_high"]
    assert row["val_map_gain_low"] <= row["val_map_gain_high"] and isinstance(row["val_score_moved"], bool) and row["val_check_seconds"] > 0
    strict = params_from_dict({**raw, "self_train": {**raw["self_train"], "min_samples": 1000}})  # no image has 1000 neighbours: no cluster
    row = validation_gain(model, strict, split, "center")
    assert row["val_pseudo_people"] == 0 and row["val_score_self_trained"] == row["val_score"] and row["val_gain_low"] == row["val_gain_high"] == 0
    assert validation_gain(model, strict, {"val_query": [], "val_gallery": []}, "center") == {"val_people": 0}


def test_each_round_reclusters_with_the_model_the_round_before_left(synthetic_root, monkeypatch):
    import copy
    from types import SimpleNamespace

    from styleid.search.pseudo_identities import PseudoIdentities
    from styleid.training import self_training, view_cache
    from styleid.training.self_training import adapt_rounds

    people = sorted(p.name for p in (synthetic_root / "photos").iterdir())
    queries = [f for p in people for f in sorted((synthetic_root / "photos" / p).iterdir())]
    gallery = [f for p in people for f in sorted((synthetic_root / "renders" / p).iterdir())]
    raw = {**RAW, "self_train": {"epochs": 1, "rounds": 3, "top_stages": 2, "views": 2}}
    model = _tiny_model()
    found = [3, 2, 4]  # pseudo-people each clustering finds
    clustered_with, trained_from, views_made = [], [], []
    real_embed, real_views = view_cache.Cached.embed, view_cache.trunk_views

    def clusters(q, g, params):  # the clustering itself is tested above; here only who clusters and who is fine-tuned
        n = found[len(clustered_with) - 1]
        if n == 0:
            return PseudoIdentities(np.full(len(q), -1), np.full(len(g), -1))
        return PseudoIdentities(np.arange(len(q)) % n, np.arange(len(g)) % n)

    monkeypatch.setattr(view_cache.Cached, "embed", lambda self, m, *a: clustered_with.append(m) or real_embed(self, m, *a))
    monkeypatch.setattr(view_cache, "trunk_views", lambda *a, **k: views_made.append(1) or real_views(*a, **k))
    monkeypatch.setattr(self_training, "pseudo_people", clusters)
    monkeypatch.setattr(self_training, "self_train", lambda m, *a: trained_from.append(m) or SimpleNamespace(model=copy.deepcopy(m), seconds=1.0, images_seen=5))
    result = adapt_rounds(model, params_from_dict(raw), queries, gallery, "center")
    assert result.rounds == 3 and result.seconds == 3.0 and result.seen == 15 and result.first.people == 3 and result.last.people == 4 and views_made == [1]
    assert result.summary() == {"self_train_rounds": 3, "last_round_pseudo_people": 4, "last_round_pseudo_queries": len(queries),
                                "last_round_pseudo_gallery": len(gallery), "last_round_pseudo_clustered_images": len(queries) + len(gallery),
                                "last_round_pseudo_cluster_seconds": 0.0}
    assert clustered_with[0] is model and trained_from[0] is model  # round 1: the given model clusters and is fine-tuned
    assert clustered_with[1] is trained_from[1] is not model and clustered_with[2] is trained_from[2] is not clustered_with[1]
    assert result.model is clustered_with[3] is not trained_from[2]  # what the last round left, which embeds the after
    clustered_with.clear(), trained_from.clear()
    found[1] = 1  # the second clustering finds one pseudo-person: stop, keep what round 1 left
    stopped = adapt_rounds(model, params_from_dict(raw), queries, gallery, "center")
    assert stopped.rounds == 1 and stopped.last.people == 1 and len(trained_from) == 1 and stopped.model is clustered_with[1]
    found[0] = 0  # nothing at all: the given model, untouched
    clustered_with.clear()
    assert adapt_rounds(model, params_from_dict(raw), queries, gallery, "center").model is model
    one = params_from_dict({**raw, "self_train": {**raw["self_train"], "rounds": 1}})
    found[0] = 3
    clustered_with.clear()
    assert adapt_rounds(model, one, queries, gallery, "center").summary() == {}  # one round: the first round's figures say it all


def test_auto_keeps_on_the_score_or_on_map_where_the_score_is_not_worse_beyond_its_noise():
    assert keeps({"val_gain_low": 5.0, "val_gain_high": 40.0, "val_score_moved": True, "val_map_gain_low": -0.1})
    assert keeps({"val_gain_low": -6.4, "val_gain_high": 81.2, "val_score_moved": True, "val_map_gain_low": 0.06})  # mAP, score not worse
    assert not keeps({"val_gain_low": -30.0, "val_gain_high": -2.0, "val_score_moved": True, "val_map_gain_low": 0.05})  # the score says worse
    assert keeps({"val_gain_low": 0.0, "val_gain_high": 0.0, "val_score_moved": False, "val_map_gain_low": 0.05})  # saturated: every query found at 1 both ways
    assert not keeps({"val_gain_low": 0.0, "val_gain_high": 0.0, "val_score_moved": False, "val_map_gain_low": -0.01})
    assert not keeps({"val_people": 0}) and not keeps({"val_gain_low": 0.0, "val_gain_high": 0.0, "val_pseudo_people": 1})


def test_the_stage_is_off_from_the_params_alone_and_always_fine_tunes_even_a_frozen_backbone():
    """self_train.use never, and train.freeze all (the frozen baseline) under use auto, switch the stage off before
    anything heavy is imported; use always self-trains the frozen backbone's top (self-training alone)."""
    from conftest import load_script

    stage = load_script("self_train", folder="stages")
    off = lambda **raw: stage._switched_off(params_from_dict(raw))  # noqa: E731
    assert off(self_train={"use": "never"}) == {"self_train": "off (self_train.use never)"}
    assert off(train={"freeze": "all"})["self_train"].startswith("off (train.freeze all under self_train.use auto")
    assert off(train={"freeze": "all"}, self_train={"use": "always"}) is None
    assert off() is None and off(self_train={"use": "always"}) is None
