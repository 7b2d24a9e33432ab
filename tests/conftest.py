"""Shared fixtures. Tests on ../shared/data or Ray skip when they are absent; under CI=true any skip fails (see below)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str, folder: str = "scripts"):
    """<folder>/<name>.py as a module (scripts and stages are not packages), for tests of their functions and main()."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", REPO / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
SHARED = REPO.parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (real-data tests need ../shared/data beside the repository)")
    return path


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from styleid.data.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, seed=3, people=8, photos=3, renders=3, size=64)
    return root


def write_image(path: Path, seed: int, size: tuple[int, int] = (40, 40)) -> Path:
    """A seeded random RGB picture (width, height) at `path` (its folders made)."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def make_exported_model(folder: Path, embed_dim: int = 16, seed: int = 0) -> Path:
    """A small random FaceNet-style model written as `styleid export` writes one: marked, with checksums, model.onnx and
    a card (no alignment, flip averaging, a same-person threshold of 0.9)."""
    import torch

    from styleid.fileio import atomic_dir, write_json
    from styleid.inference.onnx_export import export_onnx
    from styleid.models.embedder import ModelConfig, build, save

    torch.manual_seed(seed)  # the same random weights every run
    model = build(ModelConfig("facenet", "none", 96, embed_dim=embed_dim))
    with atomic_dir(folder, "export") as tmp:
        save(model, tmp)
        export_onnx(model, tmp / "model.onnx")
        write_json(tmp / "card.json", {"alignment": {"method": "none"}, "flip_tta": True, "match": {"threshold": 0.9, "false_match_rate": 0.01}})
    return folder


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory) -> Path:
    return make_exported_model(tmp_path_factory.mktemp("exported") / "model")


def need_ray() -> None:
    """Ray (the distributed extra) is optional to install but mandatory in CI, whose Makefile installs it."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        pytest.skip("Ray is not installed (pip install 'styleid[distributed]')")


def _fail_skip_under_ci(report, allowed: bool) -> None:
    if report.skipped and os.environ.get("CI", "").lower() == "true" and not allowed and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every test must run (mark it may_skip_in_ci with a reason if it truly may not): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI every skip is a failure, unless the test is marked may_skip_in_ci with its reason."""
    outcome = yield
    _fail_skip_under_ci(outcome.get_result(), item.get_closest_marker("may_skip_in_ci") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A whole module skipped at import (importorskip) is a failure under CI too."""
    outcome = yield
    _fail_skip_under_ci(outcome.get_result(), False)


@pytest.fixture(autouse=True)
def _runtime_choices_stay_in_the_test(tmp_path, monkeypatch):
    """embed.runtime auto remembers which ONNX runtime is faster in the user's cache; tests keep theirs apart."""
    from styleid.inference import runtime_choice

    monkeypatch.setattr(runtime_choice, "cache_path", lambda: tmp_path / "runtime_choice.json")


def pytest_configure(config):
    """Under pytest-xdist each worker gets its share of the cores: torch (and every pipeline stage a test starts, which
    inherits the variable) would otherwise run a thread per core in each worker and the workers would thrash."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(workers)))


def pytest_collection_modifyitems(config, items):
    """The order the workers get their tests in (`make test`: `-n logical --dist worksteal`).

    Work stealing first hands each worker one contiguous run of the collection (an even split by count, the first
    worker the first run), then moves tests from the tail of a busy worker's queue to an idle one. So each run starts
    with its share of the end-to-end tests, and the unit tests fill the rest in file order (a module stays on one worker,
    its module fixtures built once). The tests that start from the shared tiny pipeline run all go to the first worker,
    which builds that run: no worker waits for it. Without workers: the end-to-end runs first."""
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    fast = [item for item in items if item.get_closest_marker("slow") is None]
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        items[:] = slow + fast
        return
    lanes = [[item for item in slow if "tiny_run" in item.fixturenames]] + [[] for _ in range(workers - 1)]
    for k, item in enumerate(item for item in slow if "tiny_run" not in item.fixturenames):
        lanes[1 + k % (workers - 1)].append(item)
    ordered, left = [], len(items)
    for lane, remaining in zip(lanes, range(workers, 0, -1)):
        size = left // remaining  # the share worksteal sends the next idle worker
        take = max(0, size - len(lane))
        ordered += lane + fast[:take]
        fast = fast[take:]
        left -= len(lane) + take
    items[:] = ordered + fast
