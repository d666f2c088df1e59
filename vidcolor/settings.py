"""The machinery under :mod:`vidcolor.config`: typed sections read from YAML, each value's
range declared beside its field and checked in one place, renamed keys, and the sections
of components registered from outside the package.

A field's range (PySceneDetect's ``RangeValue`` idea) is declared with :func:`setting`::

    strength: float = setting(0.85, ge=0, lt=1)

and :func:`check_section` checks every such field of a section (and of the sections in it),
raising one :class:`~vidcolor.errors.ConfigError` line that names the file and the key; a
rule across a section's fields is its ``check(prefix)`` method (the message, or None).
Components check the settings they are built with the same way (:func:`configure`), so a
value is judged by one rule whether it comes from a config file or from Python.

A key that was renamed stays accepted: a section lists ``RENAMED = {"old": "new"}`` (a
``ClassVar``), and reading the old key logs a deprecation warning naming the new one.

A registry whose components each have a config section (colorizers, shot detectors) calls
:func:`register_section`; a section dataclass that lists ``OPEN_TO = "<kind>"`` (a
``ClassVar``) then reads a key of a component of that kind registered from outside the
package into its ``extra`` dict, and :func:`find_section` gives a component its section.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ConfigError

__all__ = ["Range", "setting", "check_section", "configure", "parse_section", "register_section",
           "find_section", "section_dict"]

log = logging.getLogger("vidcolor")


@dataclass(frozen=True)
class Range:
    """The values a field takes: bounds (``ge``/``gt`` below, ``le``/``lt`` above), or a
    tuple of ``choices``. None (for a field that may be null) is always allowed."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None

    def allows(self, v: Any) -> bool:
        if v is None:
            return True
        if self.choices is not None:
            return v in self.choices
        return ((self.ge is None or v >= self.ge) and (self.gt is None or v > self.gt)
                and (self.le is None or v <= self.le) and (self.lt is None or v < self.lt))

    def describe(self) -> str:
        """``in [0, 1)``, ``>= 32``, ``one of off, forward, bidirectional``."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        lo = self.ge if self.ge is not None else self.gt
        hi = self.le if self.le is not None else self.lt
        if lo is not None and hi is not None:
            return f"in {'[' if self.ge is not None else '('}{_num(lo)}, {_num(hi)}{']' if self.le is not None else ')'}"
        if lo is not None:
            return f"{'>=' if self.ge is not None else '>'} {_num(lo)}"
        if hi is not None:
            return f"{'<=' if self.le is not None else '<'} {_num(hi)}"
        return "anything"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def setting(default: Any = dataclasses.MISSING, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, choices: typing.Iterable | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its range beside it (see the module docstring)."""
    rng = Range(ge, gt, le, lt, None if choices is None else tuple(choices))
    return field(default=default, default_factory=default_factory, metadata={"range": rng})


def check_section(obj: Any, prefix: str = "", source: str | None = None) -> Any:
    """``obj`` (a section dataclass) if every field is in its declared range, its sections too;
    else a :class:`ConfigError` naming ``prefix + key``, the range and the value (and ``source``)."""
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        rng = f.metadata.get("range")
        if rng is not None and not rng.allows(v):
            raise ConfigError(f"{prefix}{f.name} must be {rng.describe()}, got {v!r}", source)
        if dataclasses.is_dataclass(v):
            check_section(v, f"{prefix}{f.name}.", source)
    for name, sub in _extra(obj).items():
        check_section(sub, f"{prefix}{name}.", source)
    problem = obj.check(prefix) if hasattr(obj, "check") else None  # a rule across fields (gate_low <= gate_high)
    if problem:
        raise ConfigError(problem, source)
    return obj


def configure(config: Any, settings: Mapping[str, Any], prefix: str) -> Any:
    """A component's settings: its section ``config`` with the keyword ``settings`` it was built
    with over it (an unknown name: TypeError, as for any keyword argument; an old name of a
    renamed key: taken, with a warning), checked by :func:`check_section` (``prefix``: the
    section's place in a config file, e.g. ``"temporal."``)."""
    settings = dict(settings)
    for old, new in getattr(type(config), "RENAMED", {}).items():
        if old in settings:
            _warn_renamed(prefix, old, new, None)
            settings[new] = settings.pop(old)
    return check_section(dataclasses.replace(config, **settings), prefix)


