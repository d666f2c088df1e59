"""Streaming decode with PyAV.

One ``container.demux()`` loop runs in a background thread and feeds a
bounded queue, so memory stays flat however long the film is. It yields, in
file order, the luma plane of every video frame (with its own ``pts`` and
``time_base``) and every packet of the other streams, untouched, for the
writer to copy.
"""
from __future__ import annotations

import logging
import os
import queue
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Union

import av
import numpy as np

from ..color import BT601, BT709, YCbCrSpec
from ..errors import InputError

__all__ = ["VideoInfo", "LumaFrame", "VideoReader", "open_video", "luma_plane"]

log = logging.getLogger("vidcolor")

# Pixel formats whose first plane is the luma plane, read as is.
_DIRECT = re.compile(r"^(?:yuvj?(?:420|422|444|440|411|410)p|gray)(?:9|10|12|14|16)?(?:le)?$|^nv(?:12|21)$")
_UNSPECIFIED = (0, 2)  # AVCOL_RANGE_UNSPECIFIED / AVCOL_SPC_UNSPECIFIED


@dataclass(frozen=True)
class VideoInfo:
    """What the writer needs to reproduce the input exactly, but for colour."""

    path: str
    format_name: str
    width: int
    height: int
    pix_fmt: str  # the luma source format after normalisation
    bits: int
    chroma_shift: tuple[int, int] | None  # (log2 w, log2 h) subsampling, None for gray
    ycbcr: YCbCrSpec
    colorspace_tagged: bool
    color_range: int
    color_primaries: int
    color_trc: int
    time_base: Fraction
    rate: Fraction | None
    frames: int  # from the container; 0 when unknown
    duration: float | None  # seconds
    sample_aspect_ratio: Fraction | None
    rotation: int  # display rotation, degrees counter-clockwise
    metadata: dict


@dataclass
class LumaFrame:
    """One decoded frame's luma plane, (H, W) uint8 or uint16 codes."""

    luma: np.ndarray
    pts: int
    time_base: Fraction
    index: int

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


Item = Union[LumaFrame, av.Packet]


def _plane_array(plane, dtype) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    arr = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // itemsize)
    return arr[:, : plane.width]


def _bits(fmt: av.VideoFormat) -> int:
    return fmt.components[0].bits


def _normalise(frame: av.VideoFrame) -> av.VideoFrame:
    """Frames whose luma can't be read directly (RGB, palette, packed YUV,
    P010) are converted once to planar 4:4:4 YUV."""
    if _DIRECT.match(frame.format.name):
        return frame
    return frame.reformat(format="yuv444p10le" if _bits(frame.format) > 8 else "yuv444p")


def luma_plane(frame: av.VideoFrame) -> np.ndarray:
    """Copy of the luma plane of a normalised frame: (H, W) uint8 or uint16."""
    dtype = np.uint8 if _bits(frame.format) <= 8 else np.dtype("<u2")
    return _plane_array(frame.planes[0], dtype).copy()


def _describe(path: str, container, stream, first: av.VideoFrame) -> VideoInfo:
    fmt = first.format
    bits = _bits(fmt)
    comps = fmt.components
    if len(comps) >= 3:
        cw, ch = comps[1].width, comps[1].height
        shift = (int(round(np.log2(first.width / cw))) if cw else 0, int(round(np.log2(first.height / ch))) if ch else 0)
        # odd sizes round the chroma plane up; recover the shift from the format name instead
        name = fmt.name
        if "420" in name or name.startswith("nv"):
            shift = (1, 1)
        elif "422" in name:
            shift = (1, 0)
        elif "440" in name:
            shift = (0, 1)
        elif "411" in name:
            shift = (2, 0)
        elif "410" in name:
            shift = (2, 2)
        elif "444" in name:
            shift = (0, 0)
    else:
        shift = None
    is_gray = fmt.name.startswith("gray")
    rng = first.color_range
    full = rng == 2 or fmt.name.startswith("yuvj") or (rng == 0 and is_gray)
    cs = first.colorspace
    tagged = cs not in _UNSPECIFIED and cs in (1, 4, 5, 6, 7, 9, 10)
    if not tagged:
        # the convention players follow for untagged video: BT.709 for HD, BT.601 below
        cs = BT709 if first.height >= 720 else BT601
    sar = stream.codec_context.sample_aspect_ratio
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    dur = None
    if stream.duration is not None and stream.time_base is not None:
        dur = float(stream.duration * stream.time_base)
    elif container.duration:
        dur = container.duration / 1e6
    return VideoInfo(
        path=path,
        format_name=container.format.name,
        width=first.width,
        height=first.height,
        pix_fmt=fmt.name,
        bits=bits,
        chroma_shift=shift,
        ycbcr=YCbCrSpec(colorspace=cs, full_range=full, bits=bits),
        colorspace_tagged=tagged,
        color_range=2 if full else 1,
        color_primaries=first.color_primaries,
        color_trc=first.color_trc,
        time_base=stream.time_base,
        rate=Fraction(rate) if rate else None,
        frames=stream.frames or 0,
        duration=dur,
        sample_aspect_ratio=Fraction(sar) if sar else None,
        rotation=int(round(first.rotation or 0)) % 360,
        metadata=dict(container.metadata),
    )


