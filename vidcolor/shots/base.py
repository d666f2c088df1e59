"""Shot detection: the interface every detector implements.

A detector sees the film's luminance as small thumbnails, one frame at a
time and in order, and reports transitions: hard cuts and gradual ones
(fades, dissolves). It may hold frames back, but no more than its declared
``lookahead``: after frame ``n`` has been pushed, every transition whose
``boundary`` is at most ``n - lookahead`` has been returned. The pipeline
relies on that to keep only ``lookahead`` frames buffered however long the
film is.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..registry import Registry

__all__ = ["Transition", "ShotDetector", "register_detector", "get_detector", "build_detector", "list_detectors"]


@dataclass(frozen=True)
class Transition:
    """A change of shot.

    ``start``..``end`` (inclusive) are the frames that belong to the
    transition itself: for a hard cut both are the first frame of the new
    shot; for a fade or dissolve they span the mixed frames. ``boundary`` is
    the first frame that belongs to the new shot (for a fade through black:
    the first frame after the darkest one; for a dissolve: the middle one),
    so a fade-out is coloured from the shot it ends and never from the next.
    """

    start: int
    end: int
    boundary: int
    kind: str  # "cut" | "fade" | "dissolve" | "gradual"
    score: float = 1.0

    def __post_init__(self):
        if not self.start <= self.boundary <= self.end + 1 or self.start > self.end:
            raise ValueError(f"inconsistent transition {self}")

    @property
    def gradual(self) -> bool:
        return self.kind != "cut"


class ShotDetector(ABC):
    """Frames in (``push``), transitions out, in order of ``boundary``.

    ``thumb_size`` is the (width, height) of the thumbnails it wants: 8-bit
    full-range gray (0 = black, 255 = white), one (H, W) uint8 array a frame.
    Builders take keyword arguments only, ``device`` among them (a detector
    that has no use for one ignores it); one registered with a config section
    (``register_detector(name, config=SomeConfig)``: ``shots.<name>`` in a
    config file) is built by :meth:`from_config`, given that section.
    """

    name: str = ""
    thumb_size: tuple[int, int] = (48, 27)
    lookahead: int = 0

    @abstractmethod
    def push(self, thumb: np.ndarray) -> list[Transition]:
        """Take the next frame; return the transitions now certain."""

    @abstractmethod
    def flush(self) -> list[Transition]:
        """End of film: return every transition not yet returned."""

    @classmethod
    def from_config(cls, config, *, device=None) -> "ShotDetector":
        """The detector with its section of the config's ``shots`` (the dataclass it was
        registered with: ``register_detector(name, config=...)``)."""
        return cls(config, device=device)

    def detect(self, thumbs) -> list[Transition]:
        """All transitions of a whole sequence of thumbnails (for tests and `vidcolor shots`)."""
        out: list[Transition] = []
        for t in thumbs:
            out += self.push(t)
        return out + self.flush()


_REGISTRY: Registry[ShotDetector] = Registry("shot detector")
register_detector = _REGISTRY.register
list_detectors = _REGISTRY.names


def get_detector(name: str, **kwargs) -> ShotDetector:
    return _REGISTRY.get(name, **kwargs)


def build_detector(name: str, shots, *, device) -> ShotDetector:
    """The detector ``name`` with its section of ``shots`` (a config's ``shots`` section)."""
    return _REGISTRY.build(name, shots, device=device)