# -- reading sections from YAML --------------------------------------------------------------

def _check_type(value: Any, tp: Any, where: str, source: str | None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        last: ConfigError | None = None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, where, source)
            except ConfigError as e:
                last = e
        assert last is not None
        raise last
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}", source)
        return {str(k): str(v) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}", source)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}", source)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}", source)
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}", source)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}", source)
        return value
    raise TypeError(f"unsupported config type {tp!r} at {where}")


def _warn_renamed(prefix: str, old: str, new: str, source: str | None) -> None:
    log.warning("%s%s%s is deprecated: it is now %s%s (same meaning and units); the old key will go",
                f"{source}: " if source else "", prefix, old, prefix, new)


def parse_section(cls: type, data: Mapping[str, Any], prefix: str, source: str | None, base: Any = None) -> Any:
    """A section dataclass ``cls`` from ``data``, keys and types checked as in a config file
    (``prefix``, e.g. ``"exemplar."``, names the keys in errors; ``source`` the file); unset
    fields from ``base`` (default: ``cls()``). Ranges are :func:`check_section`'s business."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {data!r}", source)
    base = base if base is not None else cls()
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if not _is_extra(cls, f.name)]
    renamed = getattr(cls, "RENAMED", {})
    plugins = _SECTIONS.get(getattr(cls, "OPEN_TO", ""), {})
    changes: dict[str, Any] = {}
    extra = dict(_extra(base))
    for key, value in data.items():
        key = str(key)
        if key in renamed:
            if renamed[key] in data:
                raise ConfigError(f"{prefix}{key} and {prefix}{renamed[key]} are the same setting: give only "
                                  f"{prefix}{renamed[key]}", source)
            _warn_renamed(prefix, key, renamed[key], source)
            key = renamed[key]
        where = f"{prefix}{key}"
        if key in names:
            tp = hints[key]
            if dataclasses.is_dataclass(tp):
                changes[key] = parse_section(tp, value, f"{where}.", source, getattr(base, key))
            else:
                changes[key] = _check_type(value, tp, where, source)
        elif key in plugins:
            extra[key] = parse_section(plugins[key], value, f"{where}.", source, extra.get(key))
        else:
            valid = names + sorted(k for k in plugins if k not in names)
            raise ConfigError(f"unknown key '{where}' (valid: {', '.join(prefix + n for n in valid)})", source)
    if extra:
        changes["extra"] = extra
    return dataclasses.replace(base, **changes)


# -- sections of registered components -------------------------------------------------------

_SECTIONS: dict[str, dict[str, type]] = {}  # kind -> component name -> its section's dataclass


def register_section(kind: str, name: str, cls: type) -> None:
    """The component ``name`` of ``kind`` (a registry's) has settings of dataclass ``cls``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"the config of {kind} '{name}' must be a dataclass, got {cls!r}")
    _SECTIONS.setdefault(kind, {})[name] = cls


def _is_extra(cls: type, name: str) -> bool:
    return name == "extra" and bool(getattr(cls, "OPEN_TO", ""))


def _extra(obj: Any) -> Mapping[str, Any]:
    return getattr(obj, "extra", {}) if getattr(type(obj), "OPEN_TO", "") else {}


def find_section(owner: Any, name: str, cls: type) -> Any:
    """The settings of the component ``name`` whose section is of dataclass ``cls``, in
    ``owner`` (the config, or its ``shots`` section): the built-in section of that name, the
    one read for a component registered from outside, or ``cls()`` when the file has none."""
    if name in {f.name for f in dataclasses.fields(owner)} and not _is_extra(type(owner), name):
        section = getattr(owner, name)
        if not isinstance(section, cls):
            raise ConfigError(f"'{name}' is a config section of another kind ({type(section).__name__}, "
                              f"not {cls.__name__}): register the component under another name")
        return section
    section = _extra(owner).get(name)
    return section if isinstance(section, cls) else cls()


def section_dict(obj: Any) -> Any:
    """A section as plain data (the inverse of :func:`parse_section`): the sections of
    components registered from outside under their own keys."""
    if dataclasses.is_dataclass(obj):
        out = {f.name: section_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
               if not _is_extra(type(obj), f.name)}
        out.update((k, section_dict(v)) for k, v in _extra(obj).items())
        return out
    if isinstance(obj, dict):
        return {k: section_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [section_dict(v) for v in obj]
    return obj
