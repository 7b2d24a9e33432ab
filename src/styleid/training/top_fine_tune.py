"""The self-training fine-tune: the top of the model (models/split.py) trained on cached views of the pseudo-labelled images.

Each epoch is one pass over the clustered images in the training recipe's cross-domain batches, each image as one of its
cached views drawn at random (training/view_cache.py), pulled toward its pseudo-person's centroids in a memory that
follows the model by momentum (training/cluster_memory.py). The trunk never runs here. BatchNorm statistics are held
and dropout is on, as training holds and uses them. Resumable: the state after each epoch, and once it ends, its weights.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch

from styleid.errors import StyleidError
from styleid.models.embedder import Embedder
from styleid.models.split import split
from styleid.params import Params
from styleid.training import checkpoint as checkpoints
from styleid.training.cluster_memory import create_memory
from styleid.training.freeze import set_train_mode
from styleid.training.loop import TrainResult, seed_everything
from styleid.training.optim import create_optimizer, create_scheduler
from styleid.training.samplers import CrossDomainBatchSampler
from styleid.training.view_cache import Cached, embed_cached

log = logging.getLogger(__name__)

FIELDS = ("epoch", "model", "memory", "optimizer", "scheduler", "rng", "sampler_epoch", "history", "seen", "step", "seconds")


def self_train(model: Embedder, params: Params, cached: Cached, pseudo: np.ndarray,
               checkpoint: tuple[Path, str] | None = None) -> TrainResult:
    """Fine-tune `model`'s top on the cached images with a pseudo-person (pseudo >= 0); `model` itself is left as it was.
    `checkpoint` (path, key): go on from, or return at once what, a fine-tune killed or finished under that key left there."""
    if checkpoint is not None and (kept := checkpoints.finished(*checkpoint)) is not None:
        log.info("self_train: %s finished before this run was stopped; its weights are reused", checkpoint[0].stem)
        done = copy.deepcopy(model)
        done.load_state_dict({**done.state_dict(), **kept.pop("model")})
        return TrainResult(done.eval(), **kept)
    result, top = _fine_tune(model, params, cached, pseudo, checkpoint)
    if checkpoint is not None:
        path, key = checkpoint
        checkpoints.finish(path, key, {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "model"}
                           | {"model": top})
    return result


def _trained_keys(model: Embedder, modules: list[torch.nn.Module]) -> list[str]:
    """The state-dict names of what the top holds: all a checkpoint needs (the trunk never changes)."""
    ids = {id(t) for m in modules for t in [*m.parameters(), *m.buffers()]}
    return [k for k, v in model.state_dict(keep_vars=True).items() if id(v) in ids]


def _fine_tune(model: Embedder, params: Params, cached: Cached, pseudo: np.ndarray,
               checkpoint: tuple[Path, str] | None) -> tuple[TrainResult, dict]:
    s, t = params.self_train, params.train
    seed_everything(params.seed)
    start = time.perf_counter()
    tuned = copy.deepcopy(model)
    parts = split(tuned, s.top_stages)
    keep = np.flatnonzero(np.asarray(pseudo) >= 0)
    views = cached.views[torch.from_numpy(keep)]
    labels = torch.as_tensor(np.asarray(pseudo)[keep], dtype=torch.long)
    domains = [cached.domains[i] for i in keep]
    photo = torch.tensor([d == "photo" for d in domains], dtype=torch.long)
    first = torch.from_numpy(embed_cached(parts, views, params.embed.flip_tta))
    memory = create_memory(s.memory, first, labels, photo, s.temperature, s.momentum)
    tuned.requires_grad_(False)
    trains = parts.parameters()
    for p in trains:
        p.requires_grad_(True)
    keys = _trained_keys(tuned, parts.trains)
    sampler = CrossDomainBatchSampler(labels.tolist(), domains, max(2, t.m_per_class or 4), params.batch_size, params.seed)
    optimizer = create_optimizer([{"params": trains, "weight_decay": t.weight_decay, "lr_scale": 1.0}], t.optimizer, s.lr, t.weight_decay)  # the recipe's, fused
    scheduler = create_scheduler(optimizer, "cosine", s.lr, s.epochs * len(sampler), 0)
    gen = torch.Generator().manual_seed(params.seed)
    epoch, step, seen, history, before = 0, 0, 0, [], 0.0
    state = checkpoints.load(checkpoint[0], checkpoint[1], FIELDS) if checkpoint is not None else None
    if state is not None:
        tuned.load_state_dict({**tuned.state_dict(), **state["model"]})
        memory.load_state_dict(state["memory"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        checkpoints.restore_rng(state["rng"], gen)
        sampler.epoch = state["sampler_epoch"]
        epoch, step, seen, history, before = state["epoch"], state["step"], state["seen"], state["history"], state["seconds"]
        log.info("self_train: resuming after epoch %d of %d (checkpoint %s)", epoch, s.epochs, checkpoint[0])
    n_views = views.shape[1]
    for epoch in range(epoch + 1, s.epochs + 1):
        set_train_mode(tuned, frozen_bn=True)  # dropout on; BatchNorm statistics held, as the fine-tune of the whole model held them
        total = 0.0
        batches = list(sampler)
        for batch in batches:
            idx = torch.tensor(batch)
            x = views[idx, torch.randint(n_views, (len(idx),), generator=gen)].float()
            emb = parts.top(x)
            loss = memory(emb, labels[idx], photo[idx])
            if not torch.isfinite(loss):
                raise StyleidError(f"self_train: the loss became {loss.item()} at epoch {epoch}; lower self_train.lr (now {s.lr})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            scheduler.step_update(step)
            memory.update(emb, labels[idx], photo[idx])
            total += loss.item() * len(idx)
            seen += len(idx)
        history.append({"epoch": epoch, "train_loss": total / max(1, sum(map(len, batches)))})
        if checkpoint is not None and epoch < s.epochs:
            top = {k: v for k, v in tuned.state_dict().items() if k in keys}
            checkpoints.save(checkpoint[0], {"key": checkpoint[1], "epoch": epoch, "model": top, "memory": memory.state_dict(),
                                             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                             "rng": checkpoints.rng_state(gen), "sampler_epoch": sampler.epoch, "history": history,
                                             "seen": seen, "step": step, "seconds": before + time.perf_counter() - start})
            checkpoints.stop_here_for_tests(epoch)
    tuned.requires_grad_(True)
    seconds = before + time.perf_counter() - start
    top = {k: v.detach().clone() for k, v in tuned.state_dict().items() if k in keys}
    return TrainResult(tuned.eval(), s.epochs, history, seconds, seen, seconds), top
