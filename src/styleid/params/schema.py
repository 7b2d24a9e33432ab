"""The machinery of params: sections that record which keys a stage reads, and type checking against hints.

A misspelt key, a wrong type or an out-of-range value is a one-line ParamsError naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from styleid.errors import ParamsError
from styleid.registry import Registered

READS_ENV = "STYLEID_PARAMS_READ"  # a folder: each stage writes <stage>.json, the params keys it read (tests compare with dvc.yaml)
_reads: set[str] | None = None  # dotted keys read since record_reads() started


class _Section:
    """Base of every params dataclass: when recording, a read of a leaf value records its dotted key.

    Recording starts only after a Params object is built (validation reads every field), through
    `record_reads`; `dvc.yaml` must list every key a stage reads, and a test holds it to that.
    """

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if _reads is not None and not name.startswith("_") and not isinstance(value, _Section):
            prefix = object.__getattribute__(self, "__dict__").get("_key")
            if prefix is not None and name in type(self).__dataclass_fields__:
                _reads.add(prefix + name)
        return value


def record_reads() -> None:
    """Start recording which params keys are read (see READS_ENV)."""
    global _reads
    _reads = set()


def save_reads(stage: str) -> None:
    """Write the keys read so far to $STYLEID_PARAMS_READ/<stage>.json when that is set."""
    folder = os.environ.get(READS_ENV)
    if folder and _reads is not None:
        path = Path(folder) / f"{stage}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        earlier = set(json.loads(path.read_text())) if path.is_file() else set()
        path.write_text(json.dumps(sorted(earlier | _reads)))


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ParamsError(f"{key}: {message}")


def _short(value: Any, limit: int = 60) -> str:
    """repr of a value, cut to `limit` characters: a message never grows with the input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


MAX_INT = 10**12  # no count, size or seed in styleid is anywhere near this; bigger is a typo or an attack


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against a type hint, converting only where it is lossless (int -> float)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if value is None:
            value = {}
        _check(isinstance(value, dict), key, f"must be a mapping, got {type(value).__name__}")
        return _build(hint, value, key + ".")
    if origin is Annotated:
        base, *marks = typing.get_args(hint)
        value = _coerce(value, base, key)
        for mark in marks:
            if isinstance(mark, Registered):
                names = mark.names()
                _check(value in names, key, f"unknown {mark.kind()} {_short(value)}; choose from {', '.join(names)}")
        return value
    if origin is Literal:
        choices = typing.get_args(hint)
        _check(isinstance(value, (str, int, float, bool)) and value in choices, key, f"must be one of {', '.join(map(str, choices))} (got {_short(value)})")
        return value
    if origin in (list, tuple):
        _check(isinstance(value, list), key, f"must be a list, got {type(value).__name__}")
        (item,) = typing.get_args(hint)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        listy = [a for a in options if typing.get_origin(a) in (list, tuple)]
        plain = [a for a in options if a not in listy]
        return _coerce(value, (listy or plain)[0] if isinstance(value, list) else (plain or listy)[0], key)
    if hint is bool:
        _check(isinstance(value, bool), key, f"must be true or false, got {_short(value)}")
        return value
    if hint is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key, f"must be an integer, got {_short(value)}")
        _check(abs(value) <= MAX_INT, key, f"is absurdly large ({_short(value)}); use a value below {MAX_INT:.0e}")
        return value
    if hint is float:
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), key, f"must be a number, got {_short(value)}")
        _check(abs(value) <= MAX_INT and math.isfinite(float(value)), key, f"must be a finite number of sensible size, got {_short(value)}")
        return float(value)
    if hint is str:
        _check(isinstance(value, (str, int, float)) and not isinstance(value, bool), key, f"must be a string, got {_short(value)}")
        _check(len(str(value)) <= 4096, key, "is longer than 4096 characters")
        return str(value)
    raise TypeError(f"unsupported type hint {hint!r} for {key}")


def _build(cls: type, raw: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key)[:100], names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f"; known keys: {', '.join(names)}"
            raise ParamsError(f"{prefix}{_short(key, 40) if not isinstance(key, str) or len(key) > 40 else key}: unknown key{hint}")
    kwargs = {name: _coerce(raw[name], hints[name], prefix + name) for name in names if name in raw}
    return cls(**kwargs)


def _label(section: _Section, prefix: str = "") -> _Section:
    """Give every section its dotted key prefix, so recorded reads name the whole key."""
    object.__setattr__(section, "_key", prefix)
    for f in dataclasses.fields(section):
        value = object.__getattribute__(section, f.name)
        if isinstance(value, _Section):
            _label(value, f"{prefix}{f.name}.")
    return section

