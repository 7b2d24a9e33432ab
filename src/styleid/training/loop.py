"""The training loop: one plain loop over epochs and batches (after nanoGPT), the same for one process or many.

What varies lives behind small objects: the process group (training/process_group.py: a no-op for one
process, DDP under torchrun), the batch source (training/batches.py: images, or a frozen backbone's
cached features), validation and checkpoint selection (training/validation.py), resumable state
(training/checkpoint.py). Every image's augmentation is seeded by its place in the epoch, not by the
process, so one process and several see the same augmented images and take the same steps.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from styleid.errors import ParamsError, StyleidError
from styleid.inference.transforms import eval_input_transform, eval_transform, prepare_batch
from styleid.models.embedder import Embedder, build, model_config
from styleid.params import Params
from styleid.progress import bar
from styleid.training import checkpoint as checkpoints
from styleid.training.batches import FeatureBatches, ImageBatches
from styleid.training.datasets import TrainDataset
from styleid.training.freeze import apply_freeze, backbone_frozen, set_train_mode
from styleid.training.losses import LossConfig, create_loss, per_sample_mean
from styleid.training.optim import create_optimizer, create_scheduler, param_groups
from styleid.training.process_group import ProcessGroup, to_device
from styleid.training.samplers import CrossDomainBatchSampler, class_balanced, has_cross_domain_people
from styleid.training.transforms import train_transform
from styleid.training.validation import Selection, selection_metric, validate

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


def _check_finite(loss: torch.Tensor, epoch: int, step: int, lr: float) -> None:
    if not torch.isfinite(loss):
        raise StyleidError(f"training: the loss became {loss.item()} at epoch {epoch} step {step}; lower lr (now {lr}) or check the data")


class _Objective(nn.Module):
    """Model + loss as one module, so DistributedDataParallel syncs the loss's own parameters too."""

    def __init__(self, model: Embedder, loss_fn: nn.Module):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, images: torch.Tensor | None, features: torch.Tensor | None, labels: torch.Tensor, weight: float) -> torch.Tensor:
        if features is not None:
            return self.loss_fn(self.model.head(features), labels) * weight
        emb = self.model(prepare_batch(self.model.spec, images).contiguous(memory_format=torch.channels_last))
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


def _loss_config(t) -> LossConfig:
    return LossConfig(**{f.name: getattr(t, f.name) for f in dataclasses.fields(LossConfig)})


