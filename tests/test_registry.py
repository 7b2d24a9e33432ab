"""Registries: each named choice is registered once, where it is defined, and looked up by that name."""

import pytest

from styleid.registry import Registry


def test_register_get_and_names_keep_the_order_of_registration():
    things = Registry("thing")
    things.register("b")(2)
    things.register("a")(1)
    assert things.get("a") == 1 and things.names() == ("b", "a") and "b" in things and list(things) == ["b", "a"]
    with pytest.raises(ValueError, match="unknown thing 'c'; choose from b, a"):
        things.get("c")
    with pytest.raises(ValueError, match="registered twice"):
        things.register("a")(3)


def test_every_registry_params_names_is_populated():
    from styleid.data.stylize import RENDERERS
    from styleid.inference.engines import ENGINES
    from styleid.models.facenet import HUB_WEIGHTS
    from styleid.models.weights import OFFLINE
    from styleid.search.rerank import RERANKERS
    from styleid.training.losses import LOSSES

    assert set(LOSSES) == {"cross_entropy", "arcface", "subcenter_arcface", "multi_similarity", "supcon", "triplet"}
    assert set(RENDERERS) == {"cartoon", "sketch", "painterly", "posterize", "colour_shift", "hatching", "ink", "palette"}
    assert set(RERANKERS) == {"none", "aqe", "kreciprocal", "kreciprocal_local"} and set(ENGINES) == {"local", "ray"}
    assert set(HUB_WEIGHTS) == {"vggface2", "casia-webface"}
    assert set(OFFLINE) == {"tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "mobilenetv2_100"}


def test_local_engine_embeds_as_the_plain_function_does(tmp_path):
    """The engine interface adds nothing to the numbers: the local engine equals iter_embed on the same model."""
    import numpy as np
    from PIL import Image

    from styleid.inference.embed import extract
    from styleid.inference.engines import open_engine
    from styleid.inference.transforms import eval_transform
    from styleid.models.embedder import ModelConfig, build, load, save
    from styleid.params import EmbedParams

    model = build(ModelConfig("facenet", "none", 96))
    save(model, tmp_path / "m")
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(paths[-1])
    with open_engine(tmp_path / "m", EmbedParams(batch_size=2, runtime="torch")) as engine:
        got = np.concatenate(list(engine.iter_embed(paths)))
    plain = load(tmp_path / "m")
    assert np.allclose(got, extract(plain, paths, eval_transform(plain.spec), 2, flip=True), atol=1e-6)


def test_registries_read_from_source_equal_the_imported_ones():
    """params checks names by reading each registry's module source (no torch import); it must see what importing sees."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    from styleid.registry import Registered, declared

    src = Path(__file__).resolve().parents[1] / "src" / "styleid" / "params"
    wheres = sorted({m for f in src.glob("*.py") for m in re.findall(r'Registered\("([^"]+)"', f.read_text())})
    assert len(wheres) >= 6
    for where in wheres:
        registry = Registered(where).registry()
        assert declared(where) == (registry.kind, registry.names()), where
    probe = "import sys; from styleid.params import load_params; load_params('params.yaml'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=src.parents[2], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # checking params.yaml stays light: fetch runs on every `dvc repro`
