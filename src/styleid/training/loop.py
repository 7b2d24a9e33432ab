"""The training loop: freeze policy, optimiser, epochs, validation and checkpoint selection.

A fully frozen backbone without augmentation computes its features once and trains on them
(the reference recipe costs one pass over the images, not one per epoch).

Under torchrun (train.nproc > 1) every rank trains on its share of each global batch inside
DistributedDataParallel; every image's augmentation is seeded by its place in the epoch, not by the
process, so one process and several see the same augmented images and take the same steps.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from styleid import metrics
from styleid.distributed import ddp
from styleid.embedding import extract
from styleid.errors import ParamsError, StyleidError
from styleid.models.embedder import Embedder, build
from styleid.params import Params
from styleid.search.adapt import ADAPTATIONS, adapt_pair, val_score_key
from styleid.search.index import l2_normalize
from styleid.training import checkpoint as checkpoints
from styleid.training.datasets import TrainDataset
from styleid.training.losses import LossConfig, create_loss, distributed_loss, per_sample_mean
from styleid.training.optim import create_optimizer, create_scheduler, param_groups
from styleid.training.samplers import CrossDomainBatchSampler, class_balanced, has_cross_domain_people, rank_share, seeded_batches
from styleid.training.transforms import eval_transform, train_transform

log = logging.getLogger(__name__)


@dataclass
class TrainSet:
    train: list[tuple[Path, str]]  # (image, person)
    train_domains: list[str] = field(default_factory=list)  # photo | render per training image ([] = all photos)
    holdout: list[tuple[Path, str]] = field(default_factory=list)  # training people's held-out images (val_loss)
    val_query: list[tuple[Path, str]] = field(default_factory=list)  # unseen people (val_score)
    val_gallery: list[tuple[Path, str]] = field(default_factory=list)
    image_side: int = 0  # the training images' median side, px (0 = unknown): caps model.input_size 0


@dataclass
class TrainResult:
    model: Embedder
    best_epoch: int
    history: list[dict]
    seconds: float
    images_seen: int
    step_seconds: float = 0.0  # time inside training batches (loading, forward, backward, step), validation excluded


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)


def apply_freeze(model: Embedder, policy: str, last_n: int) -> None:
    """all: the backbone never trains (BN statistics frozen too); last_n: only its last n stages; none: all train."""
    backbone = model.backbone
    backbone.requires_grad_(policy == "none")
    if policy == "last_n":
        stages = _stages(backbone)
        for stage in stages[-last_n:]:
            stage.requires_grad_(True)


def _stages(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's top-level stages in order (timm's feature_info when present)."""
    if hasattr(backbone, "stage_modules"):
        return backbone.stage_modules()
    blocks = getattr(backbone, "blocks", None) or getattr(backbone, "stages", None) or getattr(backbone, "layers", None)
    tail = [m for name, m in backbone.named_children() if name in ("conv_head", "bn2", "norm", "head_norm", "fc_norm", "global_pool")]
    if blocks is not None:
        return list(blocks) + ([nn.ModuleList(tail)] if tail else [])  # the head layers count as one stage
    return list(backbone.children())


def backbone_frozen(model: Embedder) -> bool:
    return not any(p.requires_grad for p in model.backbone.parameters())


def set_train_mode(model: Embedder, frozen_bn: bool = False) -> None:
    """Train mode, except BatchNorm statistics where they must not move.

    Frozen layers keep their statistics (freeze: all or last_n); so does a backbone whose BN was
    folded into the convolutions (facenet offline: see models/facenet.py), or any backbone when
    train.frozen_bn asks for it.
    """
    model.train()
    if backbone_frozen(model):
        model.backbone.eval()  # dropout off too: a frozen backbone is a fixed feature extractor
        return
    keep_all = frozen_bn or getattr(model.backbone, "frozen_bn", False)
    for module in model.backbone.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if keep_all or not any(p.requires_grad for p in module.parameters()):
                module.eval()


def _labels(people: list[str], classes: dict[str, int]) -> torch.Tensor:
    return torch.tensor([classes[p] for p in people], dtype=torch.long)


def _retrieval_score(q: np.ndarray, q_people: list[str], g: np.ndarray, g_people: list[str], adapt: str = "none") -> float:
    q, g = adapt_pair(l2_normalize(q), l2_normalize(g), adapt)
    return metrics.evaluate(metrics.rank_by_scores(q @ g.T)[:, :10], q_people, g_people)["score"]


