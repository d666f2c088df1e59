"""Colour reference stills and which one each shot gets.

A schedule answers "which still colours this frame": one still for the whole
film, a folder of stills, or a CSV map (``start,reference``) written by an
archivist. Rows of a map start at a frame index (``120``) or a timecode
(``00:01:05.500``, measured from the first frame); a frame takes the row with
the largest start not after it. An empty reference cell asks for automatic
colour. Each map row also starts a shot, whatever the shot detector says.
"""
from __future__ import annotations

import csv
import logging
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from ..color import mean_chroma
from ..errors import InputError
from ..io.image import IMAGE_EXTENSIONS, read_image
from ..temporal.defects import clean_still
from ..timecode import parse_start

__all__ = ["MapRow", "ReferenceSchedule", "ReferenceStore", "list_images", "sheet_rows", "timed_rows"]

log = logging.getLogger("vidcolor")

GRAYSCALE_CHROMA = 2.0  # mean Lab chroma under which a still counts as black and white


@dataclass(frozen=True)
class MapRow:
    """One row of a schedule; ``reference`` None means automatic colour."""

    key: int
    start_frame: int | None
    start_time: float | None
    reference: Path | None
    source: str = ""

    def seconds(self, rate: Fraction | None) -> float:
        if self.start_time is not None:
            return self.start_time
        return float(self.start_frame / rate) if rate else float(self.start_frame)


def sheet_rows(p: Path, header: list[str], what: str):
    """(line number, stripped cells) of each row of the CSV ``p`` under its ``header`` (checked), blank
    and ``#`` lines skipped; a missing, unreadable or malformed file, a wrong header, a row of another
    length or no header at all: InputError naming ``what`` (``reference map``) and the line."""
    if not p.is_file():
        raise InputError(f"{what} not found" if not p.exists() else f"{what} is not a file", p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text", p) from None
    except OSError as e:
        raise InputError(f"{what} cannot be read ({e.strerror})", p) from None
    names = ",".join(header)
    seen = False
    try:
        for line_no, cells in enumerate(csv.reader(text.splitlines()), start=1):
            if not cells or all(not c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in cells]
            if not seen:
                if [c.lower() for c in cells] != header:
                    raise InputError(f"line {line_no}: the header must be '{names}', got {','.join(cells)!r}", p)
                seen = True
                continue
            if len(cells) != len(header):
                raise InputError(f"line {line_no}: expected {len(header)} cells ({names}), got {len(cells)}", p)
            yield line_no, cells
    except csv.Error as e:
        raise InputError(f"{what} is not readable CSV ({e})", p) from None
    if not seen:
        raise InputError(f"{what} is empty (expected a '{names}' header and rows)", p)


def timed_rows(p: Path, lines, column: str, thing: str):
    """(line number, frame index or None, seconds or None, file or None, cells) of each row of
    :func:`sheet_rows` whose first cell is a frame index or a timecode (repeated: an error) and whose
    second names a ``thing`` (a still; relative to the sheet's folder; missing: an error; empty: None)."""
    seen: dict[tuple, int] = {}
    for line_no, cells in lines:
        try:
            frame, seconds = parse_start(cells[0])
        except ValueError as e:
            raise InputError(f"line {line_no}: {e}", p) from None
        key = ("f", frame) if frame is not None else ("t", seconds)
        if key in seen:
            raise InputError(f"line {line_no}: {column} {cells[0]} repeats line {seen[key]}", p)
        seen[key] = line_no
        path = None
        if cells[1]:
            path = Path(cells[1]).expanduser()
            if not path.is_absolute():
                path = p.parent / path
            if not path.is_file():
                raise InputError(f"line {line_no}: {thing} {cells[1]} not found", p)
        yield line_no, frame, seconds, path, cells


def list_images(folder: Path) -> list[Path]:
    def natural(p: Path):
        return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]

    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS), key=natural)


