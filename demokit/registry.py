"""A name -> class registry (the extension points: observation encoders, policy heads, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from demokit.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one kind of extension (``what``: e.g. "policy head") mapped to their classes.

    ``register(name, cls)`` once per name (a second, different class is refused);
    ``get(name)`` raises :class:`UserError` listing the registered names.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str, cls: type[T]) -> type[T]:
        if name in self._entries and self._entries[name] is not cls:
            raise ValueError(f"{self.what} {name!r} is already registered ({self._entries[name].__name__})")
        self._entries[name] = cls
        return cls

    def get(self, name: str) -> type[T]:
        if name not in self._entries:
            raise UserError(f"unknown {self.what} {name!r}; registered: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
