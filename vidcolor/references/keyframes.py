"""Keyframes: frames of the film a colourist has coloured (``--keyframes keys.csv``).

The sheet is a CSV with the header ``frame,reference``: ``frame`` is a frame
index of the film (``120``) or a timecode from its first frame
(``00:01:05.500``: the first frame shown at or after it), ``reference`` the
still that is the colouring of that frame (relative paths are against the
CSV's folder; a still of another size than the film is accepted: it is
brought to the frame's size). A shot takes every keyframe that falls inside
it (:meth:`KeyframeSheet.assign`, on the shots the planning pass finds);
a shot with none is coloured as it would be without the sheet.
"""
from __future__ import annotations

import bisect
import csv
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..timecode import format_timecode, parse_start

if TYPE_CHECKING:
    from .plan import PlannedShot
    from .stills import ReferenceStore

__all__ = ["Keyframe", "KeyframeSheet", "KeyLocator", "KEYS_HEADER"]

KEYS_HEADER = ["frame", "reference"]


@dataclass(frozen=True)
class Keyframe:
    """One row of a sheet: the frame (an index, or seconds from the first frame), its still, its line."""

    line: int
    frame: int | None
    seconds: float | None
    still: Path

    @property
    def where(self) -> str:
        return f"frame {self.frame}" if self.frame is not None else format_timecode(self.seconds)


class KeyframeSheet:
    """The keyframes of one film, as read from a ``frame,reference`` CSV."""

    def __init__(self, keys: list[Keyframe], origin: Path):
        self.keys, self.origin = keys, origin

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "KeyframeSheet":
        p = Path(path)
        if not p.is_file():
            raise InputError("keyframe sheet not found" if not p.exists() else "keyframe sheet is not a file", p)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("keyframe sheet is not UTF-8 text", p) from None
        except OSError as e:
            raise InputError(f"keyframe sheet cannot be read ({e.strerror})", p) from None
        try:
            return cls(cls._parse(p, text), p)
        except csv.Error as e:
            raise InputError(f"keyframe sheet is not readable CSV ({e})", p) from None

    @staticmethod
    def _parse(p: Path, text: str) -> list[Keyframe]:
        keys: list[Keyframe] = []
        seen: dict[tuple, int] = {}
        header = None
        for line_no, cells in enumerate(csv.reader(text.splitlines()), start=1):
            if not cells or all(not c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in cells]
            if header is None:
                header = [c.lower() for c in cells]
                if header != KEYS_HEADER:
                    raise InputError(f"line {line_no}: the header must be 'frame,reference', got {','.join(cells)!r}",
                                     p)
                continue
            if len(cells) != 2:
                raise InputError(f"line {line_no}: expected 2 cells (frame,reference), got {len(cells)}", p)
            try:
                frame, seconds = parse_start(cells[0])
            except ValueError as e:
                raise InputError(f"line {line_no}: {str(e).replace('start', 'frame', 1)}", p) from None
            key = ("f", frame) if frame is not None else ("t", seconds)
            if key in seen:
                raise InputError(f"line {line_no}: {cells[0]} is keyframed twice (line {seen[key]} too)", p)
            seen[key] = line_no
            if not cells[1]:
                raise InputError(f"line {line_no}: no still for {cells[0]} (a keyframe needs its colouring)", p)
            still = Path(cells[1]).expanduser()
            if not still.is_absolute():
                still = p.parent / still
            if not still.is_file():
                raise InputError(f"line {line_no}: still {cells[1]} not found", p)
            keys.append(Keyframe(line_no, frame, seconds, still.resolve()))
        if header is None:
            raise InputError("keyframe sheet is empty (expected a 'frame,reference' header and rows)", p)
        if not keys:
            raise InputError("keyframe sheet has a header but no rows", p)
        return keys

    def check_stills(self, store: "ReferenceStore") -> None:
        """Read every still once (a bad one fails now, naming its line, not hours into the run)."""
        for k in self.keys:
            try:
                store.get(k.still)
            except InputError as e:
                raise InputError(f"line {k.line}: still {k.still.name} {e.message}", self.origin) from None

    def locator(self, rate: Fraction | None) -> "KeyLocator":
        return KeyLocator(self, rate)

    def assign(self, plan: list["PlannedShot"], frames: dict[int, Keyframe]) -> list["PlannedShot"]:
        """The plan's shots with their keyframes (``entry["keys"]``: [frame, still] pairs, in order);
        ``frames``: each keyframe's frame (:meth:`KeyLocator.finish`)."""
        starts = [s.first_frame for s in plan]
        per: dict[int, list] = {}
        for f in sorted(frames):
            i = bisect.bisect_right(starts, f) - 1
            if i >= 0 and f < plan[i].first_frame + plan[i].frames:
                per.setdefault(i, []).append([f, os.fspath(frames[f].still)])
        return [replace(s, reference=per[i][0][1], entry={**s.entry, "keys": per[i], "choice": "keyframes",
                                                            "reference": per[i][0][1]})
                if i in per else s for i, s in enumerate(plan)]


class KeyLocator:
    """Finds each keyframe's frame while the film is decoded (a timecode: the first frame shown
    at or after it, half a frame's tolerance): :meth:`feed` every frame in order, then
    :meth:`finish`."""

    def __init__(self, sheet: KeyframeSheet, rate: Fraction | None):
        self.sheet = sheet
        self.eps = 0.5 / float(rate) if rate else 1e-3
        self.pending = sorted((k for k in sheet.keys if k.frame is None), key=lambda k: k.seconds)
        self.found: dict[int, Keyframe] = {}
        self.first: int | None = None
        self.last: tuple[int, float] | None = None

    def feed(self, index: int, seconds: float) -> None:
        if self.first is None:  # a part of the film: keyframes before it are not placed on its first frame
            self.first = index
            while self.pending and self.pending[0].seconds < seconds - self.eps:
                self.pending.pop(0)
        self.last = (index, seconds)
        while self.pending and seconds + self.eps >= self.pending[0].seconds:
            self._found(index, self.pending.pop(0))

    def _found(self, index: int, key: Keyframe) -> None:
        other = self.found.get(index)
        if other is not None:
            raise InputError(f"line {key.line}: {key.where} is frame {index}, keyframed twice (line {other.line} too)",
                             self.sheet.origin)
        self.found[index] = key

    def finish(self, *, partial: bool = False) -> dict[int, Keyframe]:
        """Each keyframe's frame. A keyframe past the last frame decoded is an error naming its line,
        unless ``partial`` (a part of the film was decoded: keyframes outside it are left out)."""
        if self.last is None:
            raise InputError("no frame was decoded to place the keyframes on", self.sheet.origin)
        last, seconds = self.last
        for k in self.sheet.keys:
            if k.frame is None:
                continue
            if self.first <= k.frame <= last:
                self._found(k.frame, k)
            elif not partial and k.frame > last:
                raise InputError(f"line {k.line}: frame {k.frame} is past the film's end (its last frame is {last})",
                                 self.sheet.origin)
        if self.pending and not partial:
            k = self.pending[0]
            raise InputError(f"line {k.line}: {k.where} is past the film's end (its last frame is at "
                             f"{format_timecode(seconds)})", self.sheet.origin)
        return dict(sorted(self.found.items()))
