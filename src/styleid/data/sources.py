"""Where the data comes from: synthetic, a local folder or archive, an http(s) URL, or Google Drive.

Every source is materialised into a local folder of images. Downloads and extractions are cached
and verified; the source itself is never modified. `fingerprint` is cheap (no decoding, no hashing of
folders) so that an unchanged source costs next to nothing on `dvc repro`.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from styleid.data.archives import MAX_MEMBERS, extract, is_archive_name
from styleid.errors import DataError
from styleid.fileio import atomic_dir, atomic_path, sweep_stale
from styleid.hashing import file_digest

log = logging.getLogger(__name__)

GDRIVE_RE = re.compile(r"^(?:gdrive:(?P<id>[\w-]+)|https://drive\.google\.com/.*?(?:/d/|[?&]id=)(?P<id2>[\w-]+).*)$")


@dataclass(frozen=True)
class Source:
    kind: str  # synthetic | folder | archive | url | gdrive
    location: str  # folder/archive path (absolute), URL, or Drive file id


def repo_root(cwd: Path | None = None) -> Path:
    """The user's repository root, also from inside a DVC temporary experiment copy."""
    cwd = (cwd or Path.cwd()).resolve()
    parts = cwd.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return cwd


def classify(source: str, root: Path | None = None) -> Source:
    """Parse `data.source` into a Source; relative paths resolve against the repository root."""
    source = source.strip()
    if source == "synthetic":
        return Source("synthetic", "")
    if m := GDRIVE_RE.match(source):
        return Source("gdrive", m.group("id") or m.group("id2"))
    if source.startswith(("https://", "http://")):
        return Source("url", source)
    path = Path(os.path.expanduser(source))
    if not path.is_absolute():
        path = (root or repo_root()) / path
    path = Path(os.path.normpath(path))
    if path.is_dir():
        return Source("folder", str(path))
    if path.is_file() and is_archive_name(path.name):
        return Source("archive", str(path))
    if path.is_file():
        raise DataError(f"data.source: {path} is a file but not a .zip/.tar/.tar.gz archive; point it at a folder or an archive")
    raise DataError(f"data.source: {path} does not exist; give a folder, an archive, an https URL, gdrive:<id> or 'synthetic'")


def folder_fingerprint(folder: Path) -> str:
    """Hash of every file's relative path, size and modification time: cheap, and changes with content.

    Linked folders and files are followed (the layout scan reads through them too), each real folder once."""
    digest = hashlib.sha1()
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # a link loop, or a folder linked twice
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue  # a dangling link: the manifest scan reports it
            digest.update(f"{path.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _verify(path: Path, expected: str, what: str) -> str:
    actual = file_digest(path)
    if expected and actual.lower() != expected.lower():
        raise DataError(f"{what}: SHA-256 is {actual}, expected {expected} (data.sha256); the file is damaged or not the one meant")
    return actual


STALL_SECONDS = 60.0  # the window over which a download's rate is measured
MIN_RATE = 1024  # bytes per second over each window, at least (data.download_min_rate)
DEADLINE = 43_200.0  # seconds for a whole download, at most (data.download_deadline)


def download_url(url: str, dest: Path, max_bytes: int, timeout: float = 60.0, stall_seconds: float = STALL_SECONDS,
                 min_rate: float = MIN_RATE, deadline: float = DEADLINE) -> None:
    """Stream `url` to `dest`: all of Content-Length, at most max_bytes, at least `min_rate` bytes/s over each window of
    `stall_seconds`, within `deadline` seconds in all; a failure leaves no `dest`. Blocks are taken as they come (read1),
    so a server that trickles a byte at a time is measured, never waited on without end."""
    if url.startswith("http://"):
        log.warning("data.source: %s is plain http (no transport security); fine for a local mirror, use https otherwise", url)
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest) as tmp:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise DataError(f"data.source: {url} is {expected:,} bytes, more than data.max_archive_bytes={max_bytes:,}; raise it if that is expected")
            start = window_start = time.monotonic()
            window_bytes = 0
            with open(tmp, "wb") as out:
                while block := response.read1(1 << 16):
                    out.write(block)
                    done += len(block)
                    window_bytes += len(block)
                    if done > max_bytes:
                        raise DataError(f"data.source: {url} sent more than data.max_archive_bytes={max_bytes:,} bytes; stopped (raise it if that is expected)")
                    now = time.monotonic()
                    if now - start > deadline:
                        raise DataError(f"data.source: {url} took over data.download_deadline={deadline:.0f} s ({done:,} bytes so far); "
                                        "stopped: raise it for a slow connection, or try again later")
                    if now - window_start >= stall_seconds:
                        if window_bytes < min_rate * (now - window_start):
                            raise DataError(f"data.source: {url} sent {window_bytes} bytes in the last {now - window_start:.0f} s, under "
                                            f"data.download_min_rate={min_rate:g} bytes/s (stalled); stopped, try again later or lower it")
                        window_start, window_bytes = now, 0
            if expected is not None and done != expected:
                raise DataError(f"data.source: {url} ended after {done:,} of its {expected:,} bytes (Content-Length); the download was cut off, try again")
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DataError(f"data.source: cannot download {url} ({exc.__class__.__name__}: {str(exc)[:160]}); check the address and your connection") from None


