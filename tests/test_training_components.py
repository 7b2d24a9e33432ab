"""Training components: loss wiring, batch composition, freezing, layer decay, schedule, augmentation, GeM, flip TTA."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from styleid.models.embedder import ModelConfig, build
from styleid.models.pooling import GeM
from styleid.params import AugmentParams, params_from_dict
from styleid.training import losses
from styleid.training.freeze import apply_freeze
from styleid.training.loop import TrainSet, train
from styleid.training.optim import create_optimizer, create_scheduler, param_groups
from styleid.training.samplers import CrossDomainBatchSampler, class_balanced, has_cross_domain_people
from styleid.training.transforms import train_transform


@pytest.fixture(scope="module")
def lite0():
    return build(ModelConfig("tf_efficientnet_lite0", "none", 64, 32, 1.0, True))


@pytest.mark.parametrize("name,cls,has_params,miner", [
    ("cross_entropy", losses.CrossEntropy, True, None),
    ("arcface", "ArcFaceLoss", True, None),
    ("subcenter_arcface", "SubCenterArcFaceLoss", True, None),
    ("multi_similarity", "MultiSimilarityLoss", False, "MultiSimilarityMiner"),
    ("supcon", "SupConLoss", False, None),
    ("triplet", "TripletMarginLoss", False, "TripletMarginMiner"),
])
def test_loss_selection_wiring(name, cls, has_params, miner):
    loss = losses.create_loss(name, 16, 5)
    inner = loss.loss if isinstance(loss, losses.Mined) else loss
    assert (inner.__class__.__name__ == cls) if isinstance(cls, str) else isinstance(inner, cls)
    assert bool(list(loss.parameters())) == has_params
    assert (type(loss.miner).__name__ if isinstance(loss, losses.Mined) and loss.miner else None) == miner
    emb, labels = torch.randn(12, 16, requires_grad=True), torch.arange(12) % 4
    value = loss(emb, labels)
    value.backward()
    assert torch.isfinite(value) and emb.grad is not None


def test_loss_parameters_get_their_own_learning_rate(lite0):
    loss = losses.create_loss("arcface", 32, 5)
    groups = param_groups(lite0, loss, lr=1e-3, weight_decay=0.05, layer_decay=1.0, loss_lr=1e-2)
    proxy = [g for g in groups if any(p is loss.W for p in g["params"])]
    assert len(proxy) == 1 and proxy[0]["lr_scale"] == pytest.approx(10.0) and proxy[0]["weight_decay"] == 0.0
    opt = create_optimizer(groups, "adamw", 1e-3, 0.05)
    assert {round(g["lr"], 6) for g in opt.param_groups} == {0.001, 0.01}


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_fused_optimizer_steps_like_the_plain_one(name):
    """On CPU the optimiser is fused (one kernel for all parameters); its steps are the plain loop's, to float rounding."""
    torch.manual_seed(0)
    start = [torch.randn(7, 5), torch.randn(5)]
    weights = {}
    for device in ("cpu", "mps"):  # a device without a fused kernel here gets the plain loop (the parameters stay on the CPU)
        params = [torch.nn.Parameter(t.clone()) for t in start]
        opt = create_optimizer([{"params": params, "lr_scale": 1.0}], name, 1e-2, 0.05, device=device)
        assert bool(opt.defaults.get("fused")) == (device == "cpu")
        for step in range(3):
            for k, p in enumerate(params):
                p.grad = torch.full_like(p, 0.1 * (step + 1 + k))
            opt.step()
        weights[device] = [p.detach().clone() for p in params]
    for fused, plain in zip(weights["cpu"], weights["mps"]):
        assert torch.allclose(fused, plain, atol=1e-6) and not torch.equal(fused, start[0] if fused.dim() == 2 else start[1])


def test_class_balanced_batches_hold_m_images_per_person():
    labels = [p for p in range(10) for _ in range(7)]
    batches = torch.tensor(list(class_balanced(labels, m=4, batch_size=16))).split(16)
    for batch in batches:
        counts = Counter(labels[i] for i in batch.tolist())
        assert len(counts) == 4 and set(counts.values()) == {4}


def test_cross_domain_batches_pair_photos_with_renders():
    labels, domains = [], []
    for person in range(6):
        for domain, n in (("photo", 5), ("render", 2)):
            labels += [person] * n
            domains += [domain] * n
    labels += [6] * 4  # a person with photos only
    domains += ["photo"] * 4
    assert has_cross_domain_people(labels, domains) and not has_cross_domain_people([0, 0, 1], ["photo"] * 3)
    sampler = CrossDomainBatchSampler(labels, domains, m=4, batch_size=12, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) and all(len(b) == 12 for b in batches)
    for batch in batches:
        for person in {labels[i] for i in batch}:
            mine = Counter(domains[i] for i in batch if labels[i] == person)
            assert mine == (Counter(photo=4) if person == 6 else Counter(photo=2, render=2))
    assert list(CrossDomainBatchSampler(labels, domains, 4, 12, seed=0)) == batches  # seeded
    assert list(sampler) != batches  # a new epoch, new batches


