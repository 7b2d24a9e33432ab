"""String-named registries (after timm's `register_model`): each named choice is written once, where it
is defined, and params.yaml is checked against the registry's keys."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from functools import lru_cache
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """name -> object; `@registry.register("name")` adds one, `registry.get(name)` looks it up."""

    def __init__(self, kind: str):
        self.kind = kind  # what the names choose, for messages ("loss", "re-ranker", ...)
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {', '.join(self._items)}")
        return self._items[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)


@lru_cache(maxsize=None)
def declared(where: str) -> tuple[str, tuple[str, ...]]:
    """(kind, names) of the registry at "module:NAME", read from the module's source without running it: its
    `NAME = Registry("kind")` and every `NAME.register("name")`. Checking params then imports no torch, which
    costs seconds in every stage (fetch runs on every `dvc repro`); tests/test_registry.py holds these to the
    imported registries."""
    module, name = where.split(":")
    tree = ast.parse(open(importlib.util.find_spec(module).origin, encoding="utf-8").read())
    kind, names = "", []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and isinstance(node.args[0], ast.Constant):
            owner = node.func.value
            if node.func.attr == "register" and isinstance(owner, ast.Name) and owner.id == name:
                names.append((node.lineno, node.args[0].value))
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "Registry":
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(getattr(t, "id", "") == name for t in targets):
                kind = node.value.args[0].value
    return kind, tuple(n for _, n in sorted(names))


class Registered:
    """A params field's marker (typing.Annotated[str, Registered("module:NAME")]): its value must be a key of
    that registry, read from the module's source (`declared`), so checking params imports nothing heavy."""

    def __init__(self, where: str, also: tuple[str, ...] = ()):
        self.where, self.also = where, also  # also: names the field accepts beyond the registry's (e.g. auto)

    def registry(self) -> Registry:
        module, name = self.where.split(":")
        return getattr(importlib.import_module(module), name)

    def kind(self) -> str:
        return declared(self.where)[0]

    def names(self) -> tuple[str, ...]:
        return (*self.also, *declared(self.where)[1])