class ReferenceSchedule:
    """Maps frames (index, seconds from the first frame) to schedule rows."""

    def __init__(self, rows: list[MapRow], origin: str = ""):
        if not rows:
            raise InputError("no reference rows", origin or None)
        self.rows = rows
        self.origin = origin
        self.folder_images: list[Path] = []  # set for a folder: every shot picks its still among them
        self._rate: Fraction | None = None
        self._order = list(rows)

    # -- constructors ----------------------------------------------------------------
    @classmethod
    def automatic(cls) -> "ReferenceSchedule":
        return cls([MapRow(0, 0, None, None, "automatic")])

    @classmethod
    def single(cls, path: str | os.PathLike) -> "ReferenceSchedule":
        p = Path(path)
        if p.is_dir():
            return cls.folder(p)
        if not p.exists():
            raise InputError("reference not found", p)
        return cls([MapRow(0, 0, None, p, os.fspath(p))], os.fspath(p))

    @classmethod
    def folder(cls, path: str | os.PathLike) -> "ReferenceSchedule":
        p = Path(path)
        images = list_images(p)
        if not images:
            raise InputError(f"reference folder has no images ({', '.join(IMAGE_EXTENSIONS[:5])}, ...)", p)
        schedule = cls([MapRow(0, 0, None, images[0], os.fspath(images[0]))], os.fspath(p))
        schedule.folder_images = images
        return schedule

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "ReferenceSchedule":
        p = Path(path)
        return cls._parse_csv(p, sheet_rows(p, ["start", "reference"], "reference map"))

    @classmethod
    def _parse_csv(cls, p: Path, lines) -> "ReferenceSchedule":
        rows: list[MapRow] = []
        for line_no, frame, seconds, ref, _ in timed_rows(p, lines, "start", "reference"):
            rows.append(MapRow(len(rows), frame, seconds, ref, f"{p.name}:{line_no}"))
        if not rows:
            raise InputError("reference map has a header but no rows", p)
        return cls(rows, os.fspath(p))

    # -- use -------------------------------------------------------------------------
    def bind(self, rate: Fraction | None) -> None:
        """Order rows by their start in seconds, using the video's frame rate
        to place frame-index rows among timecode rows."""
        self._rate = rate
        self._order = sorted(self.rows, key=lambda r: (r.seconds(rate), r.key))

    def lookup(self, index: int, seconds: float) -> MapRow | None:
        """The row for a frame (None when no row starts at or before it)."""
        eps = 0.5 / float(self._rate) if self._rate else 1e-3
        best = None
        for row in self._order:
            if row.start_frame is not None:
                ok = index >= row.start_frame
            else:
                ok = seconds + eps >= row.start_time
            if ok:
                best = row
        return best

    @property
    def references(self) -> list[Path]:
        return self.folder_images or [r.reference for r in self.rows if r.reference is not None]

    @property
    def needs_automatic(self) -> bool:
        return any(r.reference is None for r in self.rows)


class ReferenceStore:
    """Reference stills as (1, 3, H, W) RGB in [0, 1] on ``device``, at most
    ``max_side`` pixels on their long side. The ``capacity`` stills used last
    stay loaded; older ones are read again when asked for, so a film of a
    thousand shots with a still each holds a few stills, not a thousand."""

    def __init__(self, device: torch.device, max_side: int = 1024, capacity: int = 8, scratches: bool = False):
        self.device = device
        self.scratches = scratches  # True: each still's scratches filled (an old print's keyframe; temporal.defects)
        self.max_side = max_side
        self.capacity = max(1, capacity)
        self._cache: OrderedDict[Path, torch.Tensor] = OrderedDict()
        self._warned: set[Path] = set()  # a still read again is not warned about again

    def get(self, path: Path) -> torch.Tensor:
        path = Path(path)
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        t = self._load(path)
        self._cache[path] = t
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return t

    def _load(self, path: Path) -> torch.Tensor:
        img = read_image(path)
        h, w = img.shape[:2]
        if min(h, w) < 8:
            raise InputError(f"reference is too small ({w}x{h})", path)
        scale = self.max_side / max(h, w)
        if scale < 1:
            img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if self.scratches:
            img = clean_still(img)
        peak = 65535.0 if img.dtype == np.uint16 else 255.0
        t = torch.from_numpy(np.ascontiguousarray(img)).to(self.device).permute(2, 0, 1)[None].float() / peak
        if mean_chroma(t) < GRAYSCALE_CHROMA and path not in self._warned:
            self._warned.add(path)
            log.warning("%s: the reference looks black and white itself; the result will have little colour", path)
        return t
