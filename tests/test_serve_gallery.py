"""The gallery changed through a real server on 127.0.0.1 (GET/POST/DELETE /gallery): the token, searches racing the
changes, and a server bound beyond this machine without a token staying read-only."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import write_image
from test_serve import _get, _post, _start

from styleid.gallery.folder_index import build_index

pytest.importorskip("fastapi", reason="the serve extra: pip install 'styleid[serve]' (make installs it)")
REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token"


def _send(url: str, method: str, fields: dict | None = None, file: tuple[str, bytes] | None = None, token: str | None = None) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in (fields or {}).items():
        body += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
    if file:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file[0]}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + file[1] + b"\r\n"
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, (body + f"--{boundary}--\r\n".encode()) if fields or file else None, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _serve(index: Path, *args: str, **env) -> tuple[subprocess.Popen, str]:
    return _start(index, args=args, **env)


@pytest.fixture
def served(exported_model, tmp_path):
    files = [write_image(tmp_path / "gallery" / f"g{k}.png", k, (48, 48)) for k in range(6)]
    build_index(tmp_path / "gallery", tmp_path / "index", exported_model)
    proc, url = _serve(tmp_path / "index", STYLEID_TOKEN=TOKEN)
    yield {"url": url, "files": files, "new": [write_image(tmp_path / f"new{k}.png", 50 + k, (50, 46)) for k in range(3)], "index": tmp_path / "index"}
    proc.terminate()
    proc.wait(timeout=30)


def test_the_gallery_is_listed_added_to_and_removed_from_with_the_token(served):
    url, new = served["url"], served["new"][0]
    assert _send(url + "/gallery", "POST", {"label": "Ada"}, ("new0.png", new.read_bytes()))[0] == 401
    assert _send(url + "/gallery", "POST", {"label": "Ada"}, ("new0.png", new.read_bytes()), token="wrong")[0] == 401
    status, added = _send(url + "/gallery", "POST", {"label": "Ada"}, ("new0.png", new.read_bytes()), token=TOKEN)
    assert status == 200 and added["name"] == "new0.png" and added["label"] == "Ada" and added["gallery_images"] == 7
    status, found = _post(url + "/search", "new0.png", new.read_bytes(), 3)
    assert status == 200 and (found["matches"][0]["id"], found["matches"][0]["label"]) == (added["id"], "Ada")
    with urllib.request.urlopen(url + f"/gallery/{found['matches'][0]['row']}", timeout=30) as response:  # its thumbnail, from the index
        assert response.headers["Content-Type"] == "image/jpeg"
    status, page = _get(url + "/gallery?offset=5&limit=10")
    assert status == 200 and page["total"] == 7 and [i["id"] for i in page["images"]][-1] == added["id"] and page["images"][-1]["added"]
    assert _get(url + "/gallery?limit=0")[0] == 400
    assert _send(url + f"/gallery/{added['id']}", "DELETE")[0] == 401
    assert _send(url + f"/gallery/{added['id']}", "DELETE", token=TOKEN) == (200, {"removed": added["id"], "name": "new0.png", "gallery_images": 6})
    assert _send(url + f"/gallery/{added['id']}", "DELETE", token=TOKEN)[0] == 404
    assert added["id"] not in [m["id"] for m in _post(url + "/search", "new0.png", new.read_bytes(), 6)[1]["matches"]]
    status, body = _send(url + "/gallery", "POST", None, ("notes.txt", b"not an image"), token=TOKEN)
    assert status == 400 and "notes.txt" in body["error"] and _get(url + "/health")[1]["gallery_images"] == 6


def test_searches_racing_gallery_changes_all_see_a_whole_gallery(served):
    url, files = served["url"], served["files"]

    def search(k: int) -> tuple[int, dict]:
        return _post(url + "/search", f"g{k % 6}.png", files[k % 6].read_bytes(), 4)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        searches = [pool.submit(search, k) for k in range(40)]
        for new in served["new"]:  # meanwhile: add three images, then remove them
            status, added = _send(url + "/gallery", "POST", None, (new.name, new.read_bytes()), token=TOKEN)
            assert status == 200, added
            assert _send(url + f"/gallery/{added['id']}", "DELETE", token=TOKEN)[0] == 200
        answers = [job.result() for job in searches]
    assert all(status == 200 and len(body["matches"]) == 4 and body["matches"][0]["name"] == f"g{k % 6}.png"
               for k, (status, body) in enumerate(answers))


def test_a_server_beyond_this_machine_without_a_token_is_read_only(exported_model, tmp_path):
    write_image(tmp_path / "gallery" / "g0.png", 0, (48, 48))
    build_index(tmp_path / "gallery", tmp_path / "index", exported_model)
    proc, url = _serve(tmp_path / "index", "--host", "0.0.0.0", STYLEID_TOKEN="")
    try:
        status, body = _send(url + "/gallery", "POST", None, ("g.png", (tmp_path / "gallery" / "g0.png").read_bytes()))
        assert status == 403 and "read-only" in body["error"] and "--token" in body["error"]
        assert _get(url + "/gallery")[1]["total"] == 1  # reading is open
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_people_groups_the_gallery_and_follows_its_changes(exported_model, tmp_path):
    for person, copies in enumerate((5, 4, 3)):  # the same picture under several names: one embedding a person
        for k in range(copies):
            write_image(tmp_path / "gallery" / f"p{person}_{k}.png", 10 + person, (48, 48))
    build_index(tmp_path / "gallery", tmp_path / "index", exported_model)
    proc, url = _serve(tmp_path / "index", STYLEID_TOKEN=TOKEN)
    try:
        small = "?k1=3&k2=2&min_samples=3"  # a person has at most 5 images here
        status, found = _get(url + "/people" + small)
        assert status == 200 and (found["images"], found["ungrouped"]) == (12, 0)
        assert [sorted({i["name"].split("_")[0] for i in g["images"]}) for g in found["groups"]] == [["p0"], ["p1"], ["p2"]]
        extra = write_image(tmp_path / "p1_extra.png", 11, (48, 48))  # one more picture of person 1, labelled
        assert _send(url + "/gallery", "POST", {"label": "Bea"}, ("p1_extra.png", extra.read_bytes()), token=TOKEN)[0] == 200
        status, found = _get(url + "/people" + small)
        assert status == 200 and found["images"] == 13 and len(found["groups"][1]["images"]) == 5
        assert "Bea" in [i["label"] for i in found["groups"][1]["images"]]
        assert _get(url + "/people?k1=0")[0] == 400
    finally:
        proc.terminate()
        proc.wait(timeout=30)
