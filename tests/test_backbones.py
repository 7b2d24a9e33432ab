import numpy as np
import pytest
import torch
from PIL import Image

from styleid.errors import ParamsError
from styleid.inference.transforms import eval_input_transform
from styleid.models.backbones import check_name, create_backbone
from styleid.models.embedder import ModelConfig, build, load, save

data = pytest.importorskip("skimage.data")


def _imagenet_top1(name: str, img: np.ndarray) -> int:
    import timm

    from styleid.models import weights

    model = timm.create_model(name, pretrained=False)
    spec = weights.load_offline(model, name)
    model.eval()
    from torchvision.transforms import v2 as T

    tf = T.Compose([T.ToImage(), T.Resize(224), T.CenterCrop(224), T.ToDtype(torch.float32, scale=True), T.Normalize(spec.mean, spec.std)])
    with torch.no_grad():
        return int(model(tf(Image.fromarray(img))[None]).argmax())


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "mobilenetv2_100"])
def test_offline_weights_are_really_imagenet_pretrained(name):
    assert 281 <= _imagenet_top1(name, data.chelsea()) <= 285  # a cat: tabby / tiger / Egyptian cat
    assert _imagenet_top1(name, data.coffee()) == 967  # espresso


def test_backbone_errors_are_one_line_before_any_work():
    with pytest.raises(ParamsError, match="timm has no model named 'resnet5O'.*did you mean"):
        check_name("resnet5O", "none")
    with pytest.raises(ParamsError, match="no offline weights.*pretrained: hub"):
        check_name("resnet50", "offline")
    with pytest.raises(ParamsError, match="not offline, hub, none or an existing weights file"):
        check_name("resnet18", "/no/such/weights.pth")


def test_offline_backbone_uses_its_own_normalisation():
    _, cfg = create_backbone("tf_efficientnet_lite0", "offline")
    assert cfg.mean == (0.5, 0.5, 0.5) and cfg.std == (0.5, 0.5, 0.5)
    _, cfg = create_backbone("mobilenetv2_100", "offline")
    assert cfg.mean == pytest.approx((0.485, 0.456, 0.406))


def test_embedder_round_trips_through_safetensors(tmp_path):
    model = build(ModelConfig("mobilenetv2_100", "none", input_size=64, embed_dim=16, crop_pct=1.0, normalize_input=True)).eval()
    save(model, tmp_path)
    again = load(tmp_path)
    x = eval_input_transform(again.spec)(Image.fromarray(data.astronaut()))[None]
    assert x.shape[-1] == 64
    with torch.no_grad():
        assert torch.allclose(model(x), again(x))
    assert again.spec.out_dim == 16


def _bad_weight_files(folder):
    import json
    import os
    import struct

    from safetensors.torch import save_file

    save_file({"a": torch.zeros(3)}, str(folder / "ok.safetensors"))
    good = (folder / "ok.safetensors").read_bytes()
    header = json.dumps({"a": {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 12]}}).encode()
    files = {"random.safetensors": os.urandom(1000), "absurd.safetensors": struct.pack("<Q", 2**60) + b"{}",
             "shapes.safetensors": struct.pack("<Q", len(header)) + header + b"\0" * 12, "cut.safetensors": good[:-5],
             "empty.safetensors": b"", "junk.pth": os.urandom(300)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    torch.save([torch.zeros(2)], folder / "list.pth")
    torch.save(torch.zeros(2), folder / "tensor.pth")
    torch.save({"x": 1}, folder / "number.pth")
    return sorted(p for p in folder.iterdir() if p.name != "ok.safetensors")


def test_malformed_weights_files_are_one_line_naming_the_file(tmp_path):
    """Random bytes, absurd headers or shapes, cut-off files, pickles of lists or bare tensors: one line, no huge allocation."""
    from styleid.errors import StyleidError
    from styleid.models.state_files import read_state_dict

    assert list(read_state_dict(tmp_path / "ok.safetensors" if _bad_weight_files(tmp_path) else None)) == ["a"]
    for path in _bad_weight_files(tmp_path):
        with pytest.raises(StyleidError) as err:
            read_state_dict(path)
        assert str(err.value).startswith(str(path)) and "\n" not in str(err.value) and "torch.save(model.state_dict())" in str(err.value)
    with pytest.raises(StyleidError, match="not a mapping of names to tensors|holds a list"):
        create_backbone("tf_efficientnet_lite0", str(tmp_path / "list.pth"))
