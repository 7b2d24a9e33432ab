"""Hostile but ordinary inputs to a person's own gallery: damaged or mismatched indexes and exports, altered model
bytes, odd file names, very deep folders, unreadable queries; the same photo through the page and `styleid search`."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import make_exported_model, write_image
from PIL import Image
from typer.testing import CliRunner

from styleid import ownership
from styleid.cli import app
from styleid.errors import StyleidError
from styleid.gallery.folder_index import FolderIndex, build_index
from styleid.gallery.batch import search_many

pytest.importorskip("onnxruntime", reason="onnxruntime is a dependency of styleid; install the project with `make`")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("hostile_gallery")
    model_dir = make_exported_model(root / "model")
    for k in range(12):
        write_image(root / "gallery" / f"g{k:02d}.png", k, (48, 40 + k))
    build_index(root / "gallery", root / "index", model_dir)
    return {"root": root, "model": model_dir, "gallery": root / "gallery", "index": root / "index", "as_built": _tree(root)}


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy_index(built, tmp_path) -> Path:
    copy = tmp_path / "index"
    shutil.copytree(built["index"], copy)
    return copy


def _flip_byte(path: Path, at: int = -20) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped embeddings", "truncated faiss", "other model's onnx", "files.json edited", "file removed"])
def test_a_damaged_index_is_one_line_naming_the_file(built, tmp_path, damage):
    index = _copy_index(built, tmp_path)
    if damage == "flipped embeddings":
        _flip_byte(index / "embeddings.npy")
        named = "embeddings.npy"
    elif damage == "truncated faiss":
        (index / "gallery.faiss").write_bytes((index / "gallery.faiss").read_bytes()[:100])
        named = "gallery.faiss"
    elif damage == "other model's onnx":
        shutil.copy(make_exported_model(tmp_path / "other", embed_dim=8, seed=1) / "model.onnx", index / "model" / "model.onnx")
        named = "model.onnx"
    elif damage == "files.json edited":
        doc = json.loads((index / "files.json").read_text())
        doc["files"] = doc["files"][:-1]
        (index / "files.json").write_text(json.dumps(doc))
        named = "files.json"
    else:
        (index / "gallery.faiss").unlink()
        named = "not a styleid index"
    with pytest.raises(StyleidError, match=named) as err:
        FolderIndex.load(index)
    assert "\n" not in str(err.value)
    out = CliRunner().invoke(app, ["search", str(built["gallery"] / "g00.png"), "--index", str(index)])
    assert out.exit_code == 1 and named in out.output and "unexpected" not in out.output and len(out.output.strip().splitlines()) == 1


def test_an_index_without_checksums_is_still_checked_for_counts_and_width(built, tmp_path):
    index = _copy_index(built, tmp_path)
    (index / ownership.MARKER).unlink()  # made before markers
    assert len(FolderIndex.load(index).paths) == 12
    smaller = tmp_path / "smaller"
    build_index(built["gallery"], smaller, built["model"])
    shutil.copy(index / "gallery.faiss", tmp_path / "twelve.faiss")
    (smaller / ownership.MARKER).unlink()
    doc = json.loads((smaller / "files.json").read_text())
    doc["files"] = doc["files"][:5]
    (smaller / "files.json").write_text(json.dumps(doc))
    with pytest.raises(StyleidError, match=r"gallery.faiss: 12 vectors of 16 numbers, but files.json lists 5 images"):
        FolderIndex.load(smaller)


def test_a_model_with_altered_bytes_builds_no_index(built, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(built["model"], model)
    _flip_byte(model / "model.onnx", at=len((model / "model.onnx").read_bytes()) // 2)  # inside the weights
    code = CliRunner().invoke(app, ["index", str(built["gallery"]), "--out", str(tmp_path / "idx"), "--model", str(model)])
    assert code.exit_code == 1 and "model.onnx: is not the file styleid wrote" in code.output
    assert not (tmp_path / "idx").exists()


def test_a_repositorys_model_is_checked_against_dvc_lock(built, tmp_path, monkeypatch):
    import hashlib

    repo = tmp_path / "repo"
    shutil.copytree(built["model"], repo / "models")
    (repo / "models" / ownership.MARKER).unlink()  # models/ is the pipeline's: dvc.lock holds its hashes
    md5 = hashlib.md5((repo / "models" / "model.onnx").read_bytes()).hexdigest()
    (repo / "dvc.lock").write_text(f"schema: '2.0'\nstages:\n  export:\n    cmd: x\n    outs:\n    - path: models/model.onnx\n      hash: md5\n      md5: {md5}\n")
    assert CliRunner().invoke(app, ["index", str(built["gallery"]), "--out", str(tmp_path / "a"), "--model", str(repo)]).exit_code == 0
    _flip_byte(repo / "models" / "model.onnx", at=len((repo / "models" / "model.onnx").read_bytes()) // 2)
    out = CliRunner().invoke(app, ["index", str(built["gallery"]), "--out", str(tmp_path / "b"), "--model", str(repo)])
    assert out.exit_code == 1 and "dvc.lock has another hash" in out.output and "dvc checkout" in out.output


def test_names_that_are_not_utf8_are_skipped_with_their_reason_and_the_rest_indexed(built, tmp_path):
    gallery = tmp_path / "gallery"
    write_image(gallery / "fine.png", 1)
    write_image(Path(os.fsdecode(bytes(gallery) + b"/caf\xe9.png")), 2)  # Latin-1 bytes: no UTF-8 name
    report = build_index(gallery, tmp_path / "idx", built["model"])
    assert report.added == 1 and len(report.skipped) == 1 and "not valid UTF-8; rename" in report.skipped[0][1]
    assert FolderIndex.load(tmp_path / "idx").paths == ["fine.png"]


def test_a_very_deep_folder_is_walked_without_a_recursion_limit(built, tmp_path):
    deep = tmp_path / "gallery"
    deep.mkdir()
    levels = [deep]
    for _ in range(1200):  # deeper than Python's recursion limit (made a level at a time: mkdir(parents=True) recurses)
        levels.append(levels[-1] / "d")
        levels[-1].mkdir()
    try:
        write_image(levels[-1] / "deep.png", 3)
        write_image(deep / "top.png", 4)
        report = build_index(deep, tmp_path / "idx", built["model"])
        assert report.added == 2 and not report.skipped
    finally:  # removed a level at a time too: pytest's own clean-up of old temporary folders recurses
        (levels[-1] / "deep.png").unlink(missing_ok=True)
        for level in reversed(levels[1:]):
            level.rmdir()


def test_an_unreadable_query_is_one_line_naming_it(built, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut off")
    out = CliRunner().invoke(app, ["search", str(tmp_path / "broken.jpg"), "--index", str(built["index"])])
    assert out.exit_code == 1 and f"{tmp_path / 'broken.jpg'}: not a readable image" in out.output and "give a JPEG" in out.output
    assert "unexpected" not in out.output


# --- the page and the CLI: one decoder, the same answers --------------------------------------------------------------

def _odd_images(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    base = Image.fromarray(np.random.default_rng(5).integers(0, 255, (60, 44, 3), dtype=np.uint8))
    files = {}
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees: a phone portrait
    base.save(folder / "rotated.jpg", exif=exif, quality=95)
    files["exif-rotated"] = folder / "rotated.jpg"
    deep = (np.asarray(base.convert("L"), dtype=np.uint16) * 257)  # 16-bit grey spanning its range
    Image.fromarray(deep).save(folder / "deep.png")
    files["16-bit"] = folder / "deep.png"
    base.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    files["cmyk"] = folder / "cmyk.jpg"
    base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(folder / "palette.png")
    files["palette"] = folder / "palette.png"
    base.convert("L").save(folder / "grey.png")
    files["greyscale"] = folder / "grey.png"
    frames = [base, Image.fromarray(255 - np.asarray(base))]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    files["animated"] = folder / "anim.gif"
    return files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None, chunks=None) -> tuple[int, dict | bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        if chunks is None:
            conn.request(method, path, body, headers or {})
        else:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            try:
                for chunk in chunks:
                    conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server stopped reading: its answer is what counts
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if response.headers.get("content-type", "").startswith("application/json") else data
    finally:
        conn.close()


def _multipart(name: str, data: bytes, top_k: int = 10) -> tuple[bytes, str]:
    boundary = "styleidtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n{top_k}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def server(built):
    pytest.importorskip("fastapi", reason="the serve extra: pip install 'styleid[serve]' (make installs it)")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "styleid.cli", "serve", "--index", str(built["index"]), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        for _ in range(600):
            try:
                if _request(port, "GET", "/health")[1].get("status") == "ready":
                    break
            except OSError:
                pass
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("case", ["exif-rotated", "16-bit", "cmyk", "palette", "greyscale", "animated"])
def test_the_page_and_the_cli_rank_the_same_photo_alike(built, server, tmp_path, case):
    from styleid.images import load_rgb

    photo = _odd_images(tmp_path)[case]
    decoded = load_rgb(photo)
    if case == "exif-rotated":
        assert decoded.size == (60, 44)  # stored 44 wide and 60 high, shown turned a quarter: EXIF's rotation applied
    if case == "16-bit":
        assert 30 < np.asarray(decoded).mean() < 225  # its range scaled, not a blank white page
    cli, _, _ = search_many([photo], set(), built["index"], 10)
    body, ctype = _multipart(photo.name, photo.read_bytes())
    status, page = _request(server, "POST", "/search", body, {"Content-Type": ctype})
    assert status == 200, page
    assert [m["name"] for m in page["matches"]] == [m["name"] for m in cli[0]["matches"]]
    assert np.allclose([m["score"] for m in page["matches"]], [m["score"] for m in cli[0]["matches"]], atol=1e-5)


def test_an_oversized_upload_is_refused_while_it_streams(server):
    body, ctype = _multipart("x.png", b"\0" * 100)
    status, answer = _request(server, "POST", "/search", body, {"Content-Type": ctype, "Content-Length": str(2_000_000_000)})
    assert status == 413 and "over 10,000,000 bytes" in answer["error"]  # told from the header alone, nothing read
    head = body[: body.index(b"\0")]  # the form's envelope, then a photo that never ends
    chunks = (head if k == 0 else b"\0" * 1_000_000 for k in range(40))  # no Content-Length: counted as it arrives
    status, answer = _request(server, "POST", "/search", headers={"Content-Type": ctype}, chunks=chunks)
    assert status == 413 and "over 10,000,000 bytes" in answer["error"]
    assert _request(server, "GET", "/health")[1]["status"] == "ready"


def test_an_image_over_the_pixel_limit_is_refused_by_page_and_cli_alike(built, server, tmp_path):
    Image.new("L", (9000, 9000), 128).save(tmp_path / "huge.png")  # 81 megapixels in a small file
    body, ctype = _multipart("huge.png", (tmp_path / "huge.png").read_bytes())
    status, answer = _request(server, "POST", "/search", body, {"Content-Type": ctype})
    assert status == 400 and "exceeds the 64,000,000-pixel limit" in answer["error"]
    out = CliRunner().invoke(app, ["search", str(tmp_path / "huge.png"), "--index", str(built["index"])])
    assert out.exit_code == 1 and "exceeds the 64,000,000-pixel limit" in out.output


def test_a_damaged_gallery_image_has_no_thumbnail_but_never_a_500(built, server):
    victim = built["gallery"] / "g11.png"
    original = victim.read_bytes()
    try:
        victim.write_bytes(original[:60])  # cut off
        status, answer = _request(server, "GET", "/gallery/11")
        assert status == 422 and "cannot be shown" in answer["error"]
        victim.unlink()
        assert _request(server, "GET", "/gallery/11")[0] == 404
    finally:
        victim.write_bytes(original)
    assert _request(server, "GET", "/gallery/11")[0] == 200
    assert _request(server, "GET", "/gallery/-1")[0] == 404
    urllib.request.urlopen(f"http://127.0.0.1:{server}/health", timeout=10).close()


def test_serving_and_searching_write_nothing_to_the_gallery_or_the_index(built, server):
    """Every search, bad upload and thumbnail above went through the server and the CLI: the gallery, the index and
    the model are byte for byte as they were built."""
    body, ctype = _multipart("g00.png", (built["gallery"] / "g00.png").read_bytes())
    assert _request(server, "POST", "/search", body, {"Content-Type": ctype})[0] == 200
    assert _tree(built["root"]) == built["as_built"]


def test_another_models_onnx_in_an_index_without_checksums_is_one_line_naming_it(built, tmp_path):
    index = _copy_index(built, tmp_path)
    (index / ownership.MARKER).unlink()  # made before markers: nothing to compare the file with but model.json
    shutil.copy(make_exported_model(tmp_path / "other", embed_dim=8, seed=1) / "model.onnx", index / "model" / "model.onnx")
    out = CliRunner().invoke(app, ["search", str(built["gallery"] / "g00.png"), "--index", str(index)])
    assert out.exit_code == 1 and "model.onnx: takes" in out.output and "come from different models" in out.output, out.output
    (index / "model" / "model.onnx").write_bytes(b"not onnx at all")
    out = CliRunner().invoke(app, ["search", str(built["gallery"] / "g00.png"), "--index", str(index)])
    assert out.exit_code == 1 and "not an ONNX model onnxruntime can load" in out.output and "unexpected" not in out.output
