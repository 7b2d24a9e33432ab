from pathlib import Path

import pytest

from styleid.errors import ParamsError
from styleid.params import load_params, params_from_dict

REPO = Path(__file__).resolve().parents[1]


def test_repository_params_load_and_match_the_dataclass_defaults():
    params = load_params(REPO / "params.yaml")
    assert params == params_from_dict({})  # the dataclass defaults are the recommended recipe too
    assert params.backbone == "facenet" and params.data.source == "synthetic" and params.train.loss == "arcface"


def test_every_key_in_params_yaml_has_a_comment():
    for line in (REPO / "params.yaml").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and not line.rstrip().endswith(":"):
            assert "#" in line, f"params.yaml line without a comment: {line!r}"


@pytest.mark.parametrize("raw, message", [
    ({"lrr": 0.1}, "lrr: unknown key (did you mean lr?)"),
    ({"lr": -0.1}, "lr: must be in (0, 10]"),
    ({"lr": float("inf")}, "lr: must be a finite number"),
    ({"seed": -1}, "seed: must be in [0, 2**32)"),
    ({"batch_size": 10**20}, "batch_size: is absurdly large"),
    ({"data": {"synthetic": {"people": 10**9}}}, "data.synthetic.people: must be in [6, 1000000]"),
    ({"epochs": "3"}, "epochs: must be an integer"),
    ({"data": {"protocl": "open"}}, "data.protocl: unknown key (did you mean data.protocol?)"),
    ({"data": {"protocol": "semi"}}, "data.protocol: must be one of open, closed"),
    ({"retrieve": {"top_k": 0}}, "retrieve.top_k: must be in [1, 100000]"),
    ({"split": {"test_styles": ["oil"]}}, "split.test_styles[0]: unknown style 'oil'; choose from cartoon"),
    ({"train": {"augment": "yes"}}, "train.augment: must be true or false"),
    ({"augment": {"styles": ["sketch"]}}, "augment.styles: sketch is also in split.test_styles"),  # test styles stay unseen
    ({"train": {"loss": "arcfce"}}, "train.loss: unknown loss 'arcfce'; choose from cross_entropy, arcface, subcenter_arcface"),  # the losses registry
    ({"retrieve": {"rerank": "qe"}}, "retrieve.rerank: unknown re-ranker 'qe'; choose from auto, none, aqe, kreciprocal, kreciprocal_local"),
    ({"embed": {"engine": "spark"}}, "embed.engine: unknown embedding engine 'spark'; choose from local, ray"),
    ({"model": {"hub_weights": "ms1m"}}, "model.hub_weights: unknown facenet hub weights 'ms1m'; choose from vggface2, casia-webface"),
    ({"data": 3}, "data: must be a mapping"),
])
def test_bad_params_are_one_line_errors_naming_the_key(raw, message):
    with pytest.raises(ParamsError) as err:
        params_from_dict(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_ints_are_accepted_for_floats_and_files_are_named(tmp_path):
    assert params_from_dict({"lr": 1}).lr == 1.0
    bad = tmp_path / "params.yaml"
    bad.write_text("lr: [1\n")
    with pytest.raises(ParamsError, match="params.yaml.*not valid YAML"):
        load_params(bad)


@pytest.mark.parametrize("text, message", [
    ('a: &a ["x", "x"]\nb: &b [*a, *a]\nc: [*b, *b]\n', "line 2: not valid YAML (YAML aliases (*name) are not allowed"),
    ("seed: 1\nseed: 2\n", "line 2: not valid YAML (duplicate key 'seed' (the last would silently win)"),
    ("data: " + "[" * 5000 + "]" * 5000 + "\n", "line 1: not valid YAML (nested more than 16 levels deep)"),
    (b"seed: 1\nbackbone: \xff\xfe\n", "not UTF-8 text (byte 18); save it as UTF-8"),
    ("backbone: " + "x" * 100_000 + "\n", "backbone: is longer than 4096 characters"),
    ("data: {protocol: " + "y" * 100_000 + "}\n", "data.protocol: must be one of open, closed (got 'yyyy"),
])
def test_hostile_params_files_are_one_bounded_line(tmp_path, text, message):
    """Aliases (billion laughs), duplicate keys, deep nesting, other encodings, huge values: one short line, no traceback."""
    path = tmp_path / "params.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ParamsError) as err:
        load_params(path)
    line = str(err.value)
    assert message in line and line.startswith(str(path)) and "\n" not in line and len(line) < 300, line