def _to(x: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if x is None else x.to(device, non_blocking=True)


def _check_finite(loss: torch.Tensor, epoch: int, step: int, lr: float) -> None:
    if not torch.isfinite(loss):
        raise StyleidError(f"training: the loss became {loss.item()} at epoch {epoch} step {step}; lower lr (now {lr}) or check the data")


def _embed_parts(network: nn.Module, parts: dict[str, list[tuple[Path, str]]], transform: Callable, batch_size: int,
                 num_workers: int, flip: bool, desc: str) -> dict[str, torch.Tensor]:
    """Run `network` on each image once across parts (closed protocol: the held-out images are the val images)."""
    unique = list(dict.fromkeys(path for pairs in parts.values() for path, _ in pairs))
    if not unique:
        return {}
    row = {path: i for i, path in enumerate(unique)}
    here = ddp.world()  # several ranks: each embeds its slice, all gather the rest
    mine = extract(network, rank_share([unique], here.rank, here.size)[0], transform, batch_size, num_workers, desc, flip=flip)
    every = torch.from_numpy(np.concatenate([m for m in ddp.all_gather(mine) if m.size]))
    return {name: every[[row[path] for path, _ in pairs]] for name, pairs in parts.items() if pairs}


def _epoch_batches(next_epoch: Callable[[], list[list[int]]], seed: int, epoch: int,
                   here: ddp.World) -> tuple[list[list[tuple[int, int]]], list[int]]:
    """This rank's share of each of the epoch's global batches, and the global sizes; rank 0 draws them so every rank agrees."""
    batches = ddp.broadcast([[int(i) for i in b] for b in next_epoch()] if here.main else None)
    batches = [b for b in batches if len(b) >= here.size]  # every rank needs an item in every step
    return rank_share(seeded_batches(batches, seed, epoch), here.rank, here.size), [len(b) for b in batches]


class _Objective(nn.Module):
    """Model + loss as one module, so DistributedDataParallel syncs the loss's own parameters too."""

    def __init__(self, model: Embedder, loss_fn: nn.Module):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, images: torch.Tensor | None, features: torch.Tensor | None, labels: torch.Tensor, weight: float) -> torch.Tensor:
        emb = self.model.head(features) if features is not None else self.model(images.contiguous(memory_format=torch.channels_last))
        return self.loss_fn(emb, labels) * weight


def _batch_plan(params: Params, labels: list[int], domains: list[str], gen: torch.Generator) -> tuple[Callable[[], list[list[int]]], object | None]:
    """A function giving one epoch's batches (index lists): cross-domain, class-balanced or shuffled; and the
    sampler whose `epoch` counter a checkpoint must keep (None when the RNG states say it all)."""
    t, bs = params.train, params.batch_size
    m = t.m_per_class
    n_people = len(set(labels))
    if m and t.cross_domain and has_cross_domain_people(labels, domains):
        sampler = CrossDomainBatchSampler(labels, domains, m, bs, params.seed)
        return (lambda: list(sampler)), sampler
    if m and bs % m == 0 and m * n_people >= bs:
        balanced = class_balanced(labels, m, bs)
        return (lambda: [b for b in torch.tensor(list(balanced)).split(bs) if len(b) > 1]), None
    if m:
        log.warning("train: m_per_class=%d does not fit batch_size=%d with %d people; plain shuffling", m, bs, n_people)
    return (lambda: [b for b in torch.randperm(len(labels), generator=gen).split(bs) if len(b) > 1]), None


def _build_model(params: Params, image_side: int = 0) -> Embedder:
    t, m = params.train, params.model
    return build(params.backbone, params.pretrained, m.input_size, m.embed_dim, m.crop_pct, t.imagenet_norm,
                 m.hub_weights, m.pooling, m.gem_p, image_side)


def _loss_config(t) -> LossConfig:
    return LossConfig(t.arc_margin, t.arc_scale, t.subcenters, t.ms_epsilon, t.supcon_temperature, t.triplet_margin)


