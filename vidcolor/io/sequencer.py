"""Decoded frames back in time order, every frame the file promises accounted for.

A decoder's output is not the film: a damaged file gives frames out of pts
order, twice, not at all (a packet that fails to decode, or decodes to
nothing), or too early (the file ends before its header says). The
``FrameSequencer`` takes what the demux loop sees, in file order (each video
packet's pts: a frame is due; each packet that failed; each decoded frame),
and gives back ``LumaFrame`` objects in pts order, numbered from 0, with a
lost frame replaced by the previous good one at its own pts (``damaged``).
It knows nothing of media: the payload of a frame is whatever the caller
hands in (the reader: a luma plane), so the state machine is tested with
made-up timestamps.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from ..config import RuntimeConfig
from ..errors import InputError
from ..timecode import format_timecode

__all__ = ["LumaFrame", "Truncation", "FrameSequencer", "damage_note", "REORDER"]

REORDER = 16  # frames held to put a damaged decoder's output back in pts order


@dataclass
class LumaFrame:
    """One decoded frame's luma plane, (H, W) uint8 or uint16 codes."""

    luma: np.ndarray
    pts: int
    time_base: Fraction
    index: int
    damaged: bool = False  # True: undecodable, this is a copy of the previous good frame

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


@dataclass(frozen=True)
class Truncation:
    """Where a file that ends early ends: ``frames`` decoded, the last one
    ending at ``time`` seconds; ``expected`` frames (0: unknown) as its
    header promised; ``reason`` what gave it away."""

    frames: int
    time: float
    expected: int
    reason: str

    def describe(self) -> str:
        of = f" of {self.expected}" if self.expected else ""
        return (f"is truncated: the file ends at {format_timecode(self.time)} (after frame {self.frames - 1}; "
                f"{self.frames}{of} frames decoded; {self.reason})")


def damage_note(count: int, indices: list[int]) -> str:
    """'3 damaged frames (5, 6, 13) could not be decoded: each repeats the good frame before it'."""
    shown = ", ".join(map(str, indices[:10])) + (", ..." if count > 10 else "")
    return (f"{count} damaged frame{'s' if count != 1 else ''} ({shown}) could not be decoded: "
            f"{'each repeats' if count != 1 else 'it repeats'} the good frame before it")


