"""Splitting a stream of frames into shots.

Frames go in as they are decoded; they come out, in order, once the detector
has seen far enough past them to be sure where the cuts are (its declared
lookahead), each frame that opens a shot paired with a ``Shot``. At most
``lookahead`` frames are held, so memory does not grow with the film.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

import cv2
import numpy as np

from ..color import YCbCrSpec
from ..io.decode import LumaFrame
from .base import ShotDetector, Transition

__all__ = ["Shot", "ShotSplitter", "thumbnail", "gray8_lut"]


@dataclass
class Shot:
    """A shot as the pipeline meets it.

    ``ahead`` holds the frames of the shot already decoded when it starts
    (up to the detector's lookahead), for choosing its reference.
    """

    index: int
    first_frame: int
    start_time: float  # seconds from the film's first frame
    transition: Transition | None = None  # how the shot began (None: film start or a map row)
    ahead: list[LumaFrame] = field(default_factory=list, repr=False)
    frames: int = 0

    def to_dict(self) -> dict:
        t = self.transition
        return {"index": self.index, "first_frame": self.first_frame, "start_time": round(self.start_time, 6),
                "frames": self.frames,
                "transition": None if t is None else {"kind": t.kind, "start": t.start, "end": t.end,
                                                      "score": round(float(t.score), 4)}}


def gray8_lut(spec: YCbCrSpec) -> np.ndarray:
    """Luma code -> 8-bit full-range gray, for thumbnails."""
    codes = np.arange(spec.max_code + 1, dtype=np.float64)
    offset, span = spec.luma_scale()
    return np.clip((codes - offset) / span * 255 + 0.5, 0, 255).astype(np.uint8)


def thumbnail(luma: np.ndarray, size: tuple[int, int], lut: np.ndarray) -> np.ndarray:
    """(H, W) luma codes -> (h, w) uint8 full-range gray of ``size`` = (w, h)."""
    small = cv2.resize(luma, size, interpolation=cv2.INTER_AREA)
    return lut[small]


class ShotSplitter:
    """``feed(frame)`` / ``finish()`` yield ``(frame, shot_or_None)`` in order.

    ``forced(frame)`` may declare a frame the start of a new shot whatever
    the detector says (a reference-map row starting there); ``detector``
    None means only forced boundaries split the film. A shot's first frame
    is released only when its next ``context`` frames are certain to belong
    to it or to a later shot, so ``Shot.ahead`` (up to ``context`` + 1
    frames) never mixes two shots.
    """

    def __init__(self, detector: ShotDetector | None, spec: YCbCrSpec,
                 forced: Callable[[LumaFrame], bool] | None = None, context: int = 0, origin: float | None = None):
        self.detector = detector
        self.context = context
        self.lookahead = (detector.lookahead if detector is not None else 0) + context
        self.forced = forced
        self._lut = gray8_lut(spec)
        self._buffer: deque[LumaFrame] = deque()
        self._starts: dict[int, Transition | None] = {}
        self._origin = origin  # the film's first frame's time (None: the first frame fed)
        self._base: int | None = None  # the first frame fed
        self._pushed = 0
        self.shots: list[Shot] = []
        self.transitions: list[Transition] = []

    def _take(self, transitions: list[Transition]) -> None:
        for t in transitions:
            if self._base:  # the detector counts from the first frame fed; a part of a film starts later
                t = dataclasses.replace(t, start=t.start + self._base, end=t.end + self._base,
                                        boundary=t.boundary + self._base)
            self.transitions.append(t)
            if t.boundary > 0:
                self._starts.setdefault(t.boundary, t)

    def feed(self, frame: LumaFrame) -> Iterator[tuple[LumaFrame, Shot | None]]:
        """Take the next frame (the detector sees it now); return an iterator over
        the frames this releases. Consume it before feeding again: a shot's
        ``ahead`` frames are dropped when the next shot is released."""
        if self._origin is None:
            self._origin = frame.time
        if self._base is None:
            self._base = frame.index
        if self.forced is not None and self.forced(frame) and frame.index > 0:
            self._starts[frame.index] = None
        if self.detector is not None:
            self._take(self.detector.push(thumbnail(frame.luma, self.detector.thumb_size, self._lut)))
        self._pushed = frame.index + 1
        self._buffer.append(frame)
        return self._drain(self._pushed - 1 - self.lookahead)

    def finish(self) -> Iterator[tuple[LumaFrame, Shot | None]]:
        """End of film: the detector's last transitions, and an iterator over every frame still held."""
        if self.detector is not None:
            self._take(self.detector.flush())
        return self._drain(None)

    def _drain(self, upto: int | None) -> Iterator[tuple[LumaFrame, Shot | None]]:
        while self._buffer and (upto is None or self._buffer[0].index <= upto):
            yield self._release()

    def _release(self) -> tuple[LumaFrame, Shot | None]:
        frame = self._buffer.popleft()
        shot = None
        if frame.index == 0 or frame.index in self._starts or not self.shots:
            upto = min((s for s in self._starts if s > frame.index), default=frame.index + self.context + 1)
            upto = min(upto, frame.index + self.context + 1)
            ahead = [frame] + [f for f in self._buffer if f.index < upto]
            if self.shots:
                self.shots[-1].ahead = []  # never keep frames of a finished shot alive
            shot = Shot(len(self.shots), frame.index, frame.time - self._origin, self._starts.pop(frame.index, None),
                        ahead)
            self.shots.append(shot)
        self.shots[-1].frames += 1
        return frame, shot
