"""export: the trained model as ONNX -> models/model.onnx (dynamic batch), checked against torch within 1e-4, and
models/model.int8.onnx (static int8, calibrated on training images, checked against fp32 on validation images)."""

import time
from pathlib import Path

import typer

from styleid.artifacts import METRICS, MODEL_DIR, load_split
from styleid.fileio import write_json
from styleid.inference.onnx_export import export_runtimes
from styleid.inference.runtimes import GOOD_INT8_COSINE, INT8_FILE, ONNX_FILE
from styleid.models.embedder import load
from styleid.params import load_params
from styleid.runner import stage


@stage
def export_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    start = time.perf_counter()
    int8 = export_runtimes(load(MODEL_DIR), MODEL_DIR, load_split(), params.embed.calibration_images, params.seed)
    seconds = time.perf_counter() - start
    write_json(METRICS / "export.json", {**int8, "export_seconds": round(seconds, 2)})
    print(f"export: {MODEL_DIR / ONNX_FILE}, largest difference from torch {int8['export_max_abs_diff']:.1e}; {MODEL_DIR / INT8_FILE}, cosine to fp32 "
          f"{int8['int8_mean_cosine']:.4f} mean, {int8['int8_min_cosine']:.4f} min; {seconds:.1f}s")
    if int8["int8_mean_cosine"] < GOOD_INT8_COSINE:
        print(f"export: int8 changes this model's embeddings too much (mean cosine {int8['int8_mean_cosine']:.3f} < {GOOD_INT8_COSINE}); "
              "embed.precision auto will use fp32")


if __name__ == "__main__":
    typer.run(export_stage)
