"""Hostile sources: damaged or cut-off archives, lying or endless or dripping servers, poisoned caches.

Every case must stop with one line (a DataError, no newline) and leave nothing half-made on disk:
no extracted folder, no temporary sibling, no cache entry.
"""

import http.server
import io
import lzma
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from styleid.data import sources
from styleid.data.fetch import fetch
from styleid.errors import DataError
from styleid.params import DataParams


def _fetch(tmp_path: Path, **kw):
    return fetch(DataParams(**kw), seed=0, raw_dir=tmp_path / "raw", cache_dir=tmp_path / "cache")


def _files(n: int = 6) -> list[tuple[str, bytes]]:
    return [(f"dataset/person_{k % 3}/{k:02d}.txt", bytes([65 + k]) * (700 + 97 * k)) for k in range(n)]


def _tar(path: Path, mode: str = "w", files=None) -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in files or _files():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in _files():
            zf.writestr(name, data)
    return path


def _refused(tmp_path: Path, archive: Path, match: str, **kw) -> str:
    with pytest.raises(DataError, match=match) as err:
        _fetch(tmp_path, source=str(archive), **kw)
    message = str(err.value)
    assert "\n" not in message and str(archive) in message
    raw = tmp_path / "raw"
    assert not (raw / "extracted").exists()
    assert not raw.exists() or not [p for p in raw.iterdir()], list(raw.iterdir())  # no temporary sibling left
    return message


