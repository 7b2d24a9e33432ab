"""Where a trained model comes from for people's own galleries: an exported folder (model.onnx + model.json),
or a repository's models/ (found from any directory by walking up to the repository root)."""

from __future__ import annotations

from pathlib import Path

from styleid.errors import StyleidError

MODEL_FILES = ("model.json", "model.onnx")


def find_model(asked: Path | None) -> Path:
    """`asked` (a folder holding model.json and model.onnx, or a repository root with models/), else the enclosing
    repository's models/; a one-line error naming what is missing otherwise."""
    candidates = [asked, asked / "models"] if asked else [p / "models" for p in (Path.cwd(), *Path.cwd().parents)]
    for folder in candidates:
        if folder is not None and all((folder / f).is_file() for f in MODEL_FILES):
            return folder.resolve()
    where = asked or Path.cwd()
    raise StyleidError(f"{where}: no trained model (model.json + model.onnx); pass --model DIR (a `styleid export` folder or a "
                       "repository), or run `dvc repro export` in the repository")
