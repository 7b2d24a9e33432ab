"""The trunk of an exported model (models/split.py), cut out of the export stage's ONNX file and run by ONNX Runtime.

Self-training runs the trunk over a few views of every image, the bulk of its time. The export stage has already written
the model as ONNX and, where it agrees with fp32, as int8: the trunk is that same graph up to the tensor the top's first
module reads (found by the module's export scope, e.g. `/backbone/block8/`), so it costs no export of its own and runs
at the speed and precision the embed stage runs the whole model. The caller checks it against the torch trunk before it
trusts it (view_cache.trunk_views): int8's error grows with the depth of the cut, so fp32 is the next in line.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from styleid.inference.runtimes import ONNX_FILES, model_file, resolve_precision

log = logging.getLogger(__name__)


def cut_tensor(fp32: Path, scope: str) -> str | None:
    """The tensor the first node under `scope` reads: where the trunk ends (None when no node is under it)."""
    import onnx

    graph = onnx.load(str(fp32), load_external_data=False).graph
    first = next((n for n in graph.node if n.name.startswith(scope)), None)
    return first.input[0] if first is not None and first.input else None


def onnx_trunk(model_dir: Path, precision: str, scope: str) -> list[tuple[Callable[[torch.Tensor], torch.Tensor], str]]:
    """[(trunk, "onnxruntime int8"), (trunk, "onnxruntime fp32")] from model_dir's export, fastest first: int8 where the embed
    stage would run int8, then fp32 (the caller takes the first that agrees with torch); [] without onnxruntime or an export."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return []
    model_dir = Path(model_dir)
    fp32 = model_dir / ONNX_FILES["fp32"]
    if not scope or not fp32.is_file() or (tensor := cut_tensor(fp32, scope)) is None:
        return []
    wanted = dict.fromkeys([resolve_precision(precision, "onnxruntime", model_dir), "fp32"])
    return [trunk for p in wanted if (trunk := _cut(model_file(model_dir, ONNX_FILES[p]), tensor, p)) is not None]


def as_read(graph, tensor: str) -> str:
    """The tensor the nodes after `tensor` read in `graph`: in a quantised (QDQ) graph, the DequantizeLinear output behind
    its QuantizeLinear. The quantiser drops a Relu before a uint8 QuantizeLinear (whose range clips at 0 anyway) and gives
    the Relu's output name to the node before it, so the tensor itself would be the values before the Relu."""
    readers = [n for n in graph.node if tensor in n.input]
    if len(readers) == 1 and readers[0].op_type == "QuantizeLinear":
        dequantized = [n for n in graph.node if readers[0].output[0] in n.input]
        if len(dequantized) == 1 and dequantized[0].op_type == "DequantizeLinear":
            return dequantized[0].output[0]
    return tensor


def _cut(source: Path, tensor: str, precision: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], str] | None:
    import onnx
    import onnxruntime as ort

    if not source.is_file():
        return None
    tensor = as_read(onnx.load(str(source), load_external_data=False).graph, tensor)
    with tempfile.TemporaryDirectory(prefix="styleid-trunk-") as work:
        cut = Path(work) / "trunk.onnx"
        try:
            onnx.utils.extract_model(str(source), str(cut), ["images"], [tensor])
        except Exception as exc:  # onnx's own error types: the tensor is not in this (optimised) graph
            log.info("self_train: the trunk could not be cut out of %s (%s)", source, type(exc).__name__)
            return None
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads() or 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(cut), options, providers=["CPUExecutionProvider"])

    def run(images: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(np.asarray(session.run(None, {"images": x})[0]))

    return run, f"onnxruntime {precision}"
