"""Shared fixtures. Tests on ../shared/data or Ray skip when they are absent; under CI=true any skip fails (see below)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """scripts/<name>.py as a module (scripts are not a package), for tests of their functions and main()."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"scripts_{name}", REPO / "scripts" / f"{name}.py")
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
