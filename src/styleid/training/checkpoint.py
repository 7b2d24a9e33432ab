"""Resumable training: everything the loop needs to go on from the end of an epoch, saved atomically.

The checkpoint carries a key (a hash of the params and of what the stage reads); one written under
another key is ignored, so a changed param or dependency starts afresh. It is read with
torch.load(weights_only=True): tensors, numbers, strings and containers only, never pickled objects.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from styleid.fileio import atomic_path

log = logging.getLogger(__name__)

# what the training loop's state holds (state below): a checkpoint under the right key without one of these cannot be
# resumed, and is ignored as an unreadable one is
FIELDS = ("epoch", "stopped", "model", "loss", "optimizer", "scheduler", "rng", "sampler_epoch", "history", "best_value",
          "best_state", "best_epoch", "bad_epochs", "seen", "step", "step_seconds", "seconds")


def run_key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def files_key(paths: list[Path]) -> str:
    """A hash of files' contents (missing files count as empty), for run_key."""
    return run_key(*[p.read_bytes() if p.is_file() else b"" for p in paths])


def stage_key(params_file: Path, stage_file: str, inputs: list[Path]) -> str:
    """What a stage's checkpoint must have been written under to be resumed: these params, these inputs, this code
    (every styleid module and the stage script)."""
    import styleid

    code = sorted(Path(styleid.__file__).parent.rglob("*.py")) + [Path(stage_file)]
    return run_key(params_file.read_bytes(), files_key(inputs), files_key(code))


def rng_state(gen: torch.Generator) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # pytorch-metric-learning's sampler draws from numpy's global RNG
    return {"torch": torch.get_rng_state(), "generator": gen.get_state(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}}


def restore_rng(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["generator"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))


def save(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _read(path: Path) -> object | None:
    """What `path` holds, as saved; None when there is nothing there or it is unreadable."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged checkpoint is no reason to stop: train from the start
        log.warning("train: ignoring the unreadable checkpoint %s (%s); training from the start", path, exc.__class__.__name__)
        return None
    return state


def load(path: Path, key: str, fields: tuple[str, ...] = FIELDS) -> dict | None:
    """The checkpoint at `path` if it was written under `key` and holds `fields` (the loop's, by default), else None (and it
    will be overwritten)."""
    if (state := _read(path)) is None:
        return None
    if not isinstance(state, dict) or state.get("key") != key:
        log.info("train: the checkpoint in %s is from other params or data; training from the start", path.parent)
        return None
    if state.get("finished"):
        return None  # that run ended and saved its model; nothing to go on with
    missing = [name for name in fields if name not in state]
    if missing or any(not isinstance(state.get(name), dict) for name in ("rng", "model") if name in fields):
        log.warning("train: ignoring the incomplete checkpoint %s (no %s); training from the start", path,
                    ", ".join(missing) or "usable rng or model state")
        return None
    return state


def state(key: str, run, best, model, loss_fn, optimizer, scheduler, gen, sampler, seconds: float) -> dict:
    """Everything the loop needs to go on after this epoch: the run's progress, the selection so far, every state."""
    return {"key": key, "epoch": run.epoch, "stopped": run.stopped, "model": model.state_dict(), "loss": loss_fn.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(gen),
            "sampler_epoch": getattr(sampler, "epoch", 0), "history": run.history, "best_value": best.best_value,
            "best_state": None if best.best_epoch == run.epoch else best.best_state,  # None: the model itself (saves its size on disk)
            "best_epoch": best.best_epoch, "bad_epochs": best.bad_epochs, "seen": run.seen, "step": run.step,
            "step_seconds": run.step_seconds, "seconds": seconds}


def _fits(saved: dict, module) -> bool:
    mine = module.state_dict()
    return isinstance(saved, dict) and set(saved) == set(mine) and all(
        getattr(saved[k], "shape", None) == v.shape for k, v in mine.items() if isinstance(v, torch.Tensor))


def resume(state: dict, run, best, model, loss_fn, optimizer, scheduler, gen, sampler) -> bool:
    """Put a loaded checkpoint's state back into the run; False, changing nothing, when its tensors do not fit this model,
    loss and optimiser (then training starts afresh, and the next save replaces it)."""
    if not (_fits(state["model"], model) and _fits(state["loss"], loss_fn)
            and len(state["optimizer"].get("param_groups", [])) == len(optimizer.param_groups)):
        log.warning("train: ignoring the checkpoint whose tensors do not fit this model; training from the start")
        return False
    model.load_state_dict(state["model"])
    loss_fn.load_state_dict(state["loss"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"], gen)
    if sampler is not None:
        sampler.epoch = state["sampler_epoch"]
    best.best_value, best.best_epoch, best.bad_epochs = state["best_value"], state["best_epoch"], state["bad_epochs"]
    best.best_state = state["best_state"] if state["best_state"] is not None else copy.deepcopy(model.state_dict())
    for name in ("epoch", "stopped", "history", "seen", "step", "step_seconds", "seconds"):
        setattr(run, name, state[name])
    return True


def finish(path: Path, key: str, kept: dict | None = None) -> None:
    """After the model is saved: shrink the checkpoint to a marker (the full state is hundreds of MB). `kept`: what the
    run left that the stage still needs if it is killed before its end (a fine-tune's weights), read back by `finished`."""
    save(path, {"key": key, "finished": True, **({"kept": kept} if kept is not None else {})})


def finished(path: Path, key: str) -> dict | None:
    """What a run that finished under `key` kept at `path` (see finish), else None."""
    state = _read(path)
    return state.get("kept") if isinstance(state, dict) and state.get("key") == key and state.get("finished") else None


def stop_here_for_tests(epoch: int) -> None:
    """STYLEID_KILL_AFTER_EPOCH=n: the process kills itself (SIGKILL, no cleanup) once epoch n's checkpoint is on
    disk: how the resume tests stand in for a power cut or an out-of-memory kill."""
    import os
    import signal

    if os.environ.get("STYLEID_KILL_AFTER_EPOCH") == str(epoch):
        os.kill(os.getpid(), signal.SIGKILL)
