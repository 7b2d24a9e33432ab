"""The `ray` embedding engine: the image list as a Ray dataset, decoded by tasks, embedded by an actor pool.

Decoding runs as stateless map_batches tasks (they scale over the cluster's CPUs) and the model in a
pool of actors that each load it once (one GPU each when the cluster has GPUs); without GPUs, Ray
fuses the two steps into the actors. The model travels through Ray's object store, so workers need the images but not the repository's models/.
Blocks come back in dataset order (preserve_order), so rows line up with the split as in the local engine.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from styleid.errors import ParamsError, StyleidError
from styleid.inference.transforms import eval_transform
from styleid.models.spec import spec_from_json
from styleid.params import EmbedParams

log = logging.getLogger(__name__)
DECODE_CPUS = 1  # each decoding task's CPU reservation


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise StyleidError("embed.engine: ray needs Ray Data; pip install 'styleid[distributed]' or set embed.engine: local") from None
    return ray


def _decode(batch: dict, transform) -> dict:
    """Images -> model input tensors, through the local engine's dataset (same loader, transform and errors)."""
    import torch

    from styleid.inference.dataset import ImageDataset

    images = ImageDataset([Path(p) for p in batch["path"]], transform)
    return {"row": batch["row"], "image": torch.stack([images[i] for i in range(len(images))]).numpy()}


class _EmbedActor:
    """One model replica: built once from the object store, then fed batches of decoded images."""

    def __init__(self, model_ref: list, flip: bool, threads: int):
        import ray
        import torch

        from styleid.devices import best
        from styleid.models.embedder import loads

        torch.set_num_threads(max(1, threads))
        spec_json, weights = ray.get(model_ref[0])  # wrapped in a list so Ray hands over the reference, not a copy per actor
        use_gpu = bool(ray.get_gpu_ids())
        self.model = loads(spec_json, weights).to(best() if use_gpu else "cpu").eval()
        self.flip = flip

    def __call__(self, batch: dict) -> dict:
        import torch

        from styleid.inference.embed import embed_batch

        with torch.inference_mode():
            out = embed_batch(self.model, torch.from_numpy(batch["image"]), self.flip).cpu().numpy()
        return {"row": batch["row"], "embedding": out.astype(np.float32)}


