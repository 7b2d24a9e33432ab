"""How every stage and command runs: logging set up, and any failure as one line on stderr with an exit code."""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Callable

from styleid.errors import StyleidError, os_error_line
from styleid.params import READS_ENV, record_reads, save_reads


def setup_logging() -> None:
    level = logging.DEBUG if os.environ.get("STYLEID_DEBUG") else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    for noisy in ("PIL", "urllib3", "filelock", "timm", "faiss", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def stage(fn: Callable) -> Callable:
    """Run a stage; a StyleidError (or a missing input) is one line on stderr and exit code 1.

    STYLEID_DEBUG=1 shows the full traceback instead.
    """

    name = fn.__name__.removesuffix("_stage")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        setup_logging()
        if os.environ.get(READS_ENV):
            record_reads()
        try:
            result = fn(*args, **kwargs)
            save_reads(name)
            return result
        except (StyleidError, FileNotFoundError) as exc:
            _fail(name, exc, str(exc) if isinstance(exc, StyleidError) else f"{exc.filename}: missing; run `dvc repro {name}` to build what it needs")
        except OSError as exc:
            if (line := os_error_line(exc)) is None:
                _unexpected(name, exc)
            _fail(name, exc, line)
        except KeyboardInterrupt:
            print(f"styleid {name}: interrupted; outputs were left as they were", file=sys.stderr)
            raise SystemExit(130) from None
        except Exception as exc:  # the last resort: a bug or an input nobody foresaw is still one line
            _unexpected(name, exc)

    return wrapper


def _fail(name: str, exc: BaseException, message: str) -> None:
    if os.environ.get("STYLEID_DEBUG"):
        raise exc
    print(f"styleid {name}: error: {message}", file=sys.stderr)
    raise SystemExit(1) from None


def _unexpected(name: str, exc: BaseException) -> None:
    if os.environ.get("STYLEID_DEBUG"):
        raise exc
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    print(f"styleid {name}: unexpected error: {type(exc).__name__}: {text} (rerun with STYLEID_DEBUG=1 for the traceback, "
          "and please report it)", file=sys.stderr)
    raise SystemExit(1) from None
