"""String-named registries (after timm's `register_model`): each named choice is written once, where it
is defined, and params.yaml is checked against the registry's keys."""

from __future__ import annotations

import importlib
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


class Registered:
    """A params field's marker (typing.Annotated[str, Registered("module:NAME")]): its value must be a key of
    that registry. The module is imported only when params are checked, so params.py stays light to import."""

    def __init__(self, where: str, also: tuple[str, ...] = ()):
        self.where, self.also = where, also  # also: names the field accepts beyond the registry's (e.g. auto)

    def registry(self) -> Registry:
        module, name = self.where.split(":")
        return getattr(importlib.import_module(module), name)

    def names(self) -> tuple[str, ...]:
        return (*self.also, *self.registry().names())
