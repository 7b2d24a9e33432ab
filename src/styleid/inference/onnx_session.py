"""The exported model's files and an ONNX Runtime session over one of them, without torch (the search and serve paths
import this, and so do the torch runtimes in inference/runtimes.py)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from styleid.errors import StyleidError

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"  # the export, statically quantised (inference/quantize.py): embed.precision int8
INT8_CHECK = "model.int8.json"  # the int8 model's agreement with fp32 on validation images, written beside it
INT8_FOLDER = "int8"  # the export stage's int8 files, in a folder output of their own: empty where embed.precision fp32
ONNX_FILES = {"fp32": ONNX_FILE, "int8": INT8_FILE}
COPIED_FILES = ("model.json", ONNX_FILE, "card.json", INT8_FILE, INT8_CHECK)  # what a copy of a model takes (those that exist)
GOOD_INT8_COSINE = 0.98  # precision auto takes int8 only when its embeddings keep at least this mean cosine to fp32's


def model_file(model_dir: Path, name: str) -> Path:
    """Where a model folder keeps `name`: the int8 files in its int8/ folder where it has one (the pipeline's models/,
    whose export stage writes them there), else beside model.onnx (self-trained models, exports, indexes)."""
    model_dir = Path(model_dir)
    if name in (INT8_FILE, INT8_CHECK) and (model_dir / INT8_FOLDER).is_dir():
        return model_dir / INT8_FOLDER / name
    return model_dir / name


def copy_model_files(model_dir: Path, dest: Path) -> None:
    """The model's files that exist (COPIED_FILES) into `dest`, each beside model.onnx there."""
    import shutil

    for name in COPIED_FILES:
        if (path := model_file(model_dir, name)).is_file():
            shutil.copy2(path, Path(dest) / name)


def onnx_path(model_dir: Path, precision: str) -> Path:
    path = model_file(model_dir, ONNX_FILES[precision])
    if not path.is_file():
        fix = "set embed.precision: fp32" if precision == "int8" else "set embed.runtime: torch"
        raise StyleidError(f"{path}: missing; run `dvc repro export` (or {fix})")
    return path


def threads_wanted() -> int:
    """ONNX Runtime's threads: OMP_NUM_THREADS where it is set (as torch takes it), else 0 (one per core)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else 0


def ort_session(path: Path, threads: int = 0, cuda: bool = False):
    """An onnxruntime session on `path` (threads 0: one per core); a damaged or foreign file is one line naming it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep: the decoding thread gets the core
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider",) if cuda and p in available] + ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime's own error types: a damaged or foreign file
        raise StyleidError(f"{path}: not an ONNX model onnxruntime can load ({type(exc).__name__}); export the model again") from None


def check_shapes(path: Path, spec, inputs: list, outputs: list) -> None:
    """The ONNX file takes the images model.json describes and gives its embedding size: one line naming the file when the
    two come from different models (a size ONNX leaves open, such as the batch, is not checked)."""
    fixed = lambda dim, want: not isinstance(dim, int) or dim == want  # noqa: E731
    if len(inputs) != 4 or not fixed(inputs[2], spec.input_size) or not fixed(inputs[3], spec.input_size) or not fixed(outputs[-1], spec.out_dim):
        raise StyleidError(f"{path}: takes {inputs} and gives {outputs}, but model.json describes {spec.input_size}x{spec.input_size} "
                           f"images and {spec.out_dim}-d embeddings: the two files come from different models; export the model again")


def onnx_precision(precision: str, model_dir: Path) -> str:
    """auto -> int8 when its file is there and its check beside it says it agrees with fp32, else fp32; others as given."""
    if precision != "auto":
        return precision
    check = model_file(model_dir, INT8_CHECK)
    if not model_file(model_dir, INT8_FILE).is_file() or not check.is_file():
        return "fp32"
    cosine = json.loads(check.read_text()).get("int8_mean_cosine", 0.0)
    if not cosine >= GOOD_INT8_COSINE:
        log.info("embed.precision auto: fp32, as int8 changes this model's embeddings (mean cosine %.3f < %.2f)", cosine, GOOD_INT8_COSINE)
        return "fp32"
    return "int8"
