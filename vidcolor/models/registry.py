"""Colorizers register by name; the pipeline builds them by name."""
from __future__ import annotations

from abc import ABC, abstractmethod
import torch

from ..registry import Registry

__all__ = ["Colorizer", "register_colorizer", "get_colorizer", "list_colorizers"]


class Colorizer(ABC):
    """Predicts chroma from luminance, one shot at a time.

    The pipeline calls ``begin_shot(reference)`` at every shot start (the
    reference is (1, 3, H, W) RGB in [0, 1], or None for automatic colour),
    then ``colorize(L)`` with batches of that shot's frames: L is
    (N, 1, H, W) in [0, 100] at the size the pipeline chose; the result is
    (N, 2, H, W) a/b in about [-128, 127] at the same size.
    """

    #: name in the registry
    name: str = ""
    #: True when the colorizer cannot work without a reference still
    needs_reference: bool = True

    def __init__(self, device: torch.device):
        self.device = device

    @abstractmethod
    def begin_shot(self, reference: torch.Tensor | None) -> None: ...

    @abstractmethod
    def colorize(self, L: torch.Tensor) -> torch.Tensor: ...


_REGISTRY: Registry[Colorizer] = Registry("colorizer")
register_colorizer = _REGISTRY.register
list_colorizers = _REGISTRY.names


def get_colorizer(name: str, *, device: torch.device, **kwargs) -> Colorizer:
    return _REGISTRY.get(name, device=device, **kwargs)
