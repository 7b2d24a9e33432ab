"""Content hashes of files, read in blocks: what checksums, caches and manifests compare."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """The file's hex digest under `algorithm` (sha256, sha1, ...)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()