def train(params: Params, data: TrainSet, log_epoch: Callable[[int, dict], None] | None = None,
          checkpoint: Path | None = None, key: str = "") -> TrainResult:
    """Train; with `checkpoint`, save everything at the end of every epoch and go on from a checkpoint
    written under the same `key` (the same params and data), ending as an uninterrupted run would."""
    seed_everything(params.seed)
    t = params.train
    here = ddp.world()
    device = here.device
    model = _build_model(params, data.image_side)
    apply_freeze(model, t.freeze, t.unfreeze_last_n)
    classes = {p: i for i, p in enumerate(sorted({p for _, p in data.train}))}
    loss_fn = create_loss(t.loss, model.spec.out_dim, len(classes), _loss_config(t))
    model.to(device)
    loss_fn.to(device)
    if here.distributed and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # batch statistics over the global batch (CUDA only)
    if not any(p.requires_grad for p in [*model.parameters(), *loss_fn.parameters()]):
        raise ParamsError(f"train: nothing to train: train.freeze=all, model.embed_dim=0 and train.loss={t.loss} has no parameters; "
                          "set model.embed_dim > 0 or train.freeze to none or last_n")
    cached = backbone_frozen(model) and not t.augment
    start = time.perf_counter()
    ev = eval_transform(model.spec)
    gen = torch.Generator().manual_seed(params.seed)
    flip = params.embed.flip_tta

    labels = [classes[p] for _, p in data.train]
    domains = data.train_domains or ["photo"] * len(labels)
    next_epoch, sampler = _batch_plan(params, labels, domains, gen)
    steps_per_epoch = max(1, ddp.broadcast(len(next_epoch()) if here.main else None))  # rank 0 draws; the count is all the others need
    groups = param_groups(model, loss_fn, params.lr, t.weight_decay, t.layer_decay, t.loss_lr)
    optimizer = create_optimizer(groups, t.optimizer, params.lr, t.weight_decay)
    scheduler = create_scheduler(optimizer, t.schedule, params.lr, params.epochs * steps_per_epoch, round(t.warmup_epochs * steps_per_epoch))
    hold = [(path, person) for path, person in data.holdout if person in classes]
    # per-sample-mean losses: each rank's mean, weighted by its share, averages (DDP) to the global batch's mean;
    # pair losses gather every rank's embeddings (pytorch-metric-learning's distributed wrappers) instead
    pointwise = per_sample_mean(loss_fn)
    train_loss = loss_fn if pointwise or not here.distributed else distributed_loss(loss_fn)
    objective = _Objective(model, train_loss)
    if here.distributed:
        objective = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)
    if cached:
        # frozen backbone: its features once, for every part; the epochs train the head on them
        label_tensor = torch.as_tensor(labels)
        feats = _embed_parts(model.backbone, {"train": data.train, "holdout": hold, "val_query": data.val_query, "val_gallery": data.val_gallery},
                             ev, params.embed.batch_size, t.num_workers, False, "train: backbone features")
    else:
        dataset = TrainDataset([p for p, _ in data.train], labels, domains,
                               train_transform(model.spec, t.augment, params.augment, params.split.train_styles, photo=True),
                               train_transform(model.spec, t.augment, params.augment, params.split.train_styles, photo=False))
    history: list[dict] = []
    best_state, best_value, best_epoch, bad_epochs, seen, step, step_seconds = None, -math.inf, 0, 0, 0, 0, 0.0
    select = t.select_by if (t.select_by == "val_score" and data.val_query) or (t.select_by == "val_loss" and hold) else ("val_score" if data.val_query else "last")
    first_epoch, stopped, earlier_seconds = 1, False, 0.0
    resumed = checkpoints.load(checkpoint, key) if checkpoint is not None and key else None
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        loss_fn.load_state_dict(resumed["loss"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        checkpoints.restore_rng(resumed["rng"], gen)
        if sampler is not None:
            sampler.epoch = resumed["sampler_epoch"]
        history, best_value, best_epoch = resumed["history"], resumed["best_value"], resumed["best_epoch"]
        best_state = resumed["best_state"] if resumed["best_state"] is not None else copy.deepcopy(model.state_dict())
        bad_epochs, seen, step, step_seconds = resumed["bad_epochs"], resumed["seen"], resumed["step"], resumed["step_seconds"]
        first_epoch, stopped, earlier_seconds = resumed["epoch"] + 1, resumed["stopped"], resumed["seconds"]
        log.info("train: resuming after epoch %d of %d (checkpoint %s)", resumed["epoch"], params.epochs, checkpoint)
        if log_epoch and here.main:
            for row in history:  # the logs of the epochs already run, as an uninterrupted run wrote them
                log_epoch(row["epoch"], row)

    for epoch in range(first_epoch, params.epochs + 1):
        if stopped:
            break
        set_train_mode(model, t.frozen_bn)
        train_loss.train()
        total, count = 0.0, 0
        epoch_start = time.perf_counter()
        batches, global_sizes = _epoch_batches(next_epoch, params.seed, epoch, here)
        if cached:
            source = ((None, label_tensor[idx], feats["train"][idx]) for idx in (torch.as_tensor([i for i, _ in b]) for b in batches))
        else:
            loader = DataLoader(dataset, batch_sampler=batches, num_workers=t.num_workers, pin_memory=device.type == "cuda")
            source = ((images, lab, None) for images, lab in loader)
        for b, (images, batch_labels, features) in enumerate(source):
            n = len(batch_labels)
            # this rank's share of the global mean (pointwise); pair losses already return world x the global loss
            weight = n * here.size / global_sizes[b] if here.distributed and pointwise else 1.0
            unscale = weight if pointwise else here.size  # what the returned loss was multiplied by
            loss = objective(_to(images, device), _to(features, device), batch_labels.to(device), weight)
            _check_finite(loss, epoch, step, params.lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            scheduler.step_update(step)
            total += loss.item() / unscale * n
            count += n
        total, count = ddp.all_sum([total, float(count)])
        count = int(count)
        seen += count
        step_seconds += time.perf_counter() - epoch_start
        row = {"epoch": epoch, "train_loss": total / max(count, 1)}
        model.eval()
        loss_fn.eval()
        with torch.inference_mode():
            if cached:
                val = {name: model.head(feats[name].to(device)).cpu() for name in ("holdout", "val_query", "val_gallery") if name in feats}
            else:
                val = _embed_parts(model, {"holdout": hold, "val_query": data.val_query, "val_gallery": data.val_gallery},
                                   ev, params.embed.batch_size, t.num_workers, flip, "train: validation")
            if hold:
                row["val_loss"] = float(loss_fn(val["holdout"].to(device), _labels([p for _, p in hold], classes).to(device)))
            if data.val_query and data.val_gallery:
                for adapt in ADAPTATIONS:  # val_score (plain), val_score_center, ...: what embed.adapt auto chooses from
                    row[val_score_key(adapt)] = _retrieval_score(val["val_query"].numpy(), [p for _, p in data.val_query],
                                                val["val_gallery"].numpy(), [p for _, p in data.val_gallery], adapt)
        history.append(row)
        value = {"val_score": row.get("val_score", 0.0), "val_loss": -row.get("val_loss", 0.0), "last": epoch}[select]
        improved = ddp.broadcast(value > best_value)  # rank 0 decides, so the ranks stop together
        if improved:
            best_value, best_epoch, bad_epochs = value, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
        log.info("epoch %d: %s%s", epoch, ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"), " *" if improved else "")
        if log_epoch and here.main:
            log_epoch(epoch, row)
        stopped = bool(t.patience and bad_epochs >= t.patience)
        if checkpoint is not None and key and here.main:
            checkpoints.save(checkpoint, {
                "key": key, "epoch": epoch, "stopped": stopped, "model": model.state_dict(), "loss": loss_fn.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": checkpoints.rng_state(gen),
                "sampler_epoch": getattr(sampler, "epoch", 0), "history": history, "best_value": best_value,
                "best_state": None if best_epoch == epoch else best_state,  # None: the model itself (saves its size on disk)
                "best_epoch": best_epoch, "bad_epochs": bad_epochs, "seen": seen, "step": step, "step_seconds": step_seconds,
                "seconds": earlier_seconds + time.perf_counter() - start})
            _stop_here_for_tests(epoch)
        if stopped:
            log.info("early stop: no %s improvement for %d epochs", select, t.patience)
            break
    model.load_state_dict(best_state)
    model.cpu().eval()
    return TrainResult(model, best_epoch, history, earlier_seconds + time.perf_counter() - start, seen, step_seconds)


def _stop_here_for_tests(epoch: int) -> None:
    """STYLEID_KILL_AFTER_EPOCH=n: the process kills itself (SIGKILL, no cleanup) once epoch n's checkpoint is on
    disk: how the resume test stands in for a power cut or an out-of-memory kill."""
    import os
    import signal

    if os.environ.get("STYLEID_KILL_AFTER_EPOCH") == str(epoch):
        os.kill(os.getpid(), signal.SIGKILL)