def train(params: Params, data: TrainSet, log_epoch: Callable[[int, dict], None] | None = None,
          checkpoint: Path | None = None, key: str = "", init: Embedder | None = None) -> TrainResult:
    """Train (from `init`'s weights when given, else params' pretrained backbone); with `checkpoint`, save everything at the end of
    every epoch and go on from a checkpoint written under the same `key` (the same params and data), ending as an uninterrupted run would."""
    seed_everything(params.seed)
    t = params.train
    group = ProcessGroup()
    device = group.device
    model = copy.deepcopy(init) if init is not None else build(model_config(params), data.image_side)
    apply_freeze(model, t.freeze, t.unfreeze_last_n)
    classes = {p: i for i, p in enumerate(sorted({p for _, p in data.train}))}
    loss_fn = create_loss(t.loss, model.spec.out_dim, len(classes), _loss_config(t))
    model.to(device)
    loss_fn.to(device)
    model = group.sync_batchnorm(model)
    if not any(p.requires_grad for p in [*model.parameters(), *loss_fn.parameters()]):
        raise ParamsError(f"train: nothing to train: train.freeze=all, model.embed_dim=0 and train.loss={t.loss} has no parameters; "
                          "set model.embed_dim > 0 or train.freeze to none or last_n")
    start = time.perf_counter()
    ev = eval_transform(model.spec)
    gen = torch.Generator().manual_seed(params.seed)

    labels = [classes[p] for _, p in data.train]
    domains = data.train_domains or ["photo"] * len(labels)
    next_epoch, sampler = _batch_plan(params, labels, domains, gen)
    steps_per_epoch = max(1, group.broadcast(len(next_epoch()) if group.main else None))  # rank 0 draws; the count is all the others need
    groups = param_groups(model, loss_fn, params.lr, t.weight_decay, t.layer_decay, t.loss_lr)
    optimizer = create_optimizer(groups, t.optimizer, params.lr, t.weight_decay, device.type)
    scheduler = create_scheduler(optimizer, t.schedule, params.lr, params.epochs * steps_per_epoch, round(t.warmup_epochs * steps_per_epoch))
    hold = [(path, person) for path, person in data.holdout if person in classes]
    pointwise = per_sample_mean(loss_fn)
    train_loss = group.pair_loss(loss_fn, pointwise)
    objective = group.wrap(_Objective(model, train_loss))
    val_parts = {"holdout": hold, "val_query": data.val_query, "val_gallery": data.val_gallery}
    e = params.embed
    if backbone_frozen(model) and not t.augment:
        source = FeatureBatches(model.backbone, data.train, labels, val_parts, eval_input_transform(model.spec), e.batch_size,
                                t.num_workers, group)
    else:
        styles = params.augment.styles
        dataset = TrainDataset([p for p, _ in data.train], labels, domains, train_transform(model.spec, t.augment, params.augment, styles, photo=True),
                               train_transform(model.spec, t.augment, params.augment, styles, photo=False), t.decoded_cache_gb * 1e9)
        source = ImageBatches(dataset, val_parts, ev, e.batch_size, t.num_workers, e.flip_tta, group)
    holdout_labels = torch.tensor([classes[p] for _, p in hold], dtype=torch.long) if hold else None
    q_people, g_people = [p for _, p in data.val_query], [p for _, p in data.val_gallery]
    best = Selection(selection_metric(t.select_by, bool(data.val_query), bool(hold)))
    run = Progress()
    resumed = checkpoints.load(checkpoint, key) if checkpoint is not None and key else None
    if resumed is not None and checkpoints.resume(resumed, run, best, model, loss_fn, optimizer, scheduler, gen, sampler):
        log.info("train: resuming after epoch %d of %d (checkpoint %s)", run.epoch, params.epochs, checkpoint)
        if log_epoch and group.main:
            for row in run.history:  # the logs of the epochs already run, as an uninterrupted run wrote them
                log_epoch(row["epoch"], row)

    for epoch in range(run.epoch + 1, params.epochs + 1):
        if run.stopped:
            break
        set_train_mode(model, t.frozen_bn)
        train_loss.train()
        total, count = 0.0, 0
        epoch_start = time.perf_counter()
        batches, global_sizes = group.epoch_batches(next_epoch, params.seed, epoch)
        progress = bar(source.epoch(batches), total=len(batches), desc=f"train: epoch {epoch}/{params.epochs}", unit="batch",
                       leave=False, mininterval=2.0, hide=not group.main)  # live loss, images/s and ETA
        for b, (images, batch_labels, features) in enumerate(progress):
            n = len(batch_labels)
            weight, unscale = group.loss_weight(n, global_sizes[b], pointwise)
            loss = objective(to_device(images, device), to_device(features, device), batch_labels.to(device), weight)
            _check_finite(loss, epoch, run.step, params.lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            run.step += 1
            scheduler.step_update(run.step)
            total += loss.item() / unscale * n
            count += n
            if b % 10 == 0:
                progress.set_postfix(loss=f"{total / max(count, 1):.3f}", img_s=f"{count * group.size / (time.perf_counter() - epoch_start):.1f}", refresh=False)
        total, count = group.all_sum([total, float(count)])
        run.seen += int(count)
        run.step_seconds += time.perf_counter() - epoch_start
        row = {"epoch": epoch, "train_loss": total / max(int(count), 1)}
        model.eval()
        loss_fn.eval()
        with torch.inference_mode():
            row.update(validate(source.validation(model), loss_fn, holdout_labels, q_people, g_people, device))
        run.history.append(row)
        value = best.value(row)
        improved = group.broadcast(value > best.best_value)  # rank 0 decides, so the processes stop together
        best.update(improved, value, epoch, model)
        log.info("epoch %d: %s%s", epoch, ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"), " *" if improved else "")
        if log_epoch and group.main:
            log_epoch(epoch, row)
        run.epoch, run.stopped = epoch, bool(t.patience and best.bad_epochs >= t.patience)
        last = run.stopped or epoch == params.epochs  # the model is saved right after: a kill before that reruns this epoch
        if checkpoint is not None and key and group.main and not last:
            checkpoints.save(checkpoint, checkpoints.state(key, run, best, model, loss_fn, optimizer, scheduler, gen, sampler,
                                                           run.seconds + time.perf_counter() - start))
            checkpoints.stop_here_for_tests(epoch)
        if run.stopped:
            log.info("early stop: no %s improvement for %d epochs", best.metric, t.patience)
            break
    model.load_state_dict(best.best_state)
    model.cpu().eval()
    return TrainResult(model, best.best_epoch, run.history, run.seconds + time.perf_counter() - start, run.seen, run.step_seconds)


@dataclass
class Progress:
    """The loop's counters, as a checkpoint carries them."""

    epoch: int = 0  # the last epoch finished
    stopped: bool = False  # early stopping fired after it
    history: list[dict] = field(default_factory=list)
    seen: int = 0  # training images seen
    step: int = 0  # optimiser steps
    step_seconds: float = 0.0
    seconds: float = 0.0  # time spent by earlier (interrupted) runs

