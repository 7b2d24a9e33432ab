"""Several training processes with PyTorch's own machinery: torchrun starts them, DDP syncs gradients.

The train stage relaunches itself under torchrun when train.nproc > 1 (or runs as it is when a user
launched it with torchrun, e.g. across nodes). Every rank reads the same split and params; rank 0
draws each epoch's batches and broadcasts them, so the ranks can never disagree on the step count.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist

from styleid import devices
from styleid.errors import ParamsError, StyleidError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        return devices.best(self.local_rank)


def launched() -> bool:
    """True inside a process that torchrun started."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def world() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def init() -> World:
    """Join the process group torchrun set up: nccl when each process has a GPU, gloo otherwise."""
    if not launched() or int(os.environ["WORLD_SIZE"]) == 1:
        return World()
    here = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    device = here.device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    # validation and checkpointing happen between collectives; a long one must not look like a hang
    dist.init_process_group(backend, timeout=datetime.timedelta(hours=2))
    log.info("train: rank %d of %d on %s (%s)", here.rank, here.size, device, backend)
    return here


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(obj: Any, src: int = 0) -> Any:
    """rank src's object on every rank (identity when not distributed)."""
    if not world().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather(obj: Any) -> list[Any]:
    """Every rank's object, in rank order."""
    if not world().distributed:
        return [obj]
    boxes: list[Any] = [None] * world().size
    dist.all_gather_object(boxes, obj)
    return boxes


def all_sum(values: list[float]) -> list[float]:
    if not world().distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=world().device)
    dist.all_reduce(t)
    return t.tolist()


def run(nproc: int, script: str, script_args: list[str], body: Callable[[World], None]) -> None:
    """Run body(world) in nproc processes: `script` relaunches itself under torchrun when nproc > 1 and this is
    not yet a torchrun process; each process joins the group, runs body (rank 0 speaks for all), and leaves."""
    if nproc > 1 and not launched():
        launch(nproc, script, script_args)
        return
    here = init()
    try:
        if not here.main:
            logging.getLogger().setLevel(logging.WARNING)
        body(here)
    finally:
        shutdown()


def check_nproc(nproc: int) -> None:
    if devices.best().type == "cuda" and nproc > torch.cuda.device_count():
        raise ParamsError(f"train.nproc: {nproc} processes but {torch.cuda.device_count()} GPUs; NCCL needs one GPU per process")


def launch(nproc: int, script: str, script_args: list[str]) -> None:
    """Run `script` in nproc processes with torchrun (single node); raises StyleidError if any fails."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    check_nproc(nproc)
    if "OMP_NUM_THREADS" not in os.environ:  # torchrun would pin every process to one thread
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the workers say what went wrong
    args = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", script, *script_args])
    try:
        run(args)
    except ChildFailedError as exc:
        # once one process fails, torchrun sends SIGTERM to the rest: those that had not finished yet stopped, not failed
        # (which ones depends on timing); they count only when every process ended that way (a kill from outside)
        failed = [f for f in exc.failures.values() if f.exitcode != -signal.SIGTERM] or list(exc.failures.values())
        codes = sorted({f.exitcode for f in failed})
        raise StyleidError(f"train: {len(failed)} of {nproc} training processes failed (exit code {', '.join(map(str, codes))}); "
                           "their own messages are above") from None
