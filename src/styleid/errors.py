"""User-facing errors: one line that names the file and the fix, never a traceback."""


class StyleidError(Exception):
    """An error the user can fix; printed as one line by the stage runner."""


class ParamsError(StyleidError):
    """A bad key or value in params.yaml."""


class DataError(StyleidError):
    """A bad source, layout or image set."""


_OS_FIXES = {  # errno name -> what to do, for the failures a person's own paths and disks cause
    "EACCES": "permission denied; choose a place you can write to, or change its permissions",
    "EPERM": "operation not permitted; choose a place you can write to, or change its permissions",
    "EROFS": "on a read-only file system; choose a writable place",
    "ENOSPC": "no space left on the device; free some space or choose another disk",
    "EDQUOT": "over the disk quota; free some space or choose another disk",
    "ENAMETOOLONG": "the name is too long for the file system; choose a shorter path",
    "ENOTDIR": "a part of the path is a file, not a folder; choose another path",
    "EISDIR": "is a folder where a file was expected; choose another path",
    "ELOOP": "too many levels of symbolic links; point at the real path",
    "EMFILE": "too many open files; raise the limit (ulimit -n) or use fewer workers",
}


def os_error_line(exc: OSError) -> str | None:
    """One line naming the file and the fix for an OSError a user's paths or disks cause; None for any other."""
    import errno

    fix = _OS_FIXES.get(errno.errorcode.get(exc.errno or 0, ""))
    if fix is None:
        return None
    where = exc.filename if exc.filename is not None else "a file"
    return f"{where}: {fix}"


def require(module: str, install: str):
    """Import an optional package, or stop with one line naming the command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise StyleidError(f"the package {module} is missing: {install} (or `make venv`, which installs requirements.lock)") from None


FACENET_INSTALL = "pip install 'facenet-pytorch==2.5.3'"  # the last release without torch<2.3 / numpy<2 pins
