"""Safe archive extraction: nothing lands outside the target folder, and sizes are bounded."""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
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


def _extract_zip(archive: Path, target: Path, max_bytes: int) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        total = 0
        for info in members:
            _check_member(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DataError(f"{archive}: refusing symbolic link {info.filename!r}; repack it without links")
            total += info.file_size
            if total > max_bytes:
                raise DataError(f"{archive}: unpacks to more than {max_bytes:,} bytes; raise data.max_archive_bytes if that is expected")
        for info in members:
            dest = target / info.filename
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def _extract_tar(archive: Path, target: Path, max_bytes: int) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        total = 0
        for m in members:
            _check_member(archive, m.name)
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


def extract(archive: Path, target: Path, max_bytes: int) -> None:
    """Extract `archive` into the (empty, existing) folder `target`; a DataError says what was wrong."""
    kind = archive_kind(archive)
    try:
        if kind == "zip":
            _extract_zip(archive, target, max_bytes)
        else:
            _extract_tar(archive, target, max_bytes)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise DataError(f"{archive}: unsafe member ({exc}); repack it with plain relative files") from None
        raise DataError(f"{archive}: not a valid or complete archive ({exc}); download or repack it again") from None
