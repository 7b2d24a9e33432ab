"""The training processes as one object: a single process (every method a no-op) or a torchrun group
(DDP over gloo on CPU, nccl on GPUs). The loop calls the same methods either way, with no branches."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from styleid.training import ddp
from styleid.training.samplers import rank_share, seeded_batches


class ProcessGroup:
    def __init__(self, world: ddp.World | None = None):
        self.world = world or ddp.world()

    rank = property(lambda self: self.world.rank)
    size = property(lambda self: self.world.size)
    main = property(lambda self: self.world.main)  # rank 0: logs, saves checkpoints, decides for all
    device = property(lambda self: self.world.device)

    def broadcast(self, obj: Any) -> Any:
        return ddp.broadcast(obj) if self.world.distributed else obj

    def all_gather(self, obj: Any) -> list[Any]:
        return ddp.all_gather(obj) if self.world.distributed else [obj]

    def all_sum(self, values: list[float]) -> list[float]:
        return ddp.all_sum(values) if self.world.distributed else values

    def share(self, items: list) -> list:
        """This process's contiguous share of a list (all of it for one process)."""
        return rank_share([items], self.rank, self.size)[0]

    def sync_batchnorm(self, model: nn.Module) -> nn.Module:
        """Batch statistics over the global batch (several CUDA processes only)."""
        return nn.SyncBatchNorm.convert_sync_batchnorm(model) if self.world.distributed and self.device.type == "cuda" else model

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around the module when there are several processes (gradients averaged)."""
        if not self.world.distributed:
            return module
        device = self.device
        return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    def epoch_batches(self, next_epoch: Callable[[], list[list[int]]], seed: int, epoch: int) -> tuple[list[list[tuple[int, int]]], list[int]]:
        """This process's share of each of the epoch's global batches (with per-item augmentation seeds), and the
        global sizes; rank 0 draws the batches and broadcasts them, so every process agrees."""
        batches = self.broadcast([[int(i) for i in b] for b in next_epoch()] if self.main else None)
        batches = [b for b in batches if len(b) >= self.size]  # every process needs an item in every step
        return rank_share(seeded_batches(batches, seed, epoch), self.rank, self.size), [len(b) for b in batches]

    def loss_weight(self, n: int, global_size: int, pointwise: bool) -> tuple[float, float]:
        """(weight, unscale) for a local batch of n: a per-sample-mean loss is weighted by this process's share, so
        DDP's gradient average is the global batch's mean; a gathered pair loss already returns size x the global
        loss. unscale is what the returned loss was multiplied by (to log the plain value)."""
        weight = n * self.size / global_size if self.world.distributed and pointwise else 1.0
        return weight, (weight if pointwise else float(self.size))

    def pair_loss(self, loss_fn: nn.Module, pointwise: bool) -> nn.Module:
        """Pair losses see every process's embeddings (pytorch-metric-learning's distributed wrappers)."""
        if pointwise or not self.world.distributed:
            return loss_fn
        from styleid.training.losses import distributed_loss

        return distributed_loss(loss_fn)


def to_device(x: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if x is None else x.to(device, non_blocking=True)