class RayEngine:
    """A Ray session for the embed stage: connects (or starts a local cluster) on enter, shuts down what it started."""

    def __init__(self, model_dir: Path, params: EmbedParams, num_cpus: int | None = None):
        self.model_dir, self.params, self.num_cpus = Path(model_dir), params, num_cpus
        if params.precision == "int8":
            raise ParamsError(f"embed.engine ray runs the torch model, which has no {params.precision}; set embed.precision: fp32 or embed.engine: local")
        self.ray = require_ray()
        self._started = False

    def __enter__(self) -> "RayEngine":
        ray = self.ray
        if not ray.is_initialized():
            address = self.params.ray_address or None
            _check_reachable(address)
            try:
                ray.init(address=address, num_cpus=self.num_cpus if address is None else None, include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise StyleidError(f"embed.ray_address: cannot reach a Ray cluster at {address!r} ({str(exc).strip().splitlines()[-1]}); "
                                   "start one (`ray start --head`) or set embed.ray_address: \"\" for a local cluster") from None
            self._started = True
        for name in ("ray", "ray.data"):  # Ray's progress chatter; warnings and errors still show
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            self._prepare()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _prepare(self) -> None:
        ray = self.ray
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows come back in the split's order
        context.enable_progress_bars = False
        spec_json = json.loads((self.model_dir / "model.json").read_text())
        self._transform = eval_transform(spec_from_json(spec_json))  # built once here, shipped to the decoding tasks
        self._model_ref = ray.put((spec_json, (self.model_dir / "model.safetensors").read_bytes()))
        resources = ray.cluster_resources()
        self._gpus = self.params.ray_gpus_per_actor if resources.get("GPU", 0) > 0 else 0
        self.actors = actor_count(self.params, resources.get("CPU", 0), resources.get("GPU", 0))
        log.info("embed: Ray cluster with %s CPUs, %s GPUs; %d model actors", resources.get("CPU", 0), resources.get("GPU", 0), self.actors)

    def __exit__(self, *exc) -> None:
        if self._started:
            self.ray.shutdown()

    def iter_embed(self, paths: Sequence[Path]) -> Iterator[np.ndarray]:
        """Embeddings of `paths`, in order, one block at a time."""
        if not paths:
            return
        ray, p = self.ray, self.params
        items = [{"row": i, "path": str(Path(path).absolute())} for i, path in enumerate(paths)]  # workers may start elsewhere
        blocks = min(len(items), max(self.actors, min(-(-len(items) // p.batch_size), 16 * self.actors)))  # every actor gets work
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        ds = ds.map_batches(_decode, fn_kwargs={"transform": self._transform}, batch_size=p.batch_size, num_cpus=DECODE_CPUS)
        ds = ds.map_batches(_EmbedActor, fn_constructor_kwargs={"model_ref": [self._model_ref], "flip": p.flip_tta,
                                                                "threads": int(p.ray_cpus_per_actor)},
                            batch_size=p.batch_size, compute=ray.data.ActorPoolStrategy(size=self.actors), num_cpus=p.ray_cpus_per_actor, num_gpus=self._gpus)
        expected = 0
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                rows = batch["row"]
                if len(rows) and (rows[0] != expected or np.any(np.diff(rows) != 1)):
                    raise StyleidError(f"embed: Ray returned rows out of order at row {expected}; this is a bug, please report it")
                expected += len(rows)
                yield batch["embedding"]
        except ray.exceptions.RayError as exc:
            raise StyleidError(f"embed: the Ray job failed: {_last_line(exc)}") from None
        if expected != len(paths):
            raise StyleidError(f"embed: Ray returned {expected} of {len(paths)} embeddings")


def actor_count(params: EmbedParams, cpus: float, gpus: float) -> int:
    """How many model replicas: as asked, or auto; an ask the cluster cannot hold is an error, not a hang.

    Without GPUs Ray fuses decoding into the actors (same resources), so the actors may take every
    CPU; with GPUs decoding runs as separate CPU tasks and needs a CPU beside the actors.
    """
    use_gpus = gpus > 0 and params.ray_gpus_per_actor > 0
    spare = DECODE_CPUS if use_gpus else 0
    if params.ray_actors:
        actors = params.ray_actors
    elif use_gpus:
        actors = max(1, int(gpus // params.ray_gpus_per_actor))
    else:
        actors = max(1, int(cpus // params.ray_cpus_per_actor))
    if actors * params.ray_cpus_per_actor + spare > cpus:
        raise StyleidError(f"embed.ray_actors: {actors} actors x {params.ray_cpus_per_actor} CPUs do not fit a cluster of {cpus:g} CPUs"
                           + (" with one left for decoding" if spare else "") + "; lower embed.ray_actors or embed.ray_cpus_per_actor (0 actors = auto)")
    if use_gpus and actors * params.ray_gpus_per_actor > gpus:
        raise StyleidError(f"embed.ray_actors: {actors} actors x {params.ray_gpus_per_actor} GPUs is more than the cluster's {gpus:g} GPUs")
    return actors


def _check_reachable(address: str | None) -> None:
    """A host:port that refuses connections fails now, in one line (ray.init would retry for minutes)."""
    if address in (None, "auto", "local"):
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise StyleidError(f"embed.ray_address: {address!r} is not host:port, ray://host:port, auto or \"\" (a local cluster)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise StyleidError(f"embed.ray_address: cannot reach a Ray cluster at {address!r} ({exc.strerror or exc}); "
                           "start one (`ray start --head`) or set embed.ray_address: \"\" for a local cluster") from None


def _last_line(exc: BaseException) -> str:
    """The worker's own error line: Ray appends its wrappers after "The above exception was the direct cause"."""
    text = str(exc).split("The above exception was the direct cause")[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