class VideoReader:
    """An open input video: ``info`` about it, and ``items()`` to stream it.

    ``items()`` yields LumaFrame and pass-through av.Packet objects in file
    order from a background thread; at most ``queue_size`` are buffered.
    Close it (or use it as a context manager) to stop the thread.

    ``start=(index, pts)`` begins at frame ``index`` (whose pts is ``pts``, as
    a read from the start numbered it): the reader seeks to the keyframe
    before it and drops the frames up to it, or, where the file cannot seek
    exactly, decodes from the start and counts. Only video frames are yielded
    then (a range of frames is a piece of the film, not the film).
    """

    def __init__(self, path: str | os.PathLike, queue_size: int = 32, start: tuple[int, int] | None = None):
        self.path = os.fspath(path)
        self.queue_size = queue_size
        self._first_index = 0
        self._video_only = False
        if not os.path.exists(self.path):
            raise InputError("file not found", self.path)
        if os.path.isdir(self.path):
            raise InputError("is a folder, not a video file", self.path)
        try:
            self.container = av.open(self.path, metadata_errors="ignore")
        except PermissionError:
            raise InputError("cannot be read (permission denied)", self.path) from None
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise InputError(f"not a readable video or image file: damaged or truncated, or not media at all "
                             f"(FFmpeg: {_ffmpeg_reason(e)})", self.path) from None
        try:
            if not self.container.streams.video:
                raise InputError("has no video stream", self.path)
            self.stream = self.container.streams.video[0]
            self.stream.thread_type = "AUTO"
            self.passthrough = [s for s in self.container.streams if s is not self.stream]
            self._frames = self._decode()
            self._pending: list = []  # packets demuxed before the first frame, then that frame
            for frame, packet in self._frames:
                self._pending.append((frame, packet))
                if frame is not None:
                    break
            else:
                raise InputError("has a video stream but no decodable frames", self.path)
            self.info = _describe(self.path, self.container, self.stream, self._pending[-1][0])
            if start is not None:
                self._start_at(*start)
        except BaseException:
            self.container.close()
            raise
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)

    def _start_at(self, index: int, pts: int) -> None:
        self._video_only = True
        self._first_index = index
        self._pending = [(f, p) for f, p in self._pending if f is not None]
        if index == 0:
            return
        try:
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
            frames = self._decode()
            for frame, _ in frames:
                if frame.pts is None or frame.pts > pts:
                    break  # landed past it, or no timestamps to tell: count from the start instead
                if frame.pts == pts:
                    self._frames, self._pending = frames, [(frame, None)]
                    return
        except av.error.FFmpegError:
            pass
        log.info("%s: cannot seek to frame %d exactly; decoding from the start", self.path, index)
        self.container.close()
        self.container = av.open(self.path, metadata_errors="ignore")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.passthrough = [s for s in self.container.streams if s is not self.stream]
        frames = self._decode()
        for n, (frame, _) in enumerate(frames):
            if n == index:
                self._frames, self._pending = frames, [(frame, None)]
                return
        raise InputError(f"has no frame {index}", self.path)

    # -- decoding (runs in the background thread) -------------------------------------
    def _decode(self) -> Iterator[tuple[av.VideoFrame | None, av.Packet | None]]:
        """(frame, None) for video frames, (None, packet) for other streams."""
        streams = [self.stream] if self._video_only else [self.stream, *self.passthrough]
        n = 0
        try:
            for packet in self.container.demux(streams):
                if packet.stream is not self.stream:
                    if packet.dts is not None and packet.size:
                        yield None, packet
                    continue
                for frame in packet.decode():
                    n += 1
                    yield _normalise(frame), None
        except av.error.EOFError:
            pass
        except av.error.FFmpegError as e:
            raise InputError(f"is damaged or truncated after frame {n} ({_ffmpeg_reason(e)})", self.path) from None

    def _run(self) -> None:
        q, stop = self._queue, self._stop
        try:
            for item in self._lumas():
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as e:  # handed to the consumer, re-raised there
            q.put(_Failure(e))

    def _lumas(self) -> Iterator[Item]:
        index = self._first_index
        last_pts: int | None = None
        tb = self.info.time_base
        step = int(round(1 / (self.info.rate * tb))) if self.info.rate else 1
        frames = self._frames
        pending, self._pending = self._pending, []
        while True:
            for frame, packet in pending:
                if packet is not None:
                    yield packet
                    continue
                if frame.width != self.info.width or frame.height != self.info.height:
                    raise InputError(
                        f"frame size changes mid-stream at frame {index} "
                        f"({self.info.width}x{self.info.height} -> {frame.width}x{frame.height})",
                        self.path,
                    )
                pts = frame.pts
                if pts is None:
                    pts = 0 if last_pts is None else last_pts + step
                last_pts = pts
                yield LumaFrame(luma_plane(frame), pts, frame.time_base or tb, index)
                index += 1
            try:
                pending = [next(frames)]
            except StopIteration:
                break
        expected = self.info.frames
        if expected and index < expected - max(2, expected // 100):
            raise InputError(
                f"is truncated: {index} of {expected} frames could be decoded "
                f"(the file ends at {float(last_pts * tb) if last_pts is not None else 0:.2f} s)",
                self.path,
            )

    # -- consumer side -----------------------------------------------------------------
    def items(self) -> Iterator[Item]:
        if self._thread is not None:
            raise RuntimeError("VideoReader.items() can only be iterated once")
        self._thread = threading.Thread(target=self._run, name="vidcolor-decode", daemon=True)
        self._thread.start()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:  # unblock a producer waiting on a full queue
                    self._queue.get(timeout=0.05)
                except queue.Empty:
                    pass
            self._thread.join()
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


_END = object()


def _ffmpeg_reason(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).split(":")[0].strip() or type(e).__name__


def open_video(path: str | os.PathLike, queue_size: int = 32) -> VideoReader:
    return VideoReader(path, queue_size=queue_size)
