"""export: the trained model as ONNX -> models/model.onnx (dynamic batch), checked against torch within 1e-4, and
models/int8/ (static int8, calibrated on training images, checked against fp32 on validation images; left empty where
embed.precision fp32 says embed will never run it)."""

import time
from pathlib import Path

import typer

from styleid.artifacts import METRICS, MODEL_DIR, load_split
from styleid.fileio import write_json
from styleid.inference.onnx_export import export_runtimes
from styleid.inference.runtimes import GOOD_INT8_COSINE, INT8_FILE, INT8_FOLDER, ONNX_FILE
from styleid.models.embedder import load
from styleid.params import load_params
from styleid.runner import stage


@stage
def export_stage(params_file: Path = typer.Option(Path("params.yaml"), "--params")) -> None:
    params = load_params(params_file)
    int8_dir = MODEL_DIR / INT8_FOLDER
    int8_dir.mkdir(parents=True, exist_ok=True)  # the stage's output either way (DVC has no optional outputs)
    start = time.perf_counter()
    int8 = export_runtimes(load(MODEL_DIR), MODEL_DIR, load_split(), params.embed.calibration_images, params.seed,
                           int8_dir if params.embed.makes_int8 else None)
    seconds = time.perf_counter() - start
    write_json(METRICS / "export.json", {**int8, "export_seconds": round(seconds, 2)})
    line = f"export: {MODEL_DIR / ONNX_FILE}, largest difference from torch {int8['export_max_abs_diff']:.1e}; "
    if "int8_mean_cosine" not in int8:
        print(line + f"no int8 model (embed.precision fp32); {seconds:.1f}s")
        return
    print(line + f"{int8_dir / INT8_FILE}, cosine to fp32 {int8['int8_mean_cosine']:.4f} mean, {int8['int8_min_cosine']:.4f} min; {seconds:.1f}s")
    if int8["int8_mean_cosine"] < GOOD_INT8_COSINE:
        print(f"export: int8 changes this model's embeddings too much (mean cosine {int8['int8_mean_cosine']:.3f} < {GOOD_INT8_COSINE}); "
              "embed.precision auto will use fp32")


if __name__ == "__main__":
    typer.run(export_stage)