def download_gdrive(file_id: str, dest: Path) -> None:
    """Download a Google Drive file with gdown, atomically."""
    import gdown

    with atomic_path(dest) as tmp:
        try:
            got = gdown.download(id=file_id, output=str(tmp), quiet=True)
        except Exception as exc:  # gdown raises many kinds: all mean "no file came"
            raise DataError(f"data.source: Google Drive file {file_id} could not be downloaded ({exc.__class__.__name__}); check the id and its sharing") from None
        if not got or not tmp.exists() or tmp.stat().st_size == 0:
            raise DataError(f"data.source: Google Drive file {file_id} could not be downloaded; check the id and its sharing")


def download_key(src: Source) -> str:
    return hashlib.sha1(f"{src.kind}:{src.location}".encode()).hexdigest()[:16]


def fetch_archive(src: Source, cache: Path, sha256: str, target: Path, max_bytes: int, max_members: int, min_rate: float = MIN_RATE,
                  deadline: float = DEADLINE) -> None:
    """Extract a URL's or Drive file's archive into `target`, downloading it only when the cache has no good copy.

    The cache holds only downloads that passed every check (Content-Length, size, checksum, and an
    extraction that read the archive to its end); a download that fails any of them is deleted, so
    the next run asks the server again instead of reusing it."""
    downloads = cache / "downloads"
    dest = downloads / download_key(src)
    if dest.exists():
        try:
            materialise_archive(dest, target, sha256, max_bytes, max_members)
            return
        except DataError as exc:
            log.warning("data.source: the cached copy of %s failed its checks (%s); downloading it again", src.location, exc)
            dest.unlink(missing_ok=True)
    downloads.mkdir(parents=True, exist_ok=True)
    sweep_stale(dest)  # parts a killed fetch left
    part = downloads / f".{dest.name}.{os.getpid()}-download.tmp"
    try:
        if src.kind == "url":
            download_url(src.location, part, max_bytes, min_rate=min_rate, deadline=deadline)
        else:
            download_gdrive(src.location, part)
        materialise_archive(part, target, sha256, max_bytes, max_members, what=src.location)
        os.replace(part, dest)  # into the cache only now, atomically
    finally:
        part.unlink(missing_ok=True)


def fingerprint(src: Source, sha256: str) -> str:
    """A cheap identity of the source's content; equal fingerprints mean nothing to redo."""
    if src.kind == "folder":
        return "folder:" + folder_fingerprint(Path(src.location))
    if src.kind == "archive":
        st = Path(src.location).stat()
        return f"archive:{src.location}:{st.st_size}:{st.st_mtime_ns}:{sha256}"
    return f"{src.kind}:{src.location}:{sha256}"


def materialise_archive(archive: Path, target: Path, sha256: str, max_bytes: int, max_members: int = MAX_MEMBERS,
                        what: str = "") -> str:
    """Verify and extract an archive into `target` atomically; return its SHA-256. `what` names it in a checksum error."""
    digest = _verify(archive, sha256, what or str(archive))
    with atomic_dir(target, "extracted") as tmp:
        extract(archive, tmp, max_bytes, max_members)
    return digest