class FrameSequencer:
    """Frames in file order in, frames in pts order out, the lost ones repaired.

    Feed it, in the order the demux loop meets them: :meth:`due` for each
    video packet's pts (a frame is due there), :meth:`lost` for a packet
    that failed to decode, :meth:`frame` for each decoded frame; then
    :meth:`finish` at the end of the stream. ``frame`` and ``finish`` return
    the frames now certain, as an iterator: a frame is held until ``reorder``
    later ones have come (a late frame of a damaged stream still finds its
    place). Rules:

    - a frame at or before the last one given out is dropped (late or
      repeated: its place in time is taken); so is one before ``floor``
      (after a seek: the pts of the first frame wanted);
    - a due pts with no frame by the time a later frame is given out becomes
      the previous good frame again at that pts (``damaged``), unless it is
      within three quarters of a frame of a frame (a field of it);
    - a failed packet without a pts is placed a frame after the newest pts;
      lost at the very start, the first good frame stands in;
    - more than ``max_damaged`` repaired frames in a row raise InputError;
    - at the end, a file shorter than ``expected`` frames or ``duration``
      seconds (or one whose demuxing failed: ``error``) is truncated: it ends
      at its last good frame (``truncated``); a whole file has the frames
      due at its tail repaired too.

    ``time_base`` and ``rate`` (frames per second, None: unknown) are the
    stream's; ``origin`` the pts of its first frame (for the times in
    messages); ``first_index`` the index of the first frame given out;
    ``skip`` how many frames to number but not give out (a start that could
    not be sought). ``damaged`` lists the indices of repaired frames given
    out.
    """

    def __init__(self, time_base: Fraction, rate: Fraction | None, *, path: str = "", origin: int = 0,
                 first_index: int = 0, skip: int = 0, floor: int | None = None,
                 max_damaged: int = RuntimeConfig.max_damaged_frames, reorder: int = REORDER):
        self.time_base, self.path, self.origin = time_base, path, origin
        self.step = max(1, int(round(1 / (rate * time_base)))) if rate else 1
        self.slot = max(1, int(0.75 * self.step))  # a pts this close to a frame's is a field of it, not a frame
        self.first_index, self.skip, self.floor = first_index, skip, floor
        self.max_damaged, self.reorder = max_damaged, reorder
        self.damaged: list[int] = []
        self.truncated: Truncation | None = None
        self.index = first_index  # of the next frame given out (or skipped)
        self._heap: list = []  # (pts, seq, payload or None for a lost frame, why)
        self._due: list[int] = []  # heap of packet pts whose frame has not come (yet)
        self._seen: set[int] = set()  # pts of frames met (pruned below the last given out)
        self._lost: dict[int, str] = {}  # pts of packets that failed to decode: why
        self._seq = 0
        self._last: int | None = None  # the last pts given out
        self._newest: int | None = None  # the largest pts met, to place what has none
        self._previous = None  # the last good payload given out
        self._run: list[tuple[int, int]] = []  # (index, pts) of the current run of lost frames

    # -- what the demux loop meets ------------------------------------------------------
    def due(self, pts: int) -> None:
        """A video packet at ``pts``: a frame is due there."""
        if pts not in self._seen and (self._last is None or pts > self._last):
            heapq.heappush(self._due, pts)

    def lost(self, pts: int | None, reason: str) -> None:
        """A video packet (at ``pts``, None: unknown) that failed to decode, and why."""
        if pts is not None:
            self._lost[pts] = reason  # used when its frame does not come
            return
        pts = 0 if self._newest is None else self._newest + self.step
        self._newest = pts
        self._push(pts, None, reason)

    def frame(self, pts: int | None, payload, why: str = "") -> Iterator[LumaFrame]:
        """A decoded frame at ``pts`` (None: a frame after the newest); ``payload``
        None: it came but cannot be used (``why``), so it is repaired. Returns
        the frames now certain."""
        if pts is None:
            pts = 0 if self._newest is None else self._newest + self.step
        self._newest = pts if self._newest is None else max(self._newest, pts)
        self._seen.add(pts)
        self._push(pts, payload, why)
        return self._release(self.reorder)

    def finish(self, expected: int = 0, duration: float | None = None,
               error: str | None = None) -> Iterator[LumaFrame]:
        """The end of the stream: the frames still held. ``expected``: frames
        the header promises (0: unknown); ``duration``: the video's length in
        seconds the header gives; ``error``: why demuxing stopped early."""
        heap, due, seen, step, tb = self._heap, self._due, self._seen, self.step, self.time_base
        good = [e[0] for e in heap if e[2] is not None]
        end = max(good) if good else (self._last if self._previous is not None else None)
        count = (self.index - self.first_index + sum(1 for e in heap if end is None or e[0] <= end)
                 + len({q for q in due if q not in seen and (end is None or q <= end)}))
        why = error
        if why is None and expected and not self.skip and self.floor is None \
                and count < expected - max(2, expected // 100):
            why = f"its header promises {expected} frames"
        if why is None and duration and end is not None:
            ends_at = float((end - self.origin + step) * tb)
            if ends_at < duration - max(2 * float(step * tb), duration / 100, 0.5):
                why = f"its header gives a length of {format_timecode(duration)}"
        if why is None:  # a whole file: packets at its tail whose frame never came are filled too
            for q in [q for q in due if q not in seen and end is not None and q - end >= self.slot]:
                self._push(q, None, self._lost.get(q, "its packet gave no frame"))
                seen.add(q)
        elif end is not None:  # a truncated one ends at its last good frame
            heap[:] = [e for e in heap if e[0] <= end]
            due[:] = [q for q in due if q <= end]
            heapq.heapify(heap)
            heapq.heapify(due)
        yield from self._release(0)
        if why is not None and end is not None:
            self.truncated = Truncation(self.index, float((end - self.origin + step) * tb), expected, why)

    # -- internals ----------------------------------------------------------------------
    def _push(self, pts: int, payload, why: str) -> None:
        heapq.heappush(self._heap, (pts, self._seq, payload, why))
        self._seq += 1

    def _emit(self, pts: int, payload, why: str) -> LumaFrame | None:
        if payload is None:
            # the previous good frame; lost at the very start, the first good one stands in
            payload = self._previous if self._previous is not None else \
                min((e[0], e[1], e[2]) for e in self._heap if e[2] is not None)[2]
            self._run.append((self.index, pts))
            if len(self._run) > self.max_damaged:
                first, t = self._run[0]
                at = format_timecode(float((t - self.origin) * self.time_base))
                raise InputError(f"cannot be decoded from frame {first} ({at}) on: more than {self.max_damaged} "
                                 f"damaged frames in a row, up to frame {self.index} ({why}; "
                                 "runtime.max_damaged_frames is how many are repaired)", self.path)
            frame = LumaFrame(payload, pts, self.time_base, self.index, damaged=True)
        else:
            self._run.clear()
            self._previous = payload
            frame = LumaFrame(payload, pts, self.time_base, self.index)
        self._last = pts
        self.index += 1
        if self.index <= self.skip:
            return None
        if frame.damaged:
            self.damaged.append(frame.index)
        return frame

    def _release(self, keep: int) -> Iterator[LumaFrame]:
        """Frames in pts order until ``keep`` are left held."""
        heap, due, floor, slot = self._heap, self._due, self.floor, self.slot
        while len(heap) > keep:
            pts, _, payload, why = heap[0]
            if self._previous is None and not any(e[2] is not None for e in heap):
                return  # only lost frames so far: they wait for the first good one
            while due and due[0] < pts:  # packets whose frame never came, before this frame
                q = heapq.heappop(due)
                if q in self._seen or (floor is not None and q < floor) or pts - q < slot:
                    continue
                if self._last is not None and q - self._last < slot:
                    continue
                self._seen.add(q)
                f = self._emit(q, None, self._lost.pop(q, "its packet gave no frame"))
                if f is not None:
                    yield f
            heapq.heappop(heap)
            if (self._last is not None and pts <= self._last) or (floor is not None and pts < floor):
                continue  # late or repeated (its place in time is taken), or before the start
            f = self._emit(pts, payload, why)
            if f is not None:
                yield f
        if len(self._seen) > 1024 and self._last is not None:
            self._seen = {p for p in self._seen if p > self._last}
            for p in [p for p in self._lost if p <= self._last]:
                del self._lost[p]
