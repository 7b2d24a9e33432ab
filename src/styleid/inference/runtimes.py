"""Inference runtimes, picked by name (embed.runtime): what runs the trained model's forward pass.

torch runs the module itself; onnxruntime and openvino run its ONNX export (models/model.onnx, made by
the export stage and checked against torch there). On CPUs they are much faster than eager torch for
the same model (see the README's Speed section). `auto` is the fastest installed one: ONNX Runtime, then
OpenVINO, then torch; where both ONNX runtimes are installed, the one measured faster on this machine
(inference/runtime_choice.py). A missing runtime falls back with one logged line.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from styleid.errors import StyleidError
from styleid.inference.onnx_session import (  # noqa: F401  (the file names: callers import them from here too)
    GOOD_INT8_COSINE, INT8_CHECK, INT8_FILE, INT8_FOLDER, ONNX_FILE, ONNX_FILES, check_shapes, model_file, onnx_path, onnx_precision,
    ort_session)
from styleid.registry import Registry

log = logging.getLogger(__name__)

FASTEST_FIRST = ("onnxruntime", "openvino", "torch")  # the usual order; auto measures the two ONNX runtimes where both are installed


@dataclass(frozen=True)
class Runtime:
    installed: Callable[[], bool]  # whether its package is importable here
    load: Callable[..., object]  # (model_dir, device, precision) -> the model, called on a batch of images


RUNTIMES: Registry[Runtime] = Registry("runtime")  # embed.runtime chooses


class OnnxModel:
    """A forward pass through an exported model: float32 NCHW images -> raw embeddings (torch tensors, like the module)."""

    def __init__(self, run, spec, name: str):
        self._run, self.spec, self.name = run, spec, name
        self.device = torch.device("cpu")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self._run(np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32))))

    def eval(self) -> "OnnxModel":
        return self

    def to(self, device) -> "OnnxModel":
        return self


def _threads() -> int:
    return torch.get_num_threads() or os.cpu_count() or 1


def _load_torch(model_dir: Path, device: torch.device, precision: str):
    from styleid.models.embedder import load

    if precision != "fp32":
        raise StyleidError(f"embed.precision {precision} runs on onnxruntime or openvino, not torch: pip install onnxruntime "
                           "and set embed.runtime: auto, or set embed.precision: fp32")
    return load(Path(model_dir)).to(device)


def _load_onnxruntime(model_dir: Path, device: torch.device, precision: str) -> OnnxModel:
    from styleid.models.spec import load_spec

    path = onnx_path(model_dir, precision)
    session = ort_session(path, _threads(), cuda=device.type == "cuda")
    spec = load_spec(Path(model_dir))
    check_shapes(path, spec, session.get_inputs()[0].shape, session.get_outputs()[0].shape)
    name = session.get_inputs()[0].name
    return OnnxModel(lambda x: session.run(None, {name: x})[0], spec, "onnxruntime")


def _load_openvino(model_dir: Path, device: torch.device, precision: str) -> OnnxModel:
    import openvino as ov

    from styleid.models.spec import load_spec

    # f32: on CPUs with bfloat16 units OpenVINO otherwise runs an fp32 model in bf16 (embeddings 2e-3 off torch's)
    config = {"INFERENCE_NUM_THREADS": _threads(), "INFERENCE_PRECISION_HINT": "f32"}
    compiled = ov.Core().compile_model(str(onnx_path(model_dir, precision)), "CPU", config)
    request = compiled.create_infer_request()
    return OnnxModel(lambda x: request.infer({0: x})[compiled.output(0)].copy(), load_spec(Path(model_dir)), "openvino")


RUNTIMES.register("torch")(Runtime(lambda: True, _load_torch))
RUNTIMES.register("onnxruntime")(Runtime(lambda: importlib.util.find_spec("onnxruntime") is not None, _load_onnxruntime))
RUNTIMES.register("openvino")(Runtime(lambda: importlib.util.find_spec("openvino") is not None, _load_openvino))


def resolve(name: str) -> str:
    """auto -> the fastest installed runtime; a named one that is not installed falls back to torch, said once."""
    if name == "auto":
        chosen = next(r for r in FASTEST_FIRST if RUNTIMES.get(r).installed())
        if chosen == "torch":
            log.info("embed.runtime auto: neither onnxruntime nor openvino is installed; using torch (pip install onnxruntime for about 1.8x)")
        return chosen
    if not RUNTIMES.get(name).installed():
        log.warning("embed.runtime: %s is not installed (pip install 'styleid[%s]'); using torch", name, name)
        return "torch"
    return name


def resolve_precision(precision: str, runtime: str, model_dir: Path) -> str:
    """auto -> int8 where it runs (onnxruntime, openvino) and its check beside it says it agrees with fp32, else fp32."""
    return "fp32" if precision == "auto" and runtime == "torch" else onnx_precision(precision, model_dir)


def load_runtime(name: str, model_dir: Path, device: torch.device, precision: str = "fp32"):
    """The trained model behind `name`'s runtime (fp32, the int8 export, or auto: int8 where it runs and agrees with
    fp32): something called on a batch of images, with .spec and .device. auto on a CPU with both ONNX runtimes
    installed runs the one measured faster here (remembered per machine and model shape: runtime_choice.fastest)."""
    runtime = resolve(name)
    resolved = resolve_precision(precision, runtime, model_dir)
    onnx = [r for r in FASTEST_FIRST if r != "torch" and RUNTIMES.get(r).installed()] if name == "auto" and device.type == "cpu" else []
    if len(onnx) < 2:
        return RUNTIMES.get(runtime).load(model_dir, device, resolved)
    from styleid.inference.runtime_choice import fastest
    from styleid.models.spec import load_spec

    loaded: dict[str, OnnxModel] = {}

    def load(candidate: str):
        loaded[candidate] = RUNTIMES.get(candidate).load(model_dir, device, resolved)
        return loaded[candidate]._run

    spec = load_spec(Path(model_dir))
    shape = {"backbone": spec.backbone, "input_size": spec.input_size, "feature_dim": spec.feature_dim, "embed_dim": spec.embed_dim,
             "pooling": spec.pooling}
    chosen = fastest(onnx, load, shape, resolved, _threads())
    return loaded.get(chosen) or RUNTIMES.get(chosen).load(model_dir, device, resolved)