def _trainable(model) -> set[str]:
    return {n for n, p in model.backbone.named_parameters() if p.requires_grad}


def test_freeze_policies_freeze_and_unfreeze_what_they_say():
    model = build(ModelConfig("tf_efficientnet_lite0", "none", 64, 0, 1.0, True))
    apply_freeze(model, "all", 2)
    assert not _trainable(model)
    apply_freeze(model, "last_n", 2)
    names = _trainable(model)
    assert names and all(n.startswith(("blocks.6", "conv_head", "bn2")) for n in names)
    assert any(n.startswith("blocks.6") for n in names) and any(n.startswith("conv_head") for n in names)
    apply_freeze(model, "none", 2)
    assert _trainable(model) == {n for n, _ in model.backbone.named_parameters()}


def test_a_frozen_backbone_does_not_change_in_training(synthetic_root):
    raw = {"backbone": "tf_efficientnet_lite0", "pretrained": "none", "epochs": 1, "batch_size": 8,
           "model": {"input_size": 32, "embed_dim": 16}, "train": {"freeze": "last_n", "unfreeze_last_n": 1, "augment": False}}
    params = params_from_dict(raw)
    pairs = [(f, p.name) for p in sorted((synthetic_root / "photos").iterdir()) for f in sorted(p.iterdir())]
    before = build(ModelConfig("tf_efficientnet_lite0", "none", 32, 16, 1.0, True)).state_dict()
    torch.manual_seed(params.seed)
    before = build(ModelConfig("tf_efficientnet_lite0", "none", 32, 16, 1.0, True)).state_dict()  # the same init train() makes
    after = train(params, TrainSet(pairs)).model.state_dict()
    stem = [k for k in before if k.startswith("backbone.conv_stem") or k.startswith("backbone.blocks.0")]
    assert stem and all(torch.equal(before[k], after[k]) for k in stem)
    assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith("backbone.bn2") and "running" not in k)


def test_layer_decay_scales_grow_from_stem_to_head(lite0):
    groups = param_groups(lite0, torch.nn.Identity(), lr=1e-3, weight_decay=0.0, layer_decay=0.5, loss_lr=1e-3)
    scale_of = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    named = dict(lite0.named_parameters())
    stem, mid, head = (scale_of[id(named[k])] for k in ("backbone.conv_stem.weight", "backbone.blocks.3.0.conv_pw.weight", "head.0.weight"))
    assert stem < mid < head == pytest.approx(1.0)
    assert len({g["lr_scale"] for g in groups}) > 5


def test_warmup_then_cosine():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = create_optimizer([{"params": [p], "lr_scale": 1.0}], "adamw", 1e-2, 0.0)
    sched = create_scheduler(opt, "cosine", 1e-2, total_steps=100, warmup_steps=10)
    lrs = []
    for step in range(100):
        sched.step_update(step)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] < lrs[5] < lrs[10] and max(lrs) == pytest.approx(1e-2, rel=0.05)
    assert lrs[99] < lrs[50] < lrs[12] and lrs[99] < 1e-3


def test_augmentation_is_deterministic_for_a_seed(lite0):
    img = Image.fromarray((np.random.default_rng(0).random((80, 80, 3)) * 255).astype(np.uint8))
    aug = AugmentParams(style=0.5, edges=0.3, posterize=0.3)
    tf = train_transform(lite0.spec, True, aug, ["painterly", "colour_shift"])

    def run(seed):
        torch.manual_seed(seed)
        return torch.stack([tf(img) for _ in range(6)])

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))


def test_gem_pools_between_mean_and_max():
    x = torch.rand(2, 4, 5, 5) + 0.1
    mean, top = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
    assert torch.allclose(GeM(1.0)(x), mean, atol=1e-5)
    gem = GeM(3.0)(x)
    assert (gem > mean).all() and (gem < top).all()
    model = build(ModelConfig("tf_efficientnet_lite0", "none", 64, 0, 1.0, True, pooling="gem"))
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, model.spec.feature_dim)


def test_flip_tta_is_mirror_invariant(tmp_path, lite0):
    from styleid.inference.embed import extract
    from styleid.inference.transforms import eval_transform

    img = Image.fromarray((np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8))
    img.save(tmp_path / "a.png")
    img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "b.png")
    tf = eval_transform(lite0.spec)
    plain = extract(lite0, [tmp_path / "a.png", tmp_path / "b.png"], tf)
    flipped = extract(lite0, [tmp_path / "a.png", tmp_path / "b.png"], tf, flip=True)
    assert not np.allclose(plain[0], plain[1], atol=1e-4)
    assert np.allclose(flipped[0], flipped[1], atol=1e-4)


