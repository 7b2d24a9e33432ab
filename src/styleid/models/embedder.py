"""The embedding model: backbone -> optional projection (BNNeck-style) -> embedding.

model.json holds everything needed to rebuild it; weights live in model.safetensors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from styleid.errors import ParamsError, StyleidError
from styleid.fileio import atomic_path, write_json
from styleid.models import facenet
from styleid.models.backbones import create_backbone, feature_dim
from styleid.models.pooling import use_gem
from styleid.models.spec import ModelSpec, spec_from_json
from styleid.models.state_files import tensors_from_bytes


class Embedder(nn.Module):
    """Backbone (pooled features) -> head. The head is BNNeck-style: a projection, then BatchNorm, whose
    output is both what the loss trains and what retrieval uses (cosine on the normalised features)."""

    def __init__(self, backbone: nn.Module, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        if spec.pooling == "gem":
            use_gem(backbone, spec.gem_p)
        self.backbone = backbone
        if spec.embed_dim:
            self.head: nn.Module = nn.Sequential(nn.Linear(spec.feature_dim, spec.embed_dim, bias=False), nn.BatchNorm1d(spec.embed_dim))
        else:
            self.head = nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))

    def group_matcher(self, coarse: bool = False) -> dict:
        """The backbone's layer groups (timm contract) under this module's `backbone.` prefix; the head joins the last."""
        inner = self.backbone.group_matcher(coarse=coarse)

        def prefixed(pattern: str) -> str:
            return rf"^backbone\.(?:{pattern.lstrip('^')})"

        out = {}
        for key, value in inner.items():
            if isinstance(value, str):
                out[key] = prefixed(value)
            else:
                out[key] = [(prefixed(p), order) for p, order in value]
        return out


def auto_input_size(backbone: str, default: int, image_side: int) -> int:
    """model.input_size 0: the backbone's default, or the images' own side when they are smaller
    (upscaling adds compute, not detail), never below what the backbone can take."""
    if not image_side or image_side >= default:
        return default
    return max(image_side, facenet.MIN_INPUT_SIZE if backbone == facenet.NAME else 32)


@dataclass(frozen=True)
class ModelConfig:
    """What to build: the one typed object the model comes from (params: see model_config)."""

    backbone: str = "facenet"  # facenet or any timm model name
    pretrained: str = "offline"  # offline | hub | none | a weights file
    input_size: int = 0  # 0 = the backbone's default (or the images' side when smaller)
    embed_dim: int = 0  # 0 = the backbone's pooled features; > 0 = a learned projection
    crop_pct: float = 1.0  # centre-crop share at test time
    normalize_input: bool = True  # the backbone's mean/std (False: pixels in [0, 1])
    hub_weights: str = "vggface2"  # facenet with pretrained: hub
    pooling: str = "avg"  # avg | gem
    gem_p: float = 3.0  # GeM's initial exponent


def model_config(params, embed_dim: int | None = None) -> ModelConfig:
    """The model params.yaml describes (backbone, pretrained, model.*, train.imagenet_norm); embed_dim overrides model.embed_dim."""
    m = params.model
    return ModelConfig(params.backbone, params.pretrained, m.input_size, m.embed_dim if embed_dim is None else embed_dim, m.crop_pct,
                       params.train.imagenet_norm, m.hub_weights, m.pooling, m.gem_p)


def build(config: ModelConfig, image_side: int = 0) -> Embedder:
    """image_side: the training images' typical side, px (0 = unknown), for input_size 0."""
    c = config
    if c.backbone == facenet.NAME and c.input_size and c.input_size < facenet.MIN_INPUT_SIZE:
        raise ParamsError(f"model.input_size: facenet needs at least {facenet.MIN_INPUT_SIZE} px (got {c.input_size}); use 0 for its own 160")
    model, cfg = create_backbone(c.backbone, c.pretrained, c.hub_weights)
    spec = ModelSpec(c.backbone, c.input_size or auto_input_size(c.backbone, cfg.input_size, image_side), cfg.mean, cfg.std, cfg.interpolation,
                     c.crop_pct, feature_dim(model), c.embed_dim, c.normalize_input, c.pooling, c.gem_p)
    return Embedder(model, spec)


def save(model: Embedder, folder: Path, extra: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json(folder / "model.json", {**asdict(model.spec), **(extra or {})})


def load(folder: Path) -> Embedder:
    """Rebuild the trained embedder from model.json + model.safetensors (no unpickling)."""
    spec_path, weights_path = folder / "model.json", folder / "model.safetensors"
    if not spec_path.is_file() or not weights_path.is_file():
        raise StyleidError(f"{folder}: no trained model; run `dvc repro train` first")
    return loads(json.loads(spec_path.read_text()), weights_path.read_bytes())


def loads(spec_json: dict, weights: bytes) -> Embedder:
    """load() from the two files' contents (how remote workers get the model without a shared disk)."""
    spec = spec_from_json(spec_json)
    backbone, _ = create_backbone(spec.backbone, "none")
    model = Embedder(backbone, spec)
    try:
        model.load_state_dict(tensors_from_bytes(weights, "models/model.safetensors"), strict=True)
    except RuntimeError as exc:  # names or shapes that are not this spec's
        raise StyleidError(f"models/model.safetensors: does not match models/model.json ({str(exc)[:120]}); rerun `dvc repro train`") from None
    return model.eval()
