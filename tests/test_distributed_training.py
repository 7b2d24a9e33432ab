"""Two processes under torchrun (gloo, CPU) train the same model as one process on the same global batches."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from styleid.training import ddp
from styleid.errors import ParamsError, StyleidError
from styleid.params import params_from_dict
from styleid.training.process_group import ProcessGroup
from styleid.training.samplers import seeded_batches

WORKER = Path(__file__).with_name("ddp_train_worker.py")
STATE_ATOL = 1e-4  # float32 sums in another order (two half-batch gradients averaged vs one)


def _run(nproc: int, raws: list[dict], root: Path, out: Path) -> list[tuple[dict, dict]]:
    """Each of `raws` trained in turn by one launch of the worker (nproc processes): (result, state) for each."""
    cmd = [sys.executable, str(WORKER), json.dumps(raws), str(root), str(out)]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *cmd[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STYLEID_DEVICE": "cpu"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [(json.loads((out / str(k) / "result.json").read_text()), load_file(str(out / str(k) / "state.safetensors")))
            for k in range(len(raws))]


LOSSES = ("arcface", "multi_similarity")  # a loss with learned proxies (synced by DDP too) and one without


def test_two_processes_learn_what_one_process_learns(synthetic_root, tmp_path):
    # a backbone without BatchNorm or dropout (ConvNeXt: LayerNorm), fine-tuned whole on augmented
    # images: covers DDP's gradient sync (backbone and loss proxies), the shared batch plan, per-image
    # augmentation seeds and the gathered validation. (Training-mode BatchNorm uses each process's
    # own half-batch on CPU, and dropout draws per process: those runs agree in metrics, not weights.)
    # Both losses are trained by one launch of each kind: starting processes is most of this test's time.
    raws = [{"backbone": "convnext_atto", "pretrained": "none", "epochs": 2, "batch_size": 8, "lr": 0.001,
             "model": {"input_size": 32}, "embed": {"flip_tta": False},
             "train": {"loss": loss, "augment": True, "m_per_class": 2, "patience": 0, "warmup_epochs": 0}} for loss in LOSSES]
    ones, twos = _run(1, raws, synthetic_root, tmp_path / "one"), _run(2, raws, synthetic_root, tmp_path / "two")
    init = _init_state(raws[0])
    for loss, raw, (one, one_state), (two, two_state) in zip(LOSSES, raws, ones, twos):
        assert two["world"] == 2 and one["world"] == 1
        assert two["images_seen"] == one["images_seen"], loss  # both ranks' shares add up to the global batches
        assert any(not torch.equal(one_state[k], init[k]) for k in init), loss  # it did learn
        for key in one_state:
            torch.testing.assert_close(two_state[key], one_state[key], atol=STATE_ATOL, rtol=1e-3, msg=f"{loss}: {key}")
        for a, b in zip(one["history"], two["history"]):
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3, abs=1e-4), loss
            assert b["val_score"] == pytest.approx(a["val_score"], abs=1e-6), loss


def _init_state(raw: dict) -> dict:
    from styleid.models.embedder import ModelConfig, build

    torch.manual_seed(params_from_dict(raw).seed)  # the init train() makes
    return build(ModelConfig(raw["backbone"], "none", 32, 0, 1.0, True)).state_dict()


def test_each_rank_gets_its_share_of_every_global_batch_with_the_same_item_seeds(monkeypatch):
    plan = lambda: [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]  # noqa: E731
    monkeypatch.setattr(ddp, "broadcast", lambda obj, src=0: plan() if obj is None else obj)  # rank 0's draw reaches rank 1
    one, sizes = ProcessGroup(ddp.World()).epoch_batches(plan, seed=1, epoch=1)
    assert sizes == [6, 5]
    parts = [ProcessGroup(ddp.World(rank, 2)).epoch_batches(plan, seed=1, epoch=1)[0] for rank in (0, 1)]
    for b, whole in enumerate(one):
        assert parts[0][b] + parts[1][b] == whole  # the same (image, seed) pairs, split in two
    assert [len(parts[0][b]) for b in range(2)] == [3, 2] and [len(parts[1][b]) for b in range(2)] == [3, 3]
    seeds = [s for batch in seeded_batches(plan(), 1, 1) for _, s in batch]
    assert len(set(seeds)) == len(seeds)
    assert seeded_batches(plan(), 1, 2) != seeded_batches(plan(), 1, 1)  # a new epoch, new augmentations


def test_nproc_must_be_positive():
    with pytest.raises(ParamsError, match="train.nproc"):
        params_from_dict({"train": {"nproc": 0}})


@pytest.mark.parametrize("codes, message", [
    ({0: -15, 1: 1}, "1 of 2 training processes failed (exit code 1)"),  # rank 0 was still running when torchrun stopped it
    ({0: 1, 1: 1}, "2 of 2 training processes failed (exit code 1)"),
    ({0: -15, 1: -15}, "2 of 2 training processes failed (exit code -15)"),  # all stopped: a kill from outside
])
def test_processes_torchrun_stopped_after_a_failure_are_not_counted_as_failed(monkeypatch, codes, message):
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    def run(args):
        raise ChildFailedError("worker", {rank: ProcessFailure(rank, 100 + rank, code, "/nonexistent") for rank, code in codes.items()})

    monkeypatch.setattr(torchrun, "run", run)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # launch sets it when unset; undone after the test
    with pytest.raises(StyleidError, match=re.escape(message)):
        ddp.launch(2, "worker.py", [])


def test_a_failing_process_is_reported_in_one_line_without_tracebacks(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text("import os\nfrom styleid.errors import StyleidError\nfrom styleid.runner import stage\n\n"
                      "@stage\ndef work_stage():\n    if os.environ['RANK'] == '1':\n        raise StyleidError('rank 1 could not read its images')\n\n"
                      "work_stage()\n")
    launcher = ("from styleid.training import ddp\nfrom styleid.runner import stage\n\n"
                f"@stage\ndef train_stage():\n    ddp.launch(2, {str(worker)!r}, [])\n\ntrain_stage()\n")
    env = {**os.environ, "STYLEID_DEVICE": "cpu"}
    env.pop("STYLEID_DEBUG", None)
    proc = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "styleid work: error: rank 1 could not read its images" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("styleid train: error: train: 1 of 2 training processes failed (exit code 1); "
                                                    "their own messages are above")
