"""Two workers at once (`dvc queue start -j 2`): the shared caches (converted FaceNet weights, face crops,
downloads) take concurrent writers without corruption, and no temporary file is left behind."""

import hashlib
import http.server
import json
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image


def _together(code: str, env: dict | None = None, n: int = 2) -> list[str]:
    """Run `code` in n processes started together; every one must succeed; returns their stdouts."""
    import os

    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **(env or {})}) for _ in range(n)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    return [out for out, _ in outs]


def _no_temporaries(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")], sorted(folder.rglob("*"))


def test_two_workers_convert_facenet_into_one_cache(tmp_path):
    code = ("import hashlib; from styleid.models.facenet import offline_state\n"
            "s = offline_state(); print(hashlib.sha1(b''.join(s[k].numpy().tobytes() for k in sorted(s))).hexdigest())")
    outs = _together(code, {"STYLEID_CACHE": str(tmp_path)})
    assert len(set(outs)) == 1  # the same weights in both
    assert len(list(tmp_path.glob("facenet-casia-webface-*.safetensors"))) == 1
    _no_temporaries(tmp_path)


def test_two_workers_align_into_one_crop_cache(tmp_path):
    images = []
    for k in range(6):
        path = tmp_path / "photos" / f"{k}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(path)  # no faces: all fall back
        images.append(str(path))
    code = ("import json, sys; from pathlib import Path; from styleid.data.align import AlignSettings, align_files\n"
            f"m, computed, fallbacks = align_files([Path(p) for p in {images!r}], Path({str(tmp_path / 'aligned')!r}), AlignSettings('mtcnn', 64, 0.2))\n"
            "print(json.dumps([m, fallbacks]))")
    outs = [json.loads(o) for o in _together(code)]
    assert outs[0] == outs[1] and outs[0][1] == 6
    for crop in outs[0][0].values():
        with Image.open(crop) as img:
            assert img.size == (64, 64)
    _no_temporaries(tmp_path / "aligned")


def test_two_workers_download_one_archive_into_one_cache(tmp_path):
    served = tmp_path / "www"
    (served / "src" / "person_0").mkdir(parents=True)
    for k in range(3):
        (served / "src" / "person_0" / f"{k}.txt").write_bytes(bytes([k]) * 5000)
    with tarfile.open(served / "data.tar", "w") as tf:
        tf.add(served / "src", arcname="dataset")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/data.tar"
        code = ("import os; from pathlib import Path; from styleid.data import sources\n"
                f"target = Path({str(tmp_path)!r}) / f'out-{{os.getpid()}}'\n"
                f"sources.fetch_archive(sources.classify({url!r}), Path({str(tmp_path / 'cache')!r}), '', target, 10**9, 1000)\n"
                "print(sorted(p.name for p in (target / 'dataset' / 'person_0').iterdir()))")
        outs = _together(code)
    finally:
        httpd.shutdown()
    assert outs[0] == outs[1] == "['0.txt', '1.txt', '2.txt']\n"
    cached = list((tmp_path / "cache" / "downloads").iterdir())
    assert len(cached) == 1 and hashlib.sha1(cached[0].read_bytes()).hexdigest() == hashlib.sha1((served / "data.tar").read_bytes()).hexdigest()
    _no_temporaries(tmp_path / "cache")
