"""What every ``vidcolor train`` loop shares: reading its YAML config."""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from ..errors import ConfigError

__all__ = ["read_train_config", "repo_paths"]

T = TypeVar("T")


def read_train_config(path: str | os.PathLike, cls: type[T]) -> tuple[T, Path]:
    """The YAML file at ``path`` as a ``cls`` dataclass (unknown keys are errors naming the file); and its path."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError("training config not found", p)
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError("a training config must be a mapping", p)
    names = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}' (valid: {', '.join(sorted(names))})", p)
    return cls(**data), p


def repo_paths(cfg: T, p: Path) -> T:
    """``cfg`` with its relative ``data`` folders and ``out`` resolved against the repository (configs/..)."""
    base = p.resolve().parent.parent
    return type(cfg)(**{**asdict(cfg), "data": [os.fspath((base / d).resolve()) if not os.path.isabs(d) else d
                                                 for d in cfg.data],
                        "out": os.fspath(base / cfg.out) if not os.path.isabs(cfg.out) else cfg.out})
