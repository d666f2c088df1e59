"""A part of a film (``--start T --duration D``) and side-by-side review video.

A part is located on the film's own timeline: its first frame is the first
whose time, measured from the film's first frame, is at or after ``T``; its
frame index counts the film's video packets before it (one packet a frame,
found by demuxing, not decoding, so it is cheap however far into the film
``T`` lies). The part's other streams (audio, subtitles, data) keep the
packets whose time falls inside the part, at packet granularity, and every
stream is shifted so the part starts at 0, as an excerpt cut with
``ffmpeg -ss`` would; the report records where in the film it came from.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Sequence

import av
import numpy as np

from ..config import EncodeConfig
from ..errors import InputError
from .decode import VideoInfo
from .encode import VideoWriter, choose_pix_fmt

__all__ = ["Span", "locate_span", "SideStreams", "SideBySideWriter"]

log = logging.getLogger("vidcolor")

_REORDER = 32  # packets past the start that may still show a frame before it (H.264 reorders at most 16)
_SLACK = 5.0  # seconds: how far the other streams may be interleaved away from the video


@dataclass(frozen=True)
class Span:
    """Where a part lies in the film: its first frame (index and pts, as a
    read from the start numbers them), the film's first frame's time
    (``origin``, seconds), and where it ends: ``end`` seconds from the
    film's first frame (exclusive; None: the end of the film)."""

    start: float
    end: float | None
    first_frame: int
    first_pts: int
    time_base: Fraction
    origin: float

    @property
    def first_time(self) -> float:
        """Seconds of the part's first frame, on the file's clock."""
        return float(self.first_pts * self.time_base)

    def contains(self, seconds: float) -> bool:
        """Whether a video frame at ``seconds`` (file clock) lies before the part's end."""
        return self.end is None or seconds - self.origin < self.end - 1e-9

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "first_frame": self.first_frame, "first_pts": self.first_pts,
                "first_time": round(self.first_time - self.origin, 6)}


def locate_span(path: str | os.PathLike, start: float, duration: float | None = None) -> Span:
    """The part of ``path`` from ``start`` seconds for ``duration`` seconds (None: to the end)."""
    path = os.fspath(path)
    if duration is not None and duration <= 0:
        raise InputError(f"--duration must be more than 0 seconds, got {duration}", path)
    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise InputError(f"not a readable video ({e})", path) from None
    with container:
        if not container.streams.video:
            raise InputError("has no video stream", path)
        stream = container.streams.video[0]
        tb = stream.time_base
        seen: list[int] = []  # every packet's pts up to a little past the start
        past = 0  # packets read since decoding reached the start
        try:
            ticks = start / float(tb) if tb else 0.0
            for p in container.demux(stream):
                if not p.size:
                    continue
                t = p.pts if p.pts is not None else p.dts
                if t is None:
                    raise InputError("has video packets without timestamps; --start/--duration need them "
                                     "(re-mux it, e.g. to .mkv)", path)
                seen.append(t)
                d = p.dts if p.dts is not None else t
                if past or d - min(seen[:_REORDER]) >= ticks:
                    past += 1  # a few packets more: frames decoded later may still show earlier
                    if past > _REORDER:
                        break
        except av.error.EOFError:
            pass
        except av.error.FFmpegError as e:
            raise InputError(f"is damaged before {start:.3f} s ({e})", path) from None
    if not seen:
        raise InputError("has no video frames", path)
    origin = min(seen)  # the film's first frame
    after = [t for t in seen if float((t - origin) * tb) >= start - 1e-9]
    if not after:
        length = float((max(seen) - origin) * tb)
        raise InputError(f"--start {start:g} s is past the end of the film (its last frame is at {length:.3f} s)",
                         path)
    before = len(seen) - len(after)
    origin_s = float(origin * tb)
    return Span(start=start, end=None if duration is None else start + duration, first_frame=before,
                first_pts=min(after), time_base=tb, origin=origin_s)


class SideStreams:
    """The packets of the other streams (audio, subtitles, data) whose time lies
    in ``[span's first frame, span's end)``, in file order, shifted so the
    part starts at 0; pulled with :meth:`until` as the video goes on."""

    def __init__(self, path: str | os.PathLike, span: Span, indices: Sequence[int]):
        self.span = span
        self._start = Fraction(span.first_pts) * span.time_base  # the part's 0
        self._end = None if span.end is None else span.origin + span.end
        self.container = av.open(os.fspath(path), metadata_errors="ignore")
        self._streams = [s for s in self.container.streams if s.index in set(indices)]
        self._packets = self._read() if self._streams else iter(())
        self._next: av.Packet | None = None
        self._done = not self._streams

    def _read(self) -> Iterator[av.Packet]:
        try:
            self.container.seek(max(0, int((float(self._start) - _SLACK) * av.time_base)), backward=True)
        except av.error.FFmpegError:
            self.container.seek(0)
        shift: dict[int, int] = {}
        try:
            for p in self.container.demux(self._streams):
                t = p.pts if p.pts is not None else p.dts
                if t is None or p.dts is None or not p.size:
                    continue  # as the full run's copy: packets with no dts are not muxed
                seconds = t * p.time_base
                if self._end is not None and seconds > self._end + _SLACK:
                    return  # every stream is past the end, whatever the interleave
                if seconds < self._start or (self._end is not None and seconds >= self._end):
                    continue
                k = shift.setdefault(p.stream.index, math.floor(self._start / p.time_base))
                if p.pts is not None:
                    p.pts -= k
                if p.dts is not None:
                    p.dts -= k
                yield p
        except av.error.EOFError:
            return

    def until(self, seconds: float | None) -> Iterator[av.Packet]:
        """Packets due before ``seconds`` of the file's clock (None: all that are left)."""
        while not self._done:
            if self._next is None:
                self._next = next(self._packets, None)
                if self._next is None:
                    self._done = True
                    return
            p = self._next
            t = (p.dts if p.dts is not None else p.pts) * p.time_base + self._start
            if seconds is not None and t >= seconds:
                return
            self._next = None
            yield p

    def close(self) -> None:
        self.container.close()


def side_by_side_info(info: VideoInfo) -> VideoInfo:
    return dataclasses.replace(info, width=2 * info.width)


class SideBySideWriter(VideoWriter):
    """A :class:`VideoWriter` of review video: the input's gray (its luma, neutral
    chroma) on the left, the colour frame on the right, same height, same pts.

    The frame is twice the input's width in the pixel format a plain output
    would have, so the right half is exactly what a plain run writes;
    ``chroma_size`` is a half's, as the colorizer must produce it.
    """

    def __init__(self, path, info: VideoInfo, enc: EncodeConfig, passthrough=(), **kwargs):
        try:
            pix_fmt = choose_pix_fmt(av.Codec(enc.codec, "w"), info, enc.pix_fmt)
        except Exception:  # an unknown encoder: VideoWriter says so
            pix_fmt = enc.pix_fmt
        super().__init__(path, side_by_side_info(info), dataclasses.replace(enc, pix_fmt=pix_fmt), passthrough,
                         **kwargs)
        self.half = info.width
        self.chroma_size = (self.chroma_size[0], self.chroma_size[1] // 2)
        self._neutral = 1 << (self.bits - 1)

    def write(self, luma: np.ndarray, chroma: np.ndarray, pts: Sequence[int]) -> None:
        luma = np.concatenate([luma, luma], axis=-1)
        chroma = np.concatenate([np.full_like(chroma, self._neutral), chroma], axis=-1)
        super().write(luma, chroma, pts)
