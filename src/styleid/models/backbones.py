"""Backbone factory: any timm model name, with weights from offline packages, a hub, a file or none."""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from styleid.errors import ParamsError, StyleidError
from styleid.models import facenet, weights
from styleid.models.state_files import read_state_dict


@dataclass(frozen=True)
class DataConfig:
    input_size: int  # square side in px
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str  # bilinear | bicubic


@functools.cache
def _timm_names() -> frozenset[str]:
    import timm  # here, not at the top: timm takes seconds to import and FaceNet (the default) does without it

    return frozenset(timm.list_models())


def offline_names() -> list[str]:
    return sorted([*weights.OFFLINE, facenet.NAME])


def check_name(name: str, pretrained: str) -> None:
    """Fail before any work when a backbone cannot be built as asked."""
    if name == facenet.NAME:
        pass
    elif name not in _timm_names():
        close = difflib.get_close_matches(name, list(_timm_names()), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ParamsError(f"backbone: timm has no model named {name!r}{hint}")
    if pretrained == "offline" and name not in offline_names():
        raise ParamsError(f"backbone: {name!r} has no offline weights (offline: {', '.join(offline_names())}); "
                          "use pretrained: hub (needs internet), none, or a path to a weights file")
    if pretrained not in ("offline", "hub", "none") and not Path(pretrained).is_file():
        raise ParamsError(f"pretrained: {pretrained!r} is not offline, hub, none or an existing weights file")


def _load_file(model: nn.Module, path: Path) -> None:
    state = read_state_dict(path)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    missing = [k for k in own if k not in state and not k.startswith(("classifier", "fc.", "head"))]
    if missing:
        raise StyleidError(f"{path}: weights do not fit this backbone ({len(missing)} tensors missing, e.g. {missing[0]})")
    model.load_state_dict(state, strict=False)


def create_backbone(name: str, pretrained: str, hub_variant: str = "vggface2") -> tuple[nn.Module, DataConfig]:
    """A timm model without classifier (pooled penultimate features) and its input config.

    `facenet` is facenet-pytorch's InceptionResnetV1 (512-d bottleneck); hub_variant picks its hub weights.
    """
    check_name(name, pretrained)
    if name == facenet.NAME:
        model = facenet.create_facenet(pretrained if pretrained in ("offline", "hub") else "none", hub_variant)
        if pretrained not in ("offline", "hub", "none"):
            _load_file(model, Path(pretrained))
        return model, DataConfig(facenet.INPUT_SIZE, facenet.MEAN, facenet.STD, "bilinear")
    import timm

    if pretrained == "hub":
        try:
            model = timm.create_model(name, pretrained=True)
        except Exception as exc:  # hub errors come in many types; all mean the weights did not come
            raise StyleidError(f"backbone {name}: could not fetch hub weights ({exc.__class__.__name__}); "
                               "pretrained: hub needs internet; use pretrained: offline or a weights file") from None
    else:
        model = timm.create_model(name, pretrained=False)
    cfg = timm.data.resolve_data_config({}, model=model)
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if pretrained == "offline":
        spec = weights.load_offline(model, name)
        mean, std = spec.mean, spec.std
    elif pretrained not in ("hub", "none"):
        _load_file(model, Path(pretrained))
    model.reset_classifier(0)
    config = DataConfig(int(cfg["input_size"][-1]), mean, std, str(cfg.get("interpolation", "bilinear")))
    return model, config


def feature_dim(model: nn.Module) -> int:
    return int(model.num_features)
