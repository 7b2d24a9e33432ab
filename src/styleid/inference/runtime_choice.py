"""embed.runtime auto among several installed ONNX runtimes: the faster one on this machine, measured once, remembered.

Which runtime runs an export faster depends on the CPU: `make bench` found ONNX Runtime ahead on an AVX2 machine and
OpenVINO ahead in int8 on an AVX-512 VNNI one (the README's Speed section has the figures). So no fixed order is right
everywhere. auto times a few forward
passes of the model's own export with each candidate, takes the fastest, and keeps the answer in the user's cache. The
key is the CPU, the thread count, the runtimes' versions, the model's shape and the precision. The same machine then
always embeds with the same runtime, so the same params give the same embeddings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from styleid.fileio import read_json, user_cache_dir, write_json

log = logging.getLogger(__name__)

CACHE_FILE = "runtime_choice.json"
CLEAR_WIN = 1.05  # another runtime replaces the first in the usual order only when at least this much faster (noise stays put)
BATCH = 8  # images per timed pass: enough to fill the threads, quick enough to time on first use
TIMED_PASSES = 3  # per runtime, interleaved; the fastest pass counts (other work on the machine only slows passes down)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def choice_key(candidates: list[str], shape: dict, precision: str, threads: int) -> str:
    """What a remembered choice is valid for: this CPU and thread count, these runtimes at these versions, this model
    shape (architecture and input size, not its weights) and precision."""
    what = {"cpu": _cpu_name(), "machine": platform.machine(), "threads": threads, "precision": precision, "shape": shape,
            "runtimes": {name: _version(name) for name in candidates}}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def measure(models: dict[str, Callable[[np.ndarray], object]], input_size: int) -> dict[str, float]:
    """Images/s of each model on the same random batch: one warm-up pass each, then TIMED_PASSES interleaved passes,
    the fastest counting."""
    batch = np.random.default_rng(0).standard_normal((BATCH, 3, input_size, input_size), dtype=np.float32)
    for run in models.values():
        run(batch)
    best = dict.fromkeys(models, float("inf"))
    for _ in range(TIMED_PASSES):
        for name, run in models.items():
            start = time.perf_counter()
            run(batch)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: BATCH / seconds for name, seconds in best.items()}


def pick(speeds: dict[str, float]) -> str:
    """The first runtime in the usual order (speeds' order) unless another is clearly faster."""
    first = next(iter(speeds))
    fastest = max(speeds, key=speeds.get)
    return fastest if speeds[fastest] >= CLEAR_WIN * speeds[first] else first


def cache_path() -> Path:
    return user_cache_dir() / CACHE_FILE


def fastest(candidates: list[str], load: Callable[[str], Callable[[np.ndarray], object]], shape: dict, precision: str,
            threads: int, cache: Path | None = None) -> str:
    """The remembered choice for this key, else the measured one (remembered from then on). load(name) -> a callable
    running one float32 NCHW batch; shape holds the model's input_size."""
    cache = cache or cache_path()
    key = choice_key(candidates, shape, precision, threads)
    try:
        known = read_json(cache) if cache.is_file() else {}
    except (OSError, ValueError):
        log.warning("%s: unreadable, so the runtime is measured again and the file rewritten", cache)
        known = {}
    if known.get(key, {}).get("runtime") in candidates:
        return known[key]["runtime"]
    speeds = measure({name: load(name) for name in candidates}, int(shape["input_size"]))
    chosen = pick(speeds)
    log.info("embed.runtime auto: %s (measured here, %s precision: %s images/s); remembered in %s", chosen, precision,
             ", ".join(f"{n} {s:.0f}" for n, s in speeds.items()), cache)
    known[key] = {"runtime": chosen, "images_per_s": {n: round(s, 1) for n, s in speeds.items()}, "cpu": _cpu_name(),
                  "threads": threads, "precision": precision, "shape": shape}
    try:
        write_json(cache, known)
    except OSError as e:  # a read-only home still embeds; it measures again next time
        log.warning("%s: cannot remember the runtime choice (%s)", cache, e.strerror or e)
    return chosen
