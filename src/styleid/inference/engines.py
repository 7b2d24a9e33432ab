"""Embedding engines, picked by name (embed.engine): each turns image paths into embedding blocks, in order.

`local` runs the model in this process (torch); `ray` spreads decoding and the model over a Ray cluster
(inference/ray_engine.py). An engine is a context manager: it loads the model on enter, frees on exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np

from styleid.params import EmbedParams
from styleid.registry import Registry


class Engine(Protocol):
    def __enter__(self) -> "Engine": ...

    def __exit__(self, *exc) -> None: ...

    def iter_embed(self, paths: Sequence[Path]) -> Iterator[np.ndarray]:
        """float32 (batch, d) blocks of raw (not yet L2-normalised) embeddings, in the order of `paths`."""
        ...


ENGINES: Registry[Callable[[Path, EmbedParams], Engine]] = Registry("embedding engine")  # embed.engine chooses


@ENGINES.register("local")
class LocalEngine:
    """The model in this process, on the best local device; DataLoader workers decode. Where ONNX Runtime runs the export
    on the CPU with decoding in this process, NumPy and Pillow feed it and torch is never imported (inference/onnx_photos.py:
    the same pixels as the torch transform's)."""

    def __init__(self, model_dir: Path, params: EmbedParams):
        self.model_dir, self.params = Path(model_dir), params
        self.transform = None

    def __enter__(self) -> "LocalEngine":
        from styleid.inference.onnx_photos import OnnxPhotoModel, runs_without_torch
        from styleid.inference.onnx_session import onnx_precision, threads_wanted

        if runs_without_torch(self.params.runtime, self.params.num_workers):
            self.model = OnnxPhotoModel(self.model_dir, onnx_precision(self.params.precision, self.model_dir), threads_wanted())
            return self
        from styleid import devices
        from styleid.inference.runtimes import load_runtime
        from styleid.inference.transforms import eval_transform

        self.model = load_runtime(self.params.runtime, self.model_dir, devices.best(), self.params.precision)
        self.transform = eval_transform(self.model.spec)
        return self

    def __exit__(self, *exc) -> None:
        self.model = None

    def iter_embed(self, paths: Sequence[Path]) -> Iterator[np.ndarray]:
        p = self.params
        if self.transform is None:
            return self.model.embed_files(list(paths), p.flip_tta, p.batch_size)
        from styleid.inference.embed import iter_embed

        return iter_embed(self.model, paths, self.transform, p.batch_size, p.num_workers, desc="embed", flip=p.flip_tta)


@ENGINES.register("ray")
def _ray_engine(model_dir: Path, params: EmbedParams) -> Engine:
    from styleid.inference.ray_engine import RayEngine  # Ray is an optional extra: imported only when chosen

    return RayEngine(model_dir, params)


def open_engine(model_dir: Path, params: EmbedParams) -> Engine:
    """The engine embed.engine names, not yet entered (use it in a `with`)."""
    return ENGINES.get(params.engine)(model_dir, params)
