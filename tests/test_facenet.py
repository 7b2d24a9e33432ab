"""FaceNet offline: the converted graph matches OpenCV, the cache is reused, and the folded BN stays frozen."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from styleid.errors import StyleidError
from styleid.inference.transforms import eval_input_transform
from styleid.models import facenet
from styleid.models.embedder import ModelConfig, build
from styleid.training.freeze import apply_freeze, set_train_mode


@pytest.fixture(scope="module")
def converted():
    return facenet.convert_graph(facenet.graph_file())


def _astronaut_face() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).crop((160, 40, 290, 190))


def test_conversion_matches_opencv_forward_pass(converted):
    model, net = converted
    spec = build(ModelConfig("facenet", "none", 0, 0, 1.0, True)).spec
    face = eval_input_transform(spec)(_astronaut_face()).numpy()[None]
    noise = np.random.default_rng(1).standard_normal((2, 3, 160, 160)).astype(np.float32)
    assert facenet.conversion_error(model, net, np.concatenate([face, noise])) < facenet.MAX_CONVERSION_ERROR


def test_offline_weights_are_converted_once_and_cached(tmp_path, monkeypatch):
    """...and whether the cache was cold or warm, the caller's RNG stream goes on the same: the conversion builds a
    model of its own (random init), and training seeded before building must not depend on the user's cache."""
    monkeypatch.setenv("STYLEID_CACHE", str(tmp_path))
    torch.manual_seed(0)
    first = facenet.create_facenet("offline")
    after_cold = torch.rand(4)
    cached = list(tmp_path.glob("facenet-casia-webface-*.safetensors"))
    assert len(cached) == 1
    monkeypatch.setattr(facenet, "convert_graph", lambda pb: pytest.fail("converted again despite the cache"))
    torch.manual_seed(0)
    second = facenet.create_facenet("offline")
    assert torch.equal(torch.rand(4), after_cold)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


def test_facenet_follows_its_own_input_config():
    spec = build(ModelConfig("facenet", "none", 0, 0, 1.0, True)).spec
    assert spec.input_size == 160 and spec.feature_dim == 512
    assert spec.mean == pytest.approx((0.5,) * 3) and spec.std == pytest.approx((128 / 255,) * 3)


def test_facenet_offline_separates_a_face_from_other_images(converted):
    model, _ = converted
    spec = build(ModelConfig("facenet", "none", 0, 0, 1.0, True)).spec
    tf = eval_input_transform(spec)
    from skimage import data

    face = _astronaut_face()
    batch = torch.stack([tf(face), tf(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), tf(Image.fromarray(data.coffee()))])
    with torch.inference_mode():
        emb = torch.nn.functional.normalize(model.eval()(batch), dim=1)
    same, other = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert same > 0.8 and same - other > 0.4


def test_folded_batchnorm_statistics_stay_frozen_while_fine_tuning(converted, monkeypatch):
    model_src, _ = converted
    monkeypatch.setattr(facenet, "offline_state", lambda: model_src.state_dict())
    model = build(ModelConfig("facenet", "offline", 0, 0, 1.0, True))
    apply_freeze(model, "none", 0)
    set_train_mode(model)
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and not any(m.training for m in bns) and model.backbone.training
    before = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
    conv_before = model.backbone.net.conv2d_1a.conv.weight.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3, 160, 160)).pow(2).mean().backward()
    opt.step()
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # statistics untouched
    assert not torch.equal(conv_before, model.backbone.net.conv2d_1a.conv.weight)  # weights did train


def test_hub_failure_is_one_clear_error(monkeypatch):
    import facenet_pytorch

    real = facenet_pytorch.InceptionResnetV1

    def offline(*args, pretrained=None, **kwargs):
        if pretrained:  # the download facenet-pytorch would attempt
            raise ConnectionError("no route to host")
        return real(*args, **kwargs)

    monkeypatch.setattr(facenet_pytorch, "InceptionResnetV1", offline)
    with pytest.raises(StyleidError, match="needs internet"):
        facenet.create_facenet("hub", "vggface2")


def test_a_missing_face_package_is_one_line_naming_the_install_command(monkeypatch):
    import sys

    from styleid.models.facenet import FaceNetBackbone

    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # as if it were not installed
    with pytest.raises(StyleidError, match=r"^the package facenet_pytorch is missing: pip install 'facenet-pytorch==2\.5\.3'"):
        FaceNetBackbone()


def test_input_size_zero_follows_smaller_images_but_never_upscales():
    from styleid.models.embedder import auto_input_size

    assert auto_input_size("facenet", 160, 0) == 160  # images of unknown size: the backbone's own
    assert auto_input_size("facenet", 160, 250) == 160  # big images are resized down as always
    assert auto_input_size("facenet", 160, 96) == 96  # small images run at their own size
    assert auto_input_size("facenet", 160, 40) == facenet.MIN_INPUT_SIZE  # never below what the network takes
    assert auto_input_size("convnext_atto", 224, 40) == 40


def test_median_side_reads_headers_of_a_sample(tmp_path):
    from PIL import Image

    from styleid.images import median_side

    paths = []
    for k, (w, h) in enumerate([(96, 96), (120, 80), (300, 200)]):
        Image.new("RGB", (w, h)).save(tmp_path / f"{k}.png")
        paths.append(tmp_path / f"{k}.png")
    assert median_side(paths) == 96 and median_side([]) == 0
