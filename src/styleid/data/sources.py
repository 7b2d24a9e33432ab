"""Where the data comes from: synthetic, a local folder or archive, an http(s) URL, or Google Drive.

Every source is materialised into a local folder of images. Downloads and extractions are cached
and verified; the source itself is never modified. `fingerprint` is cheap (no decoding, no hashing of
folders) so that an unchanged source costs next to nothing on `dvc repro`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from styleid.data.archives import extract, is_archive_name
from styleid.errors import DataError
from styleid.fileio import atomic_dir, atomic_path

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
    """Hash of every file's relative path, size and modification time: cheap, and changes with content."""
    digest = hashlib.sha1()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue  # a dangling link: the manifest scan reports it
            digest.update(f"{path.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected: str, what: str) -> str:
    actual = sha256_file(path)
    if expected and actual.lower() != expected.lower():
        raise DataError(f"{what}: SHA-256 is {actual}, expected {expected} (data.sha256); the file is damaged or not the one meant")
    return actual


def download_url(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Stream `url` to `dest` atomically (a broken download leaves nothing behind)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
    except (OSError, ValueError) as exc:
        raise DataError(f"data.source: cannot download {url} ({exc}); check the address and your connection") from None


def download_gdrive(file_id: str, dest: Path) -> None:
    """Download a Google Drive file with gdown, atomically."""
    import gdown

    with atomic_path(dest) as tmp:
        try:
            got = gdown.download(id=file_id, output=str(tmp), quiet=True)
        except Exception as exc:  # gdown raises many kinds: all mean "no file came"
            raise DataError(f"data.source: Google Drive file {file_id} could not be downloaded ({exc}); check the id and its sharing") from None
        if not got or not tmp.exists() or tmp.stat().st_size == 0:
            raise DataError(f"data.source: Google Drive file {file_id} could not be downloaded; check the id and its sharing")


def cached_download(src: Source, cache: Path, sha256: str) -> Path:
    """Return a verified local copy of a URL or Drive file, downloading it only once."""
    key = hashlib.sha1(f"{src.kind}:{src.location}".encode()).hexdigest()[:16]
    dest = cache / "downloads" / key
    if dest.exists() and (not sha256 or sha256_file(dest).lower() == sha256.lower()):
        return dest
    if src.kind == "url":
        download_url(src.location, dest)
    else:
        download_gdrive(src.location, dest)
    _verify(dest, sha256, src.location)
    return dest


def fingerprint(src: Source, sha256: str) -> str:
    """A cheap identity of the source's content; equal fingerprints mean nothing to redo."""
    if src.kind == "folder":
        return "folder:" + folder_fingerprint(Path(src.location))
    if src.kind == "archive":
        st = Path(src.location).stat()
        return f"archive:{src.location}:{st.st_size}:{st.st_mtime_ns}:{sha256}"
    return f"{src.kind}:{src.location}:{sha256}"


def materialise_archive(archive: Path, target: Path, sha256: str, max_bytes: int) -> str:
    """Verify and extract an archive into `target` atomically; return its SHA-256."""
    digest = _verify(archive, sha256, str(archive))
    with atomic_dir(target) as tmp:
        extract(archive, tmp, max_bytes)
    return digest
