"""Hostile but ordinary params and resumes: one folder under two spellings, a test source inside a training source,
a truth CSV of absolute paths, a download that trickles or never ends, a checkpoint under the right key with fields
missing. Each is refused in one line naming what and how to fix it, or handled; none is silently accepted."""

from __future__ import annotations

import http.server
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleid.data import sources
from styleid.data.domains import read_truth
from styleid.data.fetch import fetch
from styleid.errors import DataError
from styleid.params import DataParams
from styleid.training import checkpoint


def _people(root: Path, names=("ann", "bob", "cid")) -> Path:
    for k, name in enumerate(names):
        for j in range(2):
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((32, 32, 3), 40 * k + j, np.uint8)).save(root / name / f"{j}.png")
    return root


def _fetch(tmp_path: Path, **kw):
    return fetch(DataParams(**kw), seed=0, raw_dir=tmp_path / "raw", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("spelling", ["{d}/./", "{d}/", "{d}/../{name}", "link"])
def test_a_test_source_that_is_the_training_source_under_another_spelling_is_refused(tmp_path, spelling):
    d = _people(tmp_path / "people")
    os.symlink(d, tmp_path / "link")
    other = str(tmp_path / "link") if spelling == "link" else spelling.format(d=d, name=d.name)
    with pytest.raises(DataError, match=r"data.test_source: .* is the same place as .*test on data you do not train on"):
        _fetch(tmp_path, source=str(d), test_source=other)
    with pytest.raises(DataError, match=r"data.source: .* is the same place as .*list each source once"):
        _fetch(tmp_path, source=[str(d), other])


def test_a_test_source_inside_or_around_a_training_source_is_refused(tmp_path):
    d = _people(tmp_path / "people")
    with pytest.raises(DataError, match="is inside or around"):
        _fetch(tmp_path, source=str(tmp_path / "people"), test_source=str(d / "ann"))
    with pytest.raises(DataError, match="is inside or around"):
        _fetch(tmp_path, source=str(d / "ann"), test_source=str(tmp_path / "people"))


def test_distinct_sources_still_fetch(tmp_path):
    result = _fetch(tmp_path, source=str(_people(tmp_path / "a")), test_source=str(_people(tmp_path / "b", ("dee", "eve", "fay"))))
    assert {i.source for i in result.items} == {"s0", "test"}


def test_a_truth_csv_of_absolute_paths_is_read_against_the_dataset_root(tmp_path):
    root = tmp_path / "comp"
    (root / "train" / "ann").mkdir(parents=True)
    csv = tmp_path / "truth.csv"
    csv.write_text(f"path,domain\n{root}/train/ann/1.jpg,photo\ntrain/ann/2.jpg,render\n")
    assert read_truth(csv, root) == {"train/ann/1.jpg": "photo", "train/ann/2.jpg": "render"}
    csv.write_text(f"path,domain\n{tmp_path}/elsewhere/1.jpg,photo\n")
    with pytest.raises(DataError, match=r"truth.csv:2: .* is not inside the dataset .*; give paths relative to it"):
        read_truth(csv, root)


class _Slow(http.server.BaseHTTPRequestHandler):
    kind = "trickle"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        start = time.monotonic()
        try:
            while time.monotonic() - start < 60:  # bounded: the client must give up long before
                self.wfile.write(b"x" if self.kind == "trickle" else b"y" * 65536)
                self.wfile.flush()
                time.sleep(0.4 if self.kind == "trickle" else 0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture()
def slow_server():
    handlers = {}

    def start(kind: str) -> str:
        handler = type("Handler", (_Slow,), {"kind": kind})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        handlers[kind] = httpd
        return f"http://127.0.0.1:{httpd.server_address[1]}/data.tar"

    yield start
    for httpd in handlers.values():
        httpd.shutdown()


def test_a_download_that_trickles_a_byte_at_a_time_stops_at_the_minimum_rate(tmp_path, slow_server):
    url = slow_server("trickle")
    start = time.monotonic()
    with pytest.raises(DataError, match=r"under data.download_min_rate=100 bytes/s \(stalled\)"):
        sources.download_url(url, tmp_path / "dl", max_bytes=10**9, stall_seconds=1.0, min_rate=100)
    assert time.monotonic() - start < 15 and not (tmp_path / "dl").exists() and not list(tmp_path.glob(".dl*"))


def test_a_download_that_never_ends_stops_at_the_deadline(tmp_path, slow_server):
    url = slow_server("steady")
    start = time.monotonic()
    with pytest.raises(DataError, match=r"took over data.download_deadline=2 s"):
        sources.download_url(url, tmp_path / "dl", max_bytes=10**12, min_rate=1, deadline=2)
    assert time.monotonic() - start < 15 and not (tmp_path / "dl").exists()


def test_the_download_limits_are_params():
    data = DataParams()
    assert (data.download_min_rate, data.download_deadline) == (sources.MIN_RATE, sources.DEADLINE)
    with pytest.raises(Exception, match="download_deadline > 0"):
        DataParams(download_deadline=0)


def test_a_checkpoint_with_fields_missing_is_ignored_with_one_line_and_training_starts_afresh(tmp_path, caplog):
    path = tmp_path / "state.pt"
    state = {name: 0 for name in checkpoint.FIELDS} | {"key": "k", "model": {}, "rng": {}}
    del state["optimizer"]
    checkpoint.save(path, state)
    with caplog.at_level(logging.WARNING):
        assert checkpoint.load(path, "k") is None
    assert "ignoring the incomplete checkpoint" in caplog.text and "no optimizer" in caplog.text
    checkpoint.save(path, state | {"optimizer": {}})
    assert checkpoint.load(path, "k") is not None  # whole: resumed
    torch.save({"key": "k", "model": 3}, path)  # the right key, nothing else of use
    assert checkpoint.load(path, "k") is None


def test_a_checkpoint_whose_tensors_do_not_fit_changes_nothing_and_training_starts_afresh(caplog):
    from types import SimpleNamespace

    model, other = torch.nn.Linear(4, 2), torch.nn.Linear(5, 2)
    loss = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    saved = {"model": other.state_dict(), "loss": loss.state_dict(), "optimizer": optimizer.state_dict()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run, best = SimpleNamespace(epoch=0), SimpleNamespace(best_epoch=0)
    with caplog.at_level(logging.WARNING):
        assert not checkpoint.resume(saved, run, best, model, loss, optimizer, None, None, None)
    assert "do not fit this model" in caplog.text and run.epoch == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