def test_exaggerate_magnifies_or_shrinks_a_face_region_and_is_seeded():
    from PIL import ImageDraw

    from styleid.training.transforms import Exaggerate

    img = Image.new("RGB", (96, 96), (255, 255, 255))
    cx, cy = [round((v + 1) / 2 * 95) for v in Exaggerate.REGIONS[2]]  # the nose region's centre
    ImageDraw.Draw(img).ellipse([cx - 6, cy - 6, cx + 6, cy + 6], fill=(0, 0, 0))
    warp = Exaggerate(1.0, 0.5)
    dark = lambda im: int((np.asarray(im.convert("L")) < 128).sum())  # noqa: E731

    def with_amount(a: float) -> Image.Image:
        amounts = torch.zeros(len(Exaggerate.REGIONS))
        amounts[2] = a
        x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
        out = torch.nn.functional.grid_sample(x, warp.field((96, 96), amounts), align_corners=True, padding_mode="border")
        return Image.fromarray(out[0].permute(1, 2, 0).round().to(torch.uint8).numpy())

    assert dark(with_amount(0.5)) > 1.5 * dark(img) and dark(with_amount(-0.5)) < 0.75 * dark(img)
    assert np.array_equal(np.asarray(with_amount(0.0)), np.asarray(img))
    torch.manual_seed(3)
    first = np.asarray(warp(img))
    torch.manual_seed(3)
    assert np.array_equal(first, np.asarray(warp(img))) and not np.array_equal(first, np.asarray(img))
    assert Exaggerate(0.0, 0.5)(img) is img


def test_decoded_cache_gives_the_very_same_training_items(tmp_path, lite0):
    from styleid.training.datasets import TrainDataset

    paths = []
    for k in range(4):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray((np.random.default_rng(k).random((40, 48, 3)) * 255).astype(np.uint8)).save(paths[-1])
    tf = train_transform(lite0.spec, True, AugmentParams(style=0.5, edges=0.3), ["painterly"])
    args = (paths, [0, 0, 1, 1], ["photo", "render", "photo", "render"], tf, tf)
    cached, plain, over = TrainDataset(*args, cache_bytes=1e9), TrainDataset(*args), TrainDataset(*args, cache_bytes=100)
    assert cached.decoded.arrays is not None and plain.decoded.arrays is None and over.decoded.arrays is None  # 0 = off; over budget = off
    (tmp_path / "0.png").unlink()  # decoded once: the cached dataset no longer reads the file
    for i in range(1, 4):
        a, b = cached[(i, 7)], plain[(i, 7)]
        assert a[0].dtype == torch.uint8 and torch.equal(a[0], b[0]) and a[1] == b[1]
    assert cached[(0, 7)][0].shape == a[0].shape


def test_pixels_become_model_input_per_batch_exactly_as_per_image(lite0):
    from styleid.inference.transforms import eval_transform, model_input, prepare_batch

    imgs = [Image.fromarray((np.random.default_rng(k).random((70, 64, 3)) * 255).astype(np.uint8)) for k in range(3)]
    pixels = torch.stack([eval_transform(lite0.spec)(img) for img in imgs])
    assert pixels.dtype == torch.uint8
    batch = prepare_batch(lite0.spec, pixels)
    assert torch.equal(batch, torch.stack([model_input(lite0.spec)(p) for p in pixels]))
    assert prepare_batch(lite0.spec, batch) is batch  # model input passes through
    with pytest.raises(TypeError, match="model_input"):
        prepare_batch(None, pixels)


def test_pixels_and_model_input_match_torchvision():
    """ToPixels is T.ToImage's pixels; ModelInput is ToDtype(scale) + Normalize to float rounding."""
    from torchvision.transforms import v2 as T

    from styleid.inference.transforms import model_input, to_pixels
    from styleid.models.spec import ModelSpec

    rgb = Image.fromarray((np.random.default_rng(1).random((33, 47, 3)) * 255).astype(np.uint8))
    for img in (rgb, rgb.convert("L").convert("RGB")):
        assert torch.equal(to_pixels()(img), T.ToImage()(img)) and to_pixels()(img).is_contiguous()
    assert to_pixels()(rgb.convert("L")).shape == (3, 33, 47)  # one-channel images become three
    pixels = torch.stack([to_pixels()(rgb)] * 2)
    for normalize in (True, False):
        spec = ModelSpec("x", 33, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear", 1.0, 8, 0, normalize)
        steps = [T.ToDtype(torch.float32, scale=True)] + ([T.Normalize(spec.mean, spec.std)] if normalize else [])
        assert torch.allclose(model_input(spec)(pixels), T.Compose(steps)(pixels), atol=1e-6, rtol=0)
    with pytest.raises(TypeError, match="uint8"):
        model_input(spec)(pixels.float())
