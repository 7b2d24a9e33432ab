"""The ray engine on a real local Ray cluster (2 CPUs): the same embeddings as the local engine, in the same order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import need_ray

from styleid.errors import StyleidError
from styleid.inference.embed import extract
from styleid.inference.transforms import eval_transform
from styleid.models.embedder import ModelConfig, build, load, save
from styleid.params import EmbedParams


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    save(build(ModelConfig("tf_efficientnet_lite0", "none", 32, 16, 1.0, True)), folder)
    return folder


def test_ray_engine_matches_the_local_engine_and_names_an_unreadable_image(model_dir, synthetic_root, tmp_path):
    """One local cluster (starting one is most of the cost): a job with an unreadable image fails in one line naming it,
    then the same session's next job gives the local engine's embeddings in order; the cluster is gone afterwards."""
    need_ray()
    from PIL import Image

    from styleid.inference.ray_engine import RayEngine

    Image.new("RGB", (40, 40)).save(tmp_path / "fine.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths = sorted(synthetic_root.rglob("*.png"))
    assert len(paths) == 48
    params = EmbedParams(batch_size=5, flip_tta=True)  # 5: batches that do not divide the image count
    model = load(model_dir)
    local = extract(model, paths, eval_transform(model.spec), batch_size=5, flip=True)
    with RayEngine(model_dir, params, num_cpus=2) as engine:
        assert engine.actors == 2  # auto: one per CPU (decoding is fused into the actors without GPUs)
        with pytest.raises(StyleidError) as failure:
            list(engine.iter_embed([tmp_path / "fine.png", tmp_path / "broken.png"]))
        blocks = list(engine.iter_embed(paths))  # the session outlives a failed job
    remote = np.concatenate(blocks)
    assert remote.shape == local.shape == (48, 16)
    np.testing.assert_allclose(remote, local, rtol=1e-4, atol=1e-5)
    message = str(failure.value)
    assert "\n" not in message and message.startswith("embed: the Ray job failed: ")
    assert f"{tmp_path / 'broken.png'}: not a readable image" in message and "rerun `dvc repro`" in message
    import ray

    assert not ray.is_initialized()  # the local cluster it started is gone


def test_actor_counts_and_impossible_asks():
    need_ray()
    from styleid.inference.ray_engine import actor_count

    assert actor_count(EmbedParams(), cpus=16, gpus=0) == 16
    assert actor_count(EmbedParams(ray_cpus_per_actor=4), cpus=16, gpus=0) == 4
    assert actor_count(EmbedParams(), cpus=16, gpus=4) == 4
    assert actor_count(EmbedParams(ray_gpus_per_actor=0.5), cpus=16, gpus=4) == 8
    with pytest.raises(StyleidError, match="embed.ray_actors: 3 actors x 1.0 CPUs do not fit a cluster of 2 CPUs;"):
        actor_count(EmbedParams(ray_actors=3), cpus=2, gpus=0)
    with pytest.raises(StyleidError, match="do not fit a cluster of 4 CPUs with one left for decoding"):
        actor_count(EmbedParams(ray_actors=4), cpus=4, gpus=4)


def test_an_unreachable_cluster_is_a_one_line_error(model_dir):
    need_ray()
    from styleid.inference.ray_engine import RayEngine

    with pytest.raises(StyleidError, match="embed.ray_address: cannot reach a Ray cluster at '127.0.0.1:1'"):
        with RayEngine(model_dir, EmbedParams(engine="ray", ray_address="127.0.0.1:1")):
            pass
    with pytest.raises(StyleidError, match="embed.ray_address: 'cluster' is not host:port"):
        with RayEngine(model_dir, EmbedParams(engine="ray", ray_address="cluster")):
            pass

