"""int8 for ONNX Runtime: static quantisation of the ONNX export, calibrated on training images, and checked.

QDQ format, int8 weights per channel, uint8 activations from MinMax calibration. reduce_range (7-bit
weights) because CPUs without VNNI (AVX2 only, like the reference machine) saturate their u8 x s8
products at full range: without it FaceNet's int8 embeddings drifted far from fp32's, with it they agree closely at
the same speed (the README's Speed section has the figures). OpenVINO runs the same QDQ model. Not every backbone
survives int8 (EfficientNet-Lite's depthwise convolutions drift), so the agreement is
measured on validation images every time and a poor one is said, never hidden.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from styleid.errors import require
from styleid.fileio import atomic_path



def quantize_onnx(fp32_path: Path, int8_path: Path, calibration: np.ndarray, check: np.ndarray, batch_size: int = 16) -> dict:
    """Write `int8_path` from `fp32_path`; calibration and check are model inputs (N, 3, S, S float32). Returns the
    cosine similarity between int8 and fp32 embeddings of the check images (mean and min)."""
    require("onnx", "pip install onnx onnxruntime")
    ort = require("onnxruntime", "pip install onnx onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"images": calibration[i : i + batch_size]} for i in range(0, len(calibration), batch_size)])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="styleid-quantize-") as work, atomic_path(int8_path) as tmp:
        prepared = Path(work) / "prepared.onnx"
        # shape inference + graph optimisation, as ORT recommends; symbolic shape inference is for dynamic (transformer) shapes
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(tmp), Batches(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        return agreement(fp32_path, Path(tmp), check, ort)


def agreement(fp32_path: Path, int8_path: Path, images: np.ndarray, ort) -> dict:
    def embed(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out = session.run(None, {"images": images})[0]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    cos = np.nan_to_num((embed(fp32_path) * embed(int8_path)).sum(axis=1), nan=0.0)  # NaN or zero outputs: no agreement
    return {"int8_mean_cosine": round(float(cos.mean()), 4), "int8_min_cosine": round(float(cos.min()), 4)}


def model_inputs(paths: list[Path], spec) -> np.ndarray:
    """Image files -> the model's float input (N, 3, S, S), as the embed stage would feed them."""
    import torch

    from styleid.images import read_image
    from styleid.inference.transforms import eval_input_transform

    transform = eval_input_transform(spec)
    return torch.stack([transform(read_image(p)) for p in paths]).numpy()


def quantize_export(model_dir: Path, out_dir: Path, calibration_pool: list[Path], check_pool: list[Path], images: int, seed: int) -> dict:
    """model_dir's ONNX export -> its int8 file and check in `out_dir`, calibrated on a seeded sample of `images` training
    images and checked on up to 64 validation images (never test images)."""
    from styleid.fileio import write_json
    from styleid.inference.runtimes import INT8_CHECK, INT8_FILE, ONNX_FILE
    from styleid.models.spec import load_spec

    rng = np.random.default_rng(seed)
    pick = lambda pool, n: [pool[i] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]  # noqa: E731
    spec = load_spec(model_dir)
    calibration = model_inputs(pick(calibration_pool, images), spec)
    check = model_inputs(pick(check_pool, 64), spec) if check_pool else calibration[:64]
    cosines = quantize_onnx(model_dir / ONNX_FILE, Path(out_dir) / INT8_FILE, calibration, check)
    write_json(Path(out_dir) / INT8_CHECK, {**cosines, "check_images": len(check), "calibration_images": len(calibration)})
    return cosines
