"""Faults: killed writes leave nothing half-written, NaN losses stop clearly, weights never unpickle objects,
layout problems are one-line errors."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from styleid.data.fetch import scan_and_check
from styleid.data.splits import make_split
from styleid.errors import DataError, StyleidError
from styleid.fileio import atomic_dir, atomic_path
from styleid.params import SplitParams, params_from_dict


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_a_killed_process_leaves_no_half_written_output(tmp_path):
    """SIGKILL in the middle of a write: the target never appears; a rerun writes it whole."""
    script = textwrap.dedent(f"""
        import os, time
        from styleid.fileio import atomic_path
        with atomic_path({str(tmp_path / 'out.npy')!r}) as tmp:
            with open(tmp, 'wb') as fh:
                fh.write(b'x' * 1000); fh.flush()
                print('writing', flush=True)
                time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out.npy").exists()
    with atomic_path(tmp_path / "out.npy") as tmp:
        np.save(open(tmp, "wb"), np.arange(3))
    assert np.load(tmp_path / "out.npy").tolist() == [0, 1, 2]


def test_a_failed_folder_write_keeps_the_old_folder(tmp_path):
    (tmp_path / "crops").mkdir()
    (tmp_path / "crops" / "q00001.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "crops", "panels") as tmp:
            (tmp / "b.jpg").write_bytes(b"new")
            raise RuntimeError("killed")
    assert sorted(p.name for p in (tmp_path / "crops").iterdir()) == ["q00001.png"]  # a folder of panels' names, written before markers


def test_training_stops_clearly_on_a_nan_loss(synthetic_root, monkeypatch):
    from styleid.training import loop

    class NaNLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, emb, labels):
            return emb.sum() * torch.tensor(float("nan")) + self.w.sum()

    monkeypatch.setattr(loop, "create_loss", lambda *a, **k: NaNLoss())
    pairs = [(f, p.name) for p in sorted((synthetic_root / "photos").iterdir()) for f in sorted(p.iterdir())]
    params = params_from_dict({"backbone": "tf_efficientnet_lite0", "pretrained": "none", "epochs": 1, "batch_size": 4,
                               "model": {"input_size": 32}, "train": {"freeze": "none", "augment": False}})
    with pytest.raises(StyleidError, match=r"loss became nan at epoch 1 step 0; lower lr") as err:
        loop.train(params, loop.TrainSet(pairs))
    assert "\n" not in str(err.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the pickle is the point of the test
def test_pickled_weights_are_refused(tmp_path):
    from styleid.models.backbones import _load_file

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    path = tmp_path / "weights.pth"
    with open(path, "wb") as fh:
        pickle.dump({"state_dict": Evil()}, fh)
    model = torch.nn.Linear(2, 2)
    with pytest.raises(StyleidError, match="never unpickled") as err:
        _load_file(model, path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "owned").exists()


def _img(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(path)


def test_empty_person_folders_are_ignored_and_an_empty_dataset_is_an_error(tmp_path):
    for p in range(4):
        for k in range(3):
            _img(tmp_path / "ds" / f"p{p}" / f"{k}.jpg", p * 10 + k)
    (tmp_path / "ds" / "nobody").mkdir()
    result = scan_and_check(tmp_path / "ds", "auto", 0.05)
    assert {i.person for i in result.items} == {"p0", "p1", "p2", "p3"}
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="layout") as err:
        scan_and_check(tmp_path / "empty", "auto", 0.05)
    assert str(tmp_path / "empty") in str(err.value) and "\n" not in str(err.value)


def test_people_with_a_single_image(tmp_path):
    """Open protocol: a one-photo person cannot be both query and gallery, so is not a test person; closed: skipped in test."""
    for p in range(8):
        for k in range(1 if p == 0 else 6):
            _img(tmp_path / "ds" / f"p{p}" / f"{k}.jpg", p * 10 + k)
    items = scan_and_check(tmp_path / "ds", "auto", 0.05).items
    closed, _ = make_split(items, "people", "closed", SplitParams(), seed=0)
    assert "p0" not in {e.person for e in closed["query"]} | {e.person for e in closed["gallery"]}
    open_split, _ = make_split(items, "people", "open", SplitParams(), seed=0)
    assert all(len(open_split[part]) for part in ("train", "query", "gallery"))


def test_duplicate_file_names_across_people_stay_distinct(tmp_path):
    for p in range(6):
        for k in range(4):
            _img(tmp_path / "ds" / f"p{p}" / "same.jpg" if k == 0 else tmp_path / "ds" / f"p{p}" / f"{k}.jpg", p * 10 + k)
    items = scan_and_check(tmp_path / "ds", "auto", 0.05).items
    assert len({i.path for i in items}) == len(items) == 24


def test_an_empty_gallery_side_is_a_one_line_error(tmp_path):
    for p in range(6):
        for k in range(4):
            _img(tmp_path / "ds" / "photos" / f"p{p}" / f"{k}.jpg", p * 10 + k)
    (tmp_path / "ds" / "renders").mkdir()
    with pytest.raises(DataError) as err:
        items = scan_and_check(tmp_path / "ds", "domains", 0.05).items
        make_split(items, "domains", "open", SplitParams(), seed=0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("debug", [False, True])
def test_user_facing_errors_are_one_line_without_traceback_unless_debugging(tmp_path, debug):
    from conftest import REPO

    (tmp_path / "params.yaml").write_text("lr: -1\n")
    env = {**os.environ, **({"STYLEID_DEBUG": "1"} if debug else {})}
    env.pop("STYLEID_DEBUG", None) if not debug else None
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "train.py")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    if debug:
        assert "Traceback" in proc.stderr
    else:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert lines == ["styleid train: error: params.yaml: lr: must be in (0, 10] (got -1.0)"]


@pytest.mark.parametrize("debug", [False, True])
def test_an_unforeseen_failure_is_still_one_line_naming_the_stage(tmp_path, debug):
    """A bug or an input nobody foresaw (here a splits.json of the wrong shape) ends in one line, not a traceback."""
    from conftest import REPO

    (tmp_path / "params.yaml").write_text("seed: 1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "splits.json").write_text("[1, 2, 3]\n")
    env = {k: v for k, v in os.environ.items() if k != "STYLEID_DEBUG"} | ({"STYLEID_DEBUG": "1"} if debug else {})
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "domains.py")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if debug:
        assert "Traceback" in proc.stderr
    else:
        assert len(lines) == 1 and lines[0].startswith("styleid domains: unexpected error: ") and "STYLEID_DEBUG=1" in lines[0], lines
