"""The trained model as ONNX (dynamic batch size), checked against torch every time it is made."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from styleid.errors import StyleidError, require
from styleid.fileio import atomic_path
from styleid.models.embedder import Embedder

log = logging.getLogger(__name__)

MAX_EXPORT_ERROR = 1e-4  # largest |onnxruntime - torch| allowed on any embedding component
OPSET = 17


def export_onnx(model: Embedder, path: Path, seed: int = 0) -> float:
    """Write `model` to `path` as ONNX (input "images": N x 3 x S x S float32, output "embeddings": N x D) and return
    the largest difference from torch over two batch sizes; a larger one than MAX_EXPORT_ERROR is refused."""
    require("onnx", "pip install onnx onnxruntime")
    ort = require("onnxruntime", "pip install onnx onnxruntime")
    model = model.cpu().eval()
    size = model.spec.input_size
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: the dynamo one needs onnxscript, not installed
        torch.onnx.export(model, (example,), str(tmp), input_names=["images"], output_names=["embeddings"], opset_version=OPSET,
                          dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}}, dynamo=False)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        error = 0.0
        for n in (1, 5):  # another batch size than the export's: the batch axis really is dynamic
            images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed + n))
            with torch.inference_mode():
                expected = model(images).numpy()
            got = session.run(None, {"images": images.numpy()})[0]
            error = max(error, float(np.abs(got - expected).max()))
        if not error < MAX_EXPORT_ERROR:
            raise StyleidError(f"{path}: the ONNX export differs from torch by {error:.2e} (over {MAX_EXPORT_ERROR:.0e}); "
                               "use embed.runtime: torch and report the backbone")
    return error


def export_runtimes(model: Embedder, folder: Path, split: dict, calibration_images: int, seed: int, int8_dir: Path | None) -> dict:
    """What embed runs a model with, beside its model.json in `folder`: the ONNX export (checked against torch) and, in
    `int8_dir` (None: not made), the int8 model calibrated on the split's training images and checked on its validation
    images; their figures for metrics."""
    from styleid.inference.quantize import quantize_export
    from styleid.inference.runtimes import ONNX_FILE

    error = export_onnx(model, Path(folder) / ONNX_FILE)
    if int8_dir is None:
        return {"export_max_abs_diff": float(f"{error:.3g}")}
    images = lambda *parts: [Path(e["image"]) for part in parts for e in split[part]]  # noqa: E731
    int8 = quantize_export(Path(folder), int8_dir, images("train"), images("val_query", "val_gallery"), calibration_images, seed)
    return {"export_max_abs_diff": float(f"{error:.3g}"), **int8}
