"""What a trained model takes and gives (model.json), without torch: the exported runtimes, the search path and the
server read it beside the ONNX file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from styleid.errors import StyleidError


@dataclass(frozen=True)
class ModelSpec:
    backbone: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    crop_pct: float
    feature_dim: int  # the backbone's pooled output size
    embed_dim: int  # 0 = the features themselves
    normalize_input: bool  # False: pixels in [0, 1] (the reference's "no ImageNet normalisation" ablation)
    pooling: str = "avg"  # avg | gem
    gem_p: float = 3.0

    @property
    def out_dim(self) -> int:
        return self.embed_dim or self.feature_dim


def load_spec(folder: Path) -> ModelSpec:
    """The trained model's spec alone (model.json): what an exported runtime needs beside the ONNX file."""
    path = folder / "model.json"
    if not path.is_file():
        raise StyleidError(f"{folder}: no trained model; run `dvc repro train` first")
    return spec_from_json(json.loads(path.read_text()))


def spec_from_json(spec_json: dict) -> ModelSpec:
    """model.json's contents as a ModelSpec (JSON lists back to tuples; extra keys such as best_epoch dropped)."""
    fields = ModelSpec.__dataclass_fields__
    return ModelSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec_json.items() if k in fields})
