"""Atomic writes: a killed writer leaves a temporary sibling that the next run removes, never another worker's."""

import os
import signal
import subprocess
import sys
import time

from styleid.fileio import atomic_dir, atomic_path, sweep_stale


def _killed_writer(target, kind: str) -> None:
    """Start a process that is half-way through writing `target`, and kill it (SIGKILL: no cleanup runs)."""
    marker_kind = ", 'synthetic'" if kind == "dir" else ""  # a folder is written as one of styleid's kinds
    code = (f"import time, pathlib; from styleid.fileio import atomic_{kind}\n"
            f"with atomic_{kind}(pathlib.Path({str(target)!r}){marker_kind}) as tmp:\n"
            f"    (tmp / 'half.bin' if {kind == 'dir'} else tmp).write_bytes(b'x' * 1000); print('ready', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_killed_writers_leftovers_are_removed_by_the_next_run(tmp_path):
    target = tmp_path / "raw" / "synthetic"
    _killed_writer(target, "dir")
    _killed_writer(tmp_path / "raw" / "manifest.csv", "path")
    left = sorted(p.name for p in (tmp_path / "raw").iterdir())
    assert len(left) == 2 and all(name.endswith(".tmp") for name in left) and not target.exists()
    with atomic_dir(target, "synthetic") as tmp:
        (tmp / "whole.bin").write_bytes(b"y")
    with atomic_path(tmp_path / "raw" / "manifest.csv") as tmp:
        tmp.write_text("ok")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["manifest.csv", "synthetic"]
    assert sorted(p.name for p in target.iterdir()) == [".styleid.json", "whole.bin"]


def test_a_live_workers_temporary_files_are_left_alone(tmp_path):
    target = tmp_path / "cache.bin"
    mine = tmp_path / f".cache.bin.{os.getpid()}-abc.tmp"  # this process is alive: another worker's write in progress
    mine.write_bytes(b"x")
    assert sweep_stale(target) == [] and mine.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    time.sleep(0.1)
    stale = tmp_path / f".cache.bin.{dead}-xyz.tmp"
    stale.write_bytes(b"x")
    assert sweep_stale(target) == [stale] and not stale.exists() and mine.exists()


def test_fetch_removes_a_killed_runs_leftovers_even_when_the_source_is_unchanged(tmp_path):
    """fetch's fast path writes nothing, so it sweeps data/raw, data/ and the download cache itself."""
    from conftest import REPO

    (tmp_path / "params.yaml").write_text("data:\n  synthetic:\n    people: 6\n    test_people: 0\n    image_size: 32\n")
    env = {**os.environ}
    first = subprocess.run([sys.executable, str(REPO / "stages" / "fetch.py")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    _killed_writer(tmp_path / "data" / "raw" / "synthetic", "dir")
    _killed_writer(tmp_path / "data" / "manifest.csv", "path")
    assert len(list((tmp_path / "data").rglob(".*.tmp"))) == 2
    again = subprocess.run([sys.executable, str(REPO / "stages" / "fetch.py")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "source unchanged" in again.stdout, again.stderr
    assert list((tmp_path / "data").rglob(".*.tmp")) == [] and "left by a killed run" in again.stderr


def test_tqdm_disable_silences_every_bar_also_those_that_decide_for_themselves(monkeypatch):
    from styleid.progress import bar

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not bar(range(3), hide=False).disable and bar(range(3), hide=True).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert bar(range(3), hide=False).disable and list(bar(range(3))) == [0, 1, 2]


def test_the_cache_folder_follows_styleid_cache_then_xdg_then_home(tmp_path, monkeypatch):
    from styleid.fileio import user_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("STYLEID_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, "")  # empty counts as unset
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "styleid"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "styleid"
    monkeypatch.setenv("STYLEID_CACHE", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"
