"""Reading weights files someone else made: safetensors or a torch state dict, checked before use.

A damaged, truncated, absurd or foreign file is one line naming it, never a traceback or a huge
allocation: the safetensors header is checked (size, offsets, shapes) before any tensor is read, and
a .pth file must hold a mapping of names to tensors (objects are never unpickled).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path

import torch

from styleid.errors import StyleidError

MAX_HEADER_BYTES = 100_000_000
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
               "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}
FIX = "save the weights again with safetensors or torch.save(model.state_dict())"


def _bad(path: Path | str, why: str) -> StyleidError:
    return StyleidError(f"{path}: {why}; {FIX}")


def check_safetensors_header(data: bytes | memoryview, size: int, path: Path | str) -> None:
    """Raise unless `data` starts with a sane safetensors header for a file of `size` bytes."""
    if size < 8:
        raise _bad(path, "too short to be a safetensors file")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > MAX_HEADER_BYTES or 8 + n > size:
        raise _bad(path, f"not a safetensors file (its header claims {n:,} bytes of {size:,})")
    try:
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(path, "not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise _bad(path, "not a safetensors file (the header is not a mapping)")
    body = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            ok = (dtype in DTYPE_BYTES and isinstance(shape, list) and all(isinstance(d, int) and 0 <= d < 2**40 for d in shape)
                  and isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= body
                  and math.prod(shape) * DTYPE_BYTES[dtype] == end - begin)
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise _bad(path, f"damaged safetensors file (tensor {str(name)[:60]!r} does not fit the file)")


def _from_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    with open(path, "rb") as fh:
        head = fh.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        check_safetensors_header(head + fh.read(min(n, MAX_HEADER_BYTES)), path.stat().st_size, path)
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types; all mean a damaged file
        raise _bad(path, f"damaged safetensors file ({exc.__class__.__name__})") from None


def tensors_from_bytes(data: bytes, what: str) -> dict[str, torch.Tensor]:
    """A safetensors file's contents (already in memory), checked first."""
    from safetensors.torch import load as load_bytes

    check_safetensors_header(memoryview(data), len(data), what)
    try:
        return load_bytes(data)
    except Exception as exc:
        raise _bad(what, f"damaged safetensors file ({exc.__class__.__name__})") from None


def _from_torch(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError...: all mean "not plain tensors"
        raise _bad(path, f"not a plain state dict of tensors ({exc.__class__.__name__}); objects are never unpickled") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise _bad(path, f"holds a {type(state).__name__}, not a mapping of names to tensors")
    if not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise _bad(path, "is not a mapping of names to tensors")
    return dict(state)


def read_state_dict(path: Path, max_bytes: int = 20_000_000_000) -> dict[str, torch.Tensor]:
    """Name -> tensor from a .safetensors or a torch file; one line naming the file when it is not that."""
    path = Path(path)
    if not path.is_file():
        raise StyleidError(f"{path}: no such weights file")
    if path.stat().st_size > max_bytes:
        raise _bad(path, f"larger than {max_bytes:,} bytes")
    with open(path, "rb") as fh:
        start = fh.read(8)
    is_zip_or_pickle = start[:2] == b"PK" or start[:1] == b"\x80"
    if path.suffix == ".safetensors" or (not is_zip_or_pickle and len(start) == 8 and struct.unpack("<Q", start)[0] < MAX_HEADER_BYTES):
        return _from_safetensors(path)
    return _from_torch(path)
