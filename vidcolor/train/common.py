"""What every ``vidcolor train`` loop shares: its YAML config, run folder, pool, checkpoints and loss log."""
from __future__ import annotations

import csv
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import ConfigError

__all__ = ["read_train_config", "repo_paths", "provenance", "start_run", "adam_cosine", "save_atomic", "pool_cache",
           "resume_from", "loss_log"]

log = logging.getLogger("vidcolor")

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


def provenance(cfg) -> dict:
    """``cfg`` as the weights' metadata records it: its ``data`` folders and ``out`` relative to the
    repository (as configs/ names them), not this machine's absolute paths."""
    root = Path(__file__).resolve().parents[2]
    rel = lambda d: os.path.relpath(d, root) if os.path.isabs(d) else d  # noqa: E731
    return {**asdict(cfg), "data": [rel(d) for d in cfg.data], "out": rel(cfg.out)}


def start_run(cfg) -> Path:
    """A training run's threads (``cfg.threads``, 0: PyTorch's), seed and run folder (made); returns the folder."""
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    return out


def adam_cosine(net, cfg):
    """Adam at ``cfg.lr`` on ``net``'s parameters, and its learning rate annealed along a cosine over
    ``cfg.steps`` down to 5% of it: the optimiser and schedule of the exemplar's training loops."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps, eta_min=cfg.lr * 0.05)


def save_atomic(path: Path, payload) -> None:
    """``torch.save`` under a temporary name, then renamed: a crash never leaves half a file at ``path``."""
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def pool_cache(path: Path, resume: bool, build: Callable[[], T]) -> T:
    """The example pool saved at ``path`` when resuming and it is there; else ``build()``, saved there."""
    import torch

    if resume and path.is_file():
        log.info("pool: from %s", path)
        return torch.load(path, weights_only=True)
    pool = build()
    save_atomic(path, pool)
    return pool


def resume_from(ckpt: Path, device, **parts) -> dict | None:
    """Load checkpoint ``ckpt`` (when it is there) into ``parts`` (name -> object with
    ``load_state_dict``: net, opt, sched); returns the checkpoint (its ``step`` and the rest) or None."""
    import torch

    if not ckpt.is_file():
        return None
    state = torch.load(ckpt, map_location=device, weights_only=True)
    for name, part in parts.items():
        part.load_state_dict(state[name])
    log.info("resumed from %s at step %d", ckpt, int(state["step"]))
    return state


def loss_log(out: Path, header: list[str], step: int):
    """``out/loss.csv`` opened to append, the header written when the run starts at step 0:
    (file, csv writer)."""
    fh = open(out / "loss.csv", "a", newline="")
    writer = csv.writer(fh)
    if step == 0:
        writer.writerow(header)
    return fh, writer
