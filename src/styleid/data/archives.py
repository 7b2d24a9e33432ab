"""Safe archive extraction: nothing lands outside the target folder, sizes and member counts are
bounded, and an archive is read to its end and checked (a cut-off download is never half a dataset).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from styleid.errors import DataError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _check_member(archive: Path, name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{archive}: refusing absolute path {name!r} in archive; repack it with relative paths")
    if ".." in pure.parts:
        raise DataError(f"{archive}: refusing path {name!r} that climbs out with '..'; repack it without '..'")


MAX_MEMBERS = 10_000_000  # data.max_archive_members' default
FIX = "download or repack it again"


def _too_many(archive: Path, n: int, max_members: int) -> None:
    if n > max_members:
        raise DataError(f"{archive}: holds more than {max_members:,} members; raise data.max_archive_members if that is expected")


def _extract_zip(archive: Path, target: Path, max_bytes: int, max_members: int = MAX_MEMBERS) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        _too_many(archive, len(members), max_members)
        total = 0
        for info in members:
            _check_member(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DataError(f"{archive}: refusing symbolic link {info.filename!r}; repack it without links")
            total += info.file_size
            if total > max_bytes:
                raise DataError(f"{archive}: unpacks to more than {max_bytes:,} bytes; raise data.max_archive_bytes if that is expected")
        for info in members:
            if info.flag_bits & 0x1:
                raise DataError(f"{archive}: member {info.filename[:100]!r} is encrypted; repack it without a password")
        for info in members:
            dest = target / info.filename
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def _decompressed(archive: Path):
    """The tar stream inside `archive`, whatever compression its first bytes say it has."""
    with open(archive, "rb") as fh:
        magic = fh.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(archive, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(archive, "rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.open(archive, "rb")
    return open(archive, "rb")


def _check_tar_end(archive: Path, end: int) -> None:
    """The stream decompresses cleanly to its end, and the end-of-archive marker (two zero blocks) follows the last member."""
    with _decompressed(archive) as fh:
        left = end
        while left > 0:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        marker = fh.read(1024)
        while fh.read(1 << 20):  # to the end: a compressed stream that stops early raises here
            pass
    if left > 0 or len(marker) < 1024 or marker.strip(b"\0"):
        raise DataError(f"{archive}: the tar archive is cut off (no end-of-archive marker after its last member); {FIX}")


def _extract_tar(archive: Path, target: Path, max_bytes: int, max_members: int = MAX_MEMBERS) -> None:
    with tarfile.open(archive) as tf:
        members = []
        for m in tf:  # one at a time, so a huge member list stops at the cap instead of filling memory
            members.append(m)
            _too_many(archive, len(members), max_members)
        _check_tar_end(archive, tf.offset)
        names: set[str] = set()
        total = 0
        for m in members:
            _check_member(archive, m.name)
            if m.islnk() and m.linkname not in names:
                raise DataError(f"{archive}: hard link {m.name[:100]!r} points to {m.linkname[:100]!r}, which is not before it in the archive; {FIX}")
            names.add(m.name)
            if m.issym() or m.islnk():
                link = PurePosixPath(m.name).parent / m.linkname if m.issym() else PurePosixPath(m.linkname)
                if PurePosixPath(m.linkname).is_absolute() or ".." in link.parts:
                    raise DataError(f"{archive}: refusing link {m.name!r} -> {m.linkname!r} that points outside; repack it without links")
            elif not (m.isfile() or m.isdir()):
                raise DataError(f"{archive}: refusing special file {m.name!r}; repack it with plain files only")
            total += m.size
            if total > max_bytes:
                raise DataError(f"{archive}: unpacks to more than {max_bytes:,} bytes; raise data.max_archive_bytes if that is expected")
        tf.extractall(target, members=members, filter="data")  # second guard: the stdlib's safe filter


def archive_kind(path: Path) -> str:
    """'zip' or 'tar', by name when it says, else by content (downloads have no telling name)."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if is_archive_name(name):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise DataError(f"{path}: neither a zip nor a tar archive; check the download or the file")


ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, OSError, RuntimeError, NotImplementedError,
                  ValueError, KeyError, lzma.LZMAError, zlib.error)  # what zipfile, tarfile and the decompressors raise


def extract(archive: Path, target: Path, max_bytes: int, max_members: int = MAX_MEMBERS) -> None:
    """Extract `archive` into the (empty, existing) folder `target`; a DataError says what was wrong.

    Zip members are read through their CRC check; a tar stream is read to its end-of-archive marker."""
    kind = archive_kind(archive)
    try:
        if kind == "zip":
            _extract_zip(archive, target, max_bytes, max_members)
        else:
            _extract_tar(archive, target, max_bytes, max_members)
    except ARCHIVE_ERRORS as exc:
        if isinstance(exc, tarfile.FilterError):
            raise DataError(f"{archive}: unsafe member ({str(exc)[:160]}); repack it with plain relative files") from None
        text = " ".join(str(exc).split())[:160]
        raise DataError(f"{archive}: not a valid or complete archive ({exc.__class__.__name__}: {text}); {FIX}") from None

