"""Name -> builder registries for the pluggable parts (colorizers, shot detectors)."""
from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from .errors import ModelError
from .settings import find_section, register_section

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Refuses duplicate names; an unknown name is an error listing the valid ones.

    A part registered with ``config=SomeConfig`` (a dataclass) owns the config section of
    its name (read from a config file even for a part registered from outside the
    package: :mod:`vidcolor.settings`); :meth:`build` gives it that section, through its
    ``from_config`` classmethod when it has one, else as ``config=``.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}
        self._configs: dict[str, type] = {}

    def register(self, name: str, *, config: type | None = None):
        def deco(builder):
            if name in self._builders:
                raise ValueError(f"a {self.kind} named '{name}' is already registered")
            if config is not None:
                register_section(self.kind, name, config)
                self._configs[name] = config
            self._builders[name] = builder
            builder.name = name
            return builder

        return deco

    def names(self) -> list[str]:
        return sorted(self._builders)

    def builder(self, name: str) -> Callable[..., T]:
        if name not in self._builders:
            raise ModelError(f"unknown {self.kind} '{name}' (valid: {', '.join(self.names())})")
        return self._builders[name]

    def config_class(self, name: str) -> type | None:
        """The dataclass of the config section of the part ``name`` (None: it has none)."""
        return self._configs.get(name)

    def get(self, name: str, **kwargs) -> T:
        return self.builder(name)(**kwargs)

    def build(self, name: str, settings: Any, **kwargs) -> T:
        """The part ``name`` with its section of ``settings`` (the config, or a section that
        holds the parts' sections, as ``shots`` the detectors'); ``kwargs`` besides (device)."""
        builder = self.builder(name)
        cls = self._configs.get(name)
        if cls is None:
            return builder(**kwargs)
        section = find_section(settings, name, cls)
        make = getattr(builder, "from_config", None)
        return make(section, **kwargs) if make is not None else builder(config=section, **kwargs)
