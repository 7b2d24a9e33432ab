"""Rows a frozen model computed for image files, kept by the file's content and the model's identity.

An experiment that changes neither the images nor the frozen model (the domains stage's style statistics, run again
for every experiment) reads its rows back instead of running the model: CACHE/features/<model key>/<ab>/<sha1>.npy,
each written atomically, so concurrent runs and a killed one leave only whole rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from styleid.fileio import atomic_path
from styleid.hashing import file_digest


def model_key(model: torch.nn.Module, *settings: object) -> str:
    """The model's identity: every tensor of its state (names, shapes, values) and the settings that shape its input."""
    digest = hashlib.sha256(repr(settings).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


class FeatureCache:
    def __init__(self, folder: Path, key: str):
        self.folder = Path(folder) / key
        self.hits = self.misses = 0

    def _path(self, digest: str) -> Path:
        return self.folder / digest[:2] / f"{digest}.npy"

    def rows(self, paths: Sequence[Path], compute: Callable[[list[Path]], np.ndarray]) -> np.ndarray:
        """Each path's row: from the cache where its content was seen with this model, else from `compute` (then kept)."""
        digests = [file_digest(p, "sha1") for p in paths]
        found: dict[str, np.ndarray] = {}
        for digest in set(digests):
            try:
                found[digest] = np.load(self._path(digest))
            except (OSError, ValueError):  # absent, or damaged: computed again
                pass
        missing = list(dict.fromkeys(d for d in digests if d not in found))
        if missing:
            first = {d: p for p, d in reversed(list(zip(paths, digests)))}  # one file per content
            computed = compute([Path(first[d]) for d in missing])
            for digest, row in zip(missing, computed):
                with atomic_path(self._path(digest)) as tmp:
                    np.save(open(tmp, "wb"), np.asarray(row, np.float32))
                found[digest] = np.asarray(row, np.float32)
        self.hits, self.misses = self.hits + len(paths) - len(missing), self.misses + len(missing)
        return np.stack([found[d] for d in digests]) if digests else np.zeros((0, 0), np.float32)
