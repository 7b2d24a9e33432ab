"""`styleid serve` against a real server on 127.0.0.1: health, search, bad uploads, an unknown index, 50 at once,
and the page in a real headless browser (Debian's chromium, driven by Selenium) when one is installed."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleid.fileio import write_json
from styleid.gallery.folder_index import build_index
from styleid.inference.onnx_export import export_onnx
from styleid.models.embedder import ModelConfig, build, save

pytest.importorskip("fastapi", reason="the serve extra: pip install 'styleid[serve]' (make installs it)")
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, filename: str, data: bytes, top_k: int = 5) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n{top_k}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _start(index: Path, until=lambda body: body["status"] != "loading", args: tuple = (), **env) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "styleid.cli", "serve", "--index", str(index), "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO / "src"), **env})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            status, body = _get(url + "/health")
            if until(body):
                return proc, url
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server never became ready")


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    model_dir = root / "model"
    __import__("torch").manual_seed(0)  # the same random weights every run
    model = build(ModelConfig("facenet", "none", 96, embed_dim=16))
    save(model, model_dir)
    export_onnx(model, model_dir / "model.onnx")
    write_json(model_dir / "card.json", {"alignment": {"method": "none"}, "flip_tta": True, "match": {"threshold": 0.9, "false_match_rate": 0.01}})
    files = []
    for k in range(8):
        files.append(root / "gallery" / f"g{k}.png")
        files[-1].parent.mkdir(exist_ok=True)
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(files[-1])
    build_index(root / "gallery", root / "index", model_dir)
    proc, url = _start(root / "index")
    yield {"url": url, "files": files, "root": root}
    proc.terminate()
    proc.wait(timeout=30)


def test_health_then_search_finds_the_same_image_first_with_its_crop(gallery):
    assert _get(gallery["url"] + "/health") == (200, {"status": "ready", "index": str(gallery["root"] / "index"), "gallery_images": 8})
    status, body = _post(gallery["url"] + "/search", "g3.png", gallery["files"][3].read_bytes())
    assert status == 200 and body["matches"][0]["name"] == "g3.png" and body["matches"][0]["verdict"] == "same person"
    assert len(body["matches"]) == 5 and body["query_crop"].startswith("data:image/jpeg;base64,") and "cosine" in body["score"]
    with urllib.request.urlopen(gallery["url"] + f"/gallery/{body['matches'][0]['row']}", timeout=30) as response:
        assert response.headers["Content-Type"] == "image/jpeg" and len(response.read()) > 100


def test_bad_uploads_are_clear_4xx_json(gallery):
    status, body = _post(gallery["url"] + "/search", "notes.txt", b"hello, not an image")
    assert status == 400 and "not a readable image" in body["error"]
    status, body = _post(gallery["url"] + "/search", "huge.png", b"\0" * (10_000_000 + 10))
    assert status == 413 and "over 10,000,000 bytes" in body["error"]
    assert _get(gallery["url"] + "/gallery/999")[0] == 404
    status, body = _get(gallery["url"] + "/health")  # still alive after all that
    assert status == 200 and body["status"] == "ready"


def test_fifty_concurrent_searches_are_all_answered_correctly(gallery):
    jobs = [(k % 8) for k in range(50)]
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda k: _post(gallery["url"] + "/search", f"g{k}.png", gallery["files"][k].read_bytes(), 3), jobs))
    assert all(status == 200 and body["matches"][0]["name"] == f"g{k}.png" for k, (status, body) in zip(jobs, answers))


def test_an_unknown_index_is_a_503_with_the_reason_not_a_crash(tmp_path):
    proc, url = _start(tmp_path / "no-such-index")
    try:
        status, body = _get(url + "/health")
        assert status == 503 and body["status"] == "failed" and "not a styleid index" in body["error"]
        status, body = _post(url + "/search", "x.png", b"x")
        assert status == 503 and "failed" in body["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_search_while_the_index_loads_is_a_503_saying_so(gallery):
    proc, url = _start(gallery["root"] / "index", until=lambda body: True, STYLEID_SERVE_LOAD_DELAY="60")
    try:
        assert _get(url + "/health")[1]["status"] == "loading"
        status, body = _post(url + "/search", "g0.png", gallery["files"][0].read_bytes())
        assert status == 503 and body["error"] == "the index is loading; try again in a moment"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)


def test_the_page_in_a_real_browser_shows_the_right_first_match(gallery, tmp_path):
    selenium = pytest.importorskip("selenium", reason="the browser test needs selenium (pip install selenium)")
    if not _chromium() or not shutil.which("chromedriver"):
        pytest.skip("the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = selenium.webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = selenium.webdriver.Chrome(options=options, service=selenium.webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
    try:
        driver.get(gallery["url"] + "/")
        driver.find_element(By.ID, "file").send_keys(str(gallery["files"][5]))
        WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .match"))
        first = driver.find_elements(By.CSS_SELECTOR, "#results .match")[0]
        assert first.get_attribute("data-name") == "g5.png" and "same person" in first.text
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"))  # thumbnails in
        driver.find_element(By.ID, "people-button").click()  # the people view: the gallery grouped without labels
        WebDriverWait(driver, 120).until(lambda d: "people found among 8 images" in d.find_element(By.ID, "status").text)
        shown = sum(len(g.find_elements(By.TAG_NAME, "img")) for g in driver.find_elements(By.CSS_SELECTOR, "#people .group"))
        assert shown == 8 - int(driver.find_element(By.ID, "status").text.split("(")[1].split()[0])  # every grouped image, once
        shot = tmp_path / "page.png"
        driver.save_screenshot(str(shot))
        pixels = np.asarray(Image.open(shot).convert("L"))
        assert pixels.std() > 10  # not blank: text, thumbnails and borders
    finally:
        driver.quit()
