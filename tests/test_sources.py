"""Sources: folder, archives (and unsafe ones), http(s) URL against a local server, Google Drive via gdown."""

import hashlib
import http.server
import io
import shutil
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from styleid.data import sources
from styleid.data.fetch import fetch, source_fingerprint
from styleid.errors import DataError
from styleid.params import DataParams


def _zip_folder(folder: Path, out: Path, wrap: str = "dataset") -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{wrap}/{path.relative_to(folder).as_posix()}")
    return out


def _fetch(tmp_path, **kw):
    return fetch(DataParams(**kw), seed=0, raw_dir=tmp_path / "raw", cache_dir=tmp_path / "cache")


def test_folder_source_is_used_in_place_and_never_modified(synthetic_root, tmp_path):
    before = sources.folder_fingerprint(synthetic_root)
    result = _fetch(tmp_path, source=str(synthetic_root))
    assert result.root == synthetic_root and result.layout == "domains" and len(result.items) == 48
    assert sources.folder_fingerprint(synthetic_root) == before


def test_fingerprint_notices_a_changed_source(tmp_path, synthetic_root):
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_root, copy)
    first = source_fingerprint(DataParams(source=str(copy)), 0)
    assert source_fingerprint(DataParams(source=str(copy)), 0) == first
    victim = next(copy.rglob("*.png"))
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert source_fingerprint(DataParams(source=str(copy)), 0) != first


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_archives_are_extracted_and_verified(kind, synthetic_root, tmp_path):
    archive = tmp_path / f"data.{kind}"
    if kind == "zip":
        _zip_folder(synthetic_root, archive)
    else:
        with tarfile.open(archive, "w:gz" if kind == "tar.gz" else "w") as tf:
            tf.add(synthetic_root, arcname="dataset")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    result = _fetch(tmp_path, source=str(archive), sha256=digest)
    assert len(result.items) == 48 and result.layout == "domains"
    assert archive.exists()  # the source is never deleted
    with pytest.raises(DataError, match="SHA-256 is .* expected 0000"):
        _fetch(tmp_path, source=str(archive), sha256="0" * 64)


def _zip_with(tmp_path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    out = tmp_path / "bad.zip"
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return out


@pytest.mark.parametrize("member, match", [("../evil.jpg", "climbs out"), ("/abs/evil.jpg", "absolute path")])
def test_unsafe_zip_members_are_refused(tmp_path, member, match):
    with pytest.raises(DataError, match=match):
        _fetch(tmp_path, source=str(_zip_with(tmp_path, member)))
    assert not (tmp_path / "evil.jpg").exists()


def test_zip_symlink_is_refused(tmp_path):
    with pytest.raises(DataError, match="symbolic link"):
        _fetch(tmp_path, source=str(_zip_with(tmp_path, "a/link.jpg", b"/etc/passwd", mode=0o120777)))


def test_tar_link_out_of_target_is_refused(tmp_path):
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("data/p/link.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="points outside"):
        _fetch(tmp_path, source=str(archive))


def test_corrupt_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DataError, match="broken.zip"):
        _fetch(tmp_path, source=str(bad))


def test_archive_size_limit(tmp_path):
    with pytest.raises(DataError, match="max_archive_bytes"):
        _fetch(tmp_path, source=str(_zip_with(tmp_path, "p/a.jpg", b"0" * 5000)), max_archive_bytes=100)


def test_missing_source_names_the_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        sources.classify(str(tmp_path / "nowhere"))


def test_relative_paths_resolve_against_the_repository_also_in_dvc_temp_copies(tmp_path):
    repo = tmp_path / "repo"
    inside = repo / ".dvc" / "tmp" / "exps" / "tmpabc123"
    inside.mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    assert sources.repo_root(inside) == repo
    assert sources.classify("../shared", root=sources.repo_root(inside)).location == str(tmp_path / "shared")


@pytest.fixture()
def http_server(tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_source_downloads_once_and_verifies(http_server, synthetic_root, tmp_path):
    served, base = http_server
    archive = _zip_folder(synthetic_root, served / "dataset.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    result = _fetch(tmp_path, source=f"{base}/dataset.zip", sha256=digest)
    assert len(result.items) == 48
    archive.unlink()  # cached: a second fetch needs no server file
    assert len(_fetch(tmp_path, source=f"{base}/dataset.zip", sha256=digest).items) == 48
    with pytest.raises(DataError, match="cannot download"):
        _fetch(tmp_path, source=f"{base}/missing.zip")


def test_gdrive_source_downloads_with_gdown(monkeypatch, synthetic_root, tmp_path):
    """The Drive exchange is replaced at the HTTP boundary (requests' adapter) only; gdown runs for real."""
    import requests

    payload = _zip_folder(synthetic_root, tmp_path / "payload.zip").read_bytes()
    seen = []

    def send(self, request, **kwargs):
        seen.append(request.url)
        response = requests.Response()
        response.status_code, response.url, response.request = 200, request.url, request
        response.headers.update({"Content-Type": "application/zip", "Content-Disposition": 'attachment; filename="dataset.zip"',
                                 "Content-Length": str(len(payload))})
        response.raw = io.BytesIO(payload)
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    result = _fetch(tmp_path, source="https://drive.google.com/file/d/FILEID123/view?usp=sharing")
    assert len(result.items) == 48
    assert any("FILEID123" in url and "drive.google.com" in url for url in seen)
    assert sources.classify("gdrive:FILEID123") == sources.Source("gdrive", "FILEID123")


def test_fingerprint_follows_linked_folders_and_files(tmp_path, synthetic_root):
    """A person folder that is a link: an edit inside it changes the fingerprint (the manifest never goes stale); link loops end."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(synthetic_root / "photos" / "person_000", elsewhere / "person_000")
    root = tmp_path / "ds"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "person_000").symlink_to(elsewhere / "person_000", target_is_directory=True)
    (root / "photos" / "loop").symlink_to(root / "photos", target_is_directory=True)  # a cycle must not hang the walk
    before = sources.folder_fingerprint(root)
    victim = sorted((elsewhere / "person_000").iterdir())[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert sources.folder_fingerprint(root) != before