def _cut_tar(tmp_path: Path) -> Path:
    """A tar cut exactly after its third member (what an interrupted download leaves: no end-of-archive marker)."""
    full = _tar(tmp_path / "full.tar")
    with tarfile.open(full) as tf:
        third = tf.getmembers()[2]
    end = third.offset_data + ((third.size + 511) // 512) * 512
    cut = tmp_path / "cut.tar"
    cut.write_bytes(full.read_bytes()[:end])
    return cut


def test_tar_cut_at_a_member_boundary_is_refused(tmp_path):
    _refused(tmp_path, _cut_tar(tmp_path), "cut off")


def test_tar_gz_with_a_damaged_stream_is_refused(tmp_path):
    whole = _tar(tmp_path / "whole.tar.gz", "w:gz").read_bytes()
    (tmp_path / "short.tar.gz").write_bytes(whole[: len(whole) * 2 // 3])  # the stream stops before its end marker
    _refused(tmp_path, tmp_path / "short.tar.gz", "not a valid or complete archive|cut off")
    flipped = bytearray(whole)
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flipped.tar.gz").write_bytes(bytes(flipped))
    _refused(tmp_path, tmp_path / "flipped.tar.gz", "not a valid or complete archive|cut off")


def test_damaged_tar_xz_is_refused(tmp_path):
    whole = bytearray(_tar(tmp_path / "whole.tar.xz", "w:xz").read_bytes())
    whole[len(whole) // 2] ^= 0xFF
    (tmp_path / "bad.tar.xz").write_bytes(bytes(whole))
    _refused(tmp_path, tmp_path / "bad.tar.xz", "not a valid or complete archive")
    assert lzma  # the decompressor whose errors become that line


def test_tar_hard_link_to_a_missing_member_is_refused(tmp_path):
    path = tmp_path / "link.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("dataset/person_0/a.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("dataset/person_0/b.txt")
        link.type, link.linkname = tarfile.LNKTYPE, "dataset/person_0/nowhere.txt"
        tf.addfile(link)
    _refused(tmp_path, path, "hard link .* not before it")


def test_zip_member_failing_its_crc_is_refused(tmp_path):
    data = bytearray(_zip(tmp_path / "ok.zip").read_bytes())
    at = data.index(bytes([65 + 2]) * 50)  # inside the third member's stored bytes
    data[at] ^= 0x01
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    _refused(tmp_path, tmp_path / "crc.zip", "Bad CRC-32|not a valid or complete archive")


def _patch_zip_headers(data: bytearray, local_offset: int, central_offset: int, value: int, size: int = 2) -> None:
    """Set a field in every local file header (PK\\x03\\x04) and central directory entry (PK\\x01\\x02)."""
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            data[at + offset : at + offset + size] = value.to_bytes(size, "little")
            start = at + 4


def test_encrypted_and_unsupported_zip_members_are_one_line(tmp_path):
    data = bytearray(_zip(tmp_path / "ok.zip").read_bytes())
    encrypted = bytearray(data)
    _patch_zip_headers(encrypted, 6, 8, 0x1)  # general purpose flag bit 0: encrypted
    (tmp_path / "enc.zip").write_bytes(bytes(encrypted))
    _refused(tmp_path, tmp_path / "enc.zip", "encrypted; repack it without a password")
    deflate64 = bytearray(data)
    _patch_zip_headers(deflate64, 8, 10, 9)  # compression method 9 (deflate64): zipfile cannot read it
    (tmp_path / "d64.zip").write_bytes(bytes(deflate64))
    _refused(tmp_path, tmp_path / "d64.zip", "NotImplementedError|not a valid or complete archive")


def test_member_count_is_capped(tmp_path):
    _refused(tmp_path, _tar(tmp_path / "many.tar"), "more than 3 members; raise data.max_archive_members", max_archive_members=3)
    _refused(tmp_path, _zip(tmp_path / "many.zip"), "more than 3 members", max_archive_members=3)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves what the test put in `behaviour`: ok, short (lies about Content-Length), endless, drip, html."""

    behaviour: dict = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        kind, payload = self.behaviour["kind"], self.behaviour["payload"]
        self.send_response(200)
        try:
            if kind == "ok":
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            elif kind == "short":
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
            elif kind == "endless":
                self.end_headers()
                while True:
                    self.wfile.write(b"\0" * 65536)
            elif kind == "drip":
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.3)
            elif kind == "html":
                body = b"<html><body>Quota exceeded</body></html>"
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture()
def server(tmp_path):
    behaviour: dict = {"kind": "ok", "payload": b""}
    handler = type("Handler", (_Handler,), {"behaviour": behaviour})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield behaviour, f"http://127.0.0.1:{httpd.server_address[1]}/data.tar"
    httpd.shutdown()


def _cache_entries(tmp_path: Path) -> list[Path]:
    downloads = tmp_path / "cache" / "downloads"
    return sorted(downloads.iterdir()) if downloads.is_dir() else []


def test_download_shorter_than_its_content_length_is_refused_and_not_cached(tmp_path, server):
    behaviour, url = server
    behaviour.update(kind="short", payload=_tar(tmp_path / "a.tar").read_bytes())
    with pytest.raises(DataError, match=r"ended after .* of its .* bytes \(Content-Length\)|cannot download"):
        _fetch(tmp_path, source=url)
    assert _cache_entries(tmp_path) == []


def test_endless_download_stops_at_the_byte_limit(tmp_path, server):
    behaviour, url = server
    behaviour.update(kind="endless")
    start = time.monotonic()
    with pytest.raises(DataError, match="sent more than data.max_archive_bytes=2,000,000 bytes"):
        _fetch(tmp_path, source=url, max_archive_bytes=2_000_000)
    assert time.monotonic() - start < 30 and _cache_entries(tmp_path) == []


def test_dripping_download_stops_when_it_stalls(tmp_path, server):
    behaviour, url = server
    behaviour.update(kind="drip")
    dest = tmp_path / "dl"
    with pytest.raises(DataError, match=r"stalled\); stopped"):
        sources.download_url(url, dest, max_bytes=10**9, stall_seconds=1.0)
    assert not dest.exists() and not list(tmp_path.glob(".dl*"))


def test_failed_downloads_never_poison_the_cache(tmp_path, server, caplog):
    """An error page, then a checksum mismatch, leave nothing cached: the next run asks the server again and succeeds."""
    behaviour, url = server
    good = _tar(tmp_path / "good.tar").read_bytes()
    behaviour.update(kind="html", payload=b"")
    with pytest.raises(DataError, match="neither a zip nor a tar archive"):
        _fetch(tmp_path, source=url)
    assert _cache_entries(tmp_path) == []
    behaviour.update(kind="ok", payload=good)
    with pytest.raises(DataError, match="SHA-256 is"):
        _fetch(tmp_path, source=url, sha256="0" * 64)
    assert _cache_entries(tmp_path) == []
    with pytest.raises(DataError, match="unrecognised dataset layout"):  # the archive itself is good (text files): it gets cached
        _fetch(tmp_path, source=url)
    assert len(_cache_entries(tmp_path)) == 1
    assert "plain http" in caplog.text
