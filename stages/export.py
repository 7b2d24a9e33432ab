"""export: the trained model as ONNX -> models/model.onnx (dynamic batch), checked against torch within 1e-4."""

import time

import typer

from styleid.artifacts import METRICS, MODEL_DIR
from styleid.fileio import write_json
from styleid.inference.onnx_export import export_onnx
from styleid.inference.runtimes import ONNX_FILE
from styleid.models.embedder import load
from styleid.runner import stage


@stage
def export_stage() -> None:
    start = time.perf_counter()
    error = export_onnx(load(MODEL_DIR), MODEL_DIR / ONNX_FILE)
    seconds = time.perf_counter() - start
    write_json(METRICS / "export.json", {"export_max_abs_diff": float(f"{error:.3g}"), "export_seconds": round(seconds, 2)})
    print(f"export: {MODEL_DIR / ONNX_FILE}, largest difference from torch {error:.1e}; {seconds:.1f}s")


if __name__ == "__main__":
    typer.run(export_stage)
