"""Atomic writes (a killed stage never leaves a half-written output behind), and the user's cache folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from styleid import ownership


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def sweep_stale(path: str | Path) -> list[Path]:
    """Remove the temporary siblings of `path` (.<name>.<pid>-*.tmp) whose process is gone: what a killed
    stage left behind. A live process's siblings (another worker's) are left alone. A folder that atomic_dir was
    replacing when its process died, with `path` missing, is put back instead. Returns what was removed."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for sibling in sorted(path.parent.glob(f".{glob_escape(path.name)}.*.tmp")):
        pid = sibling.name[len(path.name) + 2 :].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            if sibling.name.endswith(OLD_SUFFIX) and sibling.is_dir() and not os.path.lexists(path):
                sibling.rename(path)  # killed between atomic_dir's two renames: the last complete version goes back
                continue
            shutil.rmtree(sibling, ignore_errors=True) if sibling.is_dir() and not sibling.is_symlink() else sibling.unlink(missing_ok=True)
            removed.append(sibling)
    return removed


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


OLD_SUFFIX = "-old.tmp"  # atomic_dir's name for the version it is replacing, for the moment between its two renames


def _prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}-"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path, kind: str, *, force: bool = False, flag: str = "--out") -> Iterator[Path]:
    """Yield a temporary sibling folder; it replaces `path` only if the block succeeds, marked as styleid's `kind`.
    An existing `path` must be styleid's own (ownership.claim): checked before and after.

    Siblings are named .<name>.<pid>-*.tmp: the next run removes those of a killed process
    (sweep_stale), and .dvcignore keeps them out of DVC's outputs meanwhile."""
    path = Path(path)
    ownership.claim(path, kind, force, flag)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        ownership.write_marker(tmp, kind)
        if os.path.lexists(path):
            ownership.claim(path, kind, force, flag)  # still ours after the work: nobody put their files there meanwhile
            old = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=OLD_SUFFIX, dir=path.parent))
            old.rmdir()
            path.rename(old)
            if os.environ.get("STYLEID_KILL_BETWEEN_RENAMES"):  # a test hook: die where `path` is briefly missing
                os.kill(os.getpid(), 9)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def empty_resume_folder(folder: str | Path) -> None:
    """After a stage's outputs are written, its checkpoints (*.pt) are dropped: nothing is left to resume, and a forced
    rerun starts afresh. A marker stays, so the folder (a DVC output) is never empty."""
    for path in Path(folder).glob("*.pt"):
        path.unlink()
    write_json(Path(folder) / "finished.json", {"resume": "nothing: the stage's outputs were written"})


def user_cache_dir() -> Path:
    """What styleid keeps between runs outside any repository (converted weights, runtime choices): $STYLEID_CACHE,
    else the user's cache folder."""
    root = os.environ.get("STYLEID_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "styleid"  # empty = unset
    return Path(root)
