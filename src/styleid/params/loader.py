"""Reading params.yaml: a strict YAML loader, then the typed sections (see sections.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from styleid.errors import ParamsError
from styleid.params.schema import _build, _label, _short
from styleid.params.sections import Params


def params_from_dict(raw: dict | None) -> Params:
    """Build validated Params from a plain dict (the parsed params.yaml)."""
    return _label(_build(Params, raw or {}))


MAX_PARAMS_BYTES = 1_000_000
MAX_DEPTH = 16  # params.yaml nests three levels; deeper is a mistake (or an attack on the parser)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases (a "billion laughs" expands a few KB into gigabytes), duplicate keys or deep nesting."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(problem="YAML aliases (*name) are not allowed; write the value out", problem_mark=event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {_short(key, 40)} (the last would silently win); keep one",
                                           problem_mark=key_node.start_mark)
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every problem is a one-line ParamsError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: not found; run from the repository root or pass --params")
    if path.stat().st_size > MAX_PARAMS_BYTES:
        raise ParamsError(f"{path}: larger than {MAX_PARAMS_BYTES:,} bytes; params.yaml is a few KB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = str(getattr(exc, "problem", None) or exc)
        raise ParamsError(f"{path}:{where}: not valid YAML ({problem if len(problem) <= 160 else problem[:157] + '...'})") from None
    except RecursionError:
        raise ParamsError(f"{path}: nested too deeply to read; params.yaml nests three levels") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path}: must be a mapping of keys to values")
    try:
        return params_from_dict(raw)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None
