"""Name -> builder registries for the pluggable parts (colorizers, shot detectors)."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import ModelError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Refuses duplicate names; an unknown name is an error listing the valid ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str):
        def deco(builder):
            if name in self._builders:
                raise ValueError(f"a {self.kind} named '{name}' is already registered")
            self._builders[name] = builder
            builder.name = name
            return builder

        return deco

    def names(self) -> list[str]:
        return sorted(self._builders)

    def get(self, name: str, **kwargs) -> T:
        if name not in self._builders:
            raise ModelError(f"unknown {self.kind} '{name}' (valid: {', '.join(self.names())})")
        return self._builders[name](**kwargs)
