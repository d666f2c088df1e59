"""Streaming decode with PyAV.

One ``container.demux()`` loop runs in a background thread and feeds a
bounded queue, so memory stays flat however long the film is. It yields, in
file order, the luma plane of every video frame (with its own ``pts`` and
``time_base``) and every packet of the other streams, untouched, for the
writer to copy.

Damage is survived, not trusted: a video packet whose decoding fails, or
that yields no frame where its timestamp says one was due, becomes a copy
of the previous good frame at its own pts (counted in ``damaged``); more
than ``max_damaged`` such frames in a row stop with an error. A file that
ends early (an unreadable tail, or fewer frames than its header promises)
ends the stream at the last frame decoded, described in ``truncated``.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Iterator, Union

import av

from ..config import RuntimeConfig
from ..errors import InputError
from .probe import VideoInfo, describe, ffmpeg_reason, luma_plane, normalise, video_duration
from .sequencer import FrameSequencer, LumaFrame, Truncation, damage_note

__all__ = ["VideoInfo", "LumaFrame", "Truncation", "VideoReader", "open_video", "luma_plane", "damage_note",
           "MAX_PIXELS", "MIN_SIZE"]

log = logging.getLogger("vidcolor")

MAX_PIXELS = 100_000_000  # a frame larger than this is refused before it is decoded (a decompression bomb)
MIN_SIZE = (16, 16)  # smallest frame (width, height) colourised (optical flow needs 12 pixels)


class _Lost:
    """A frame that could not be decoded: its pts and why."""

    __slots__ = ("pts", "reason")

    def __init__(self, pts: int | None, reason: str):
        self.pts, self.reason = pts, reason


Item = Union[LumaFrame, av.Packet]


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

    Once the stream is read to its end, ``damaged`` lists the indices of the
    frames that repeat the previous good one, and ``truncated`` says where a
    file that ends early ends (None when it does not).
    """

    def __init__(self, path: str | os.PathLike, queue_size: int = RuntimeConfig.queue_size,
                 start: tuple[int, int] | None = None, max_damaged: int = RuntimeConfig.max_damaged_frames):
        self.path = os.fspath(path)
        self.queue_size = queue_size
        self.max_damaged = max_damaged
        self.damaged: list[int] = []
        self.truncated: Truncation | None = None
        self._first_index = 0
        self._skip = 0  # frames to drop before the first one yielded (a start that cannot be sought)
        self._video_only = False
        self._start_pts: int | None = None  # after a seek: the pts of the first frame to yield
        self._demux_error: str | None = None
        if not os.path.exists(self.path):
            raise InputError("file not found", self.path)
        if os.path.isdir(self.path):
            raise InputError("is a folder, not a video file", self.path)
        try:
            self.container = av.open(self.path, metadata_errors="ignore")
        except PermissionError:
            raise InputError("cannot be read (permission denied)", self.path) from None
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            w, h = _y4m_size(self.path)
            if w * h > MAX_PIXELS:  # FFmpeg refuses a huge y4m frame (EBUSY) before saying its size
                _check_size(self.path, w, h)
            raise InputError(f"not a readable video or image file: damaged or truncated, or not media at all "
                             f"(FFmpeg: {ffmpeg_reason(e)})", self.path) from None
        try:
            if not self.container.streams.video:
                raise InputError("has no video stream", self.path)
            self.stream = self.container.streams.video[0]
            _check_header(self.path, self.stream)
            self.stream.thread_type = "AUTO"
            self.passthrough = [s for s in self.container.streams if s is not self.stream]
            self._frames = self._decode()
            self._pending: list = []  # what was demuxed before the first frame, then that frame
            lost = 0
            for item, packet in self._frames:
                self._pending.append((item, packet))
                if isinstance(item, av.VideoFrame):
                    break
                if isinstance(item, _Lost):
                    lost += 1
                    if lost > max(max_damaged, 0):
                        raise InputError(f"no frame could be decoded: the first {lost} video packets are damaged "
                                         f"({item.reason})", self.path)
            else:
                raise InputError("has a video stream but no decodable frames"
                                 + (f" ({self._demux_error})" if self._demux_error else ""), self.path)
            self.info = describe(self.path, self.container, self.stream, self._pending[-1][0])
            _check_size(self.path, self.info.width, self.info.height)
            self._t0 = self.stream.start_time if self.stream.start_time is not None else (self._pending[-1][0].pts or 0)
            if start is not None:
                self._start_at(*start)
        except BaseException:
            self.container.close()
            raise
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.busy_seconds = 0.0  # the worker thread's time not spent waiting on the queue

    def _start_at(self, index: int, pts: int) -> None:
        self._video_only = True
        self._first_index = index
        self._pending = [(f, p) for f, p in self._pending if p is None]
        if index == 0:
            return
        try:
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
            frames = self._decode()
            for frame, _ in frames:
                if not isinstance(frame, av.VideoFrame):
                    continue
                if frame.pts is None or frame.pts > pts:
                    break  # landed past it, or no timestamps to tell: count from the start instead
                if frame.pts == pts:
                    self._frames, self._pending, self._start_pts = frames, [(frame, None)], pts
                    return
        except av.error.FFmpegError:
            pass
        log.info("%s: cannot seek to frame %d exactly; decoding from the start", self.path, index)
        self.container.close()
        self.container = av.open(self.path, metadata_errors="ignore")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.passthrough = [s for s in self.container.streams if s is not self.stream]
        # numbered as a read from the start numbers them, damaged frames included
        self._frames, self._pending = self._decode(), []
        self._first_index, self._skip = 0, index

    # -- decoding (runs in the background thread) -------------------------------------
    def _decode(self) -> Iterator[tuple[object, av.Packet | None]]:
        """(frame, None) for video frames, (_Lost, None) for a video packet that
        could not be decoded, (pts, None) for each video packet's pts (the
        frames due), (None, packet) for other streams. An unreadable tail ends
        it, with the reason in ``_demux_error``."""
        streams = [self.stream] if self._video_only else [self.stream, *self.passthrough]
        try:
            for packet in self.container.demux(streams):
                if packet.stream is not self.stream:
                    # (a part from frame 0 turns video-only after this generator began demuxing all)
                    if packet.dts is not None and packet.size and not self._video_only:
                        yield None, packet
                    continue
                if packet.size and packet.pts is not None and not packet.is_discard:
                    yield int(packet.pts), None
                try:
                    frames = packet.decode()
                except av.error.EOFError:
                    break
                except (av.error.FFmpegError, ValueError) as e:
                    if packet.size:  # a damaged packet; the decoder goes on with the next one
                        yield _Lost(None if packet.pts is None else int(packet.pts), ffmpeg_reason(e)), None
                    continue
                for frame in frames:
                    yield normalise(frame), None
        except av.error.EOFError:
            pass
        except (av.error.FFmpegError, OSError) as e:
            self._demux_error = f"unreadable from there on: {ffmpeg_reason(e)}"
            try:  # the frames still in the decoder
                frames = self.stream.codec_context.decode(None)
            except (av.error.FFmpegError, ValueError):
                frames = []
            for frame in frames:
                yield normalise(frame), None

    def _run(self) -> None:
        q, stop = self._queue, self._stop
        t0, waited = time.perf_counter(), 0.0
        try:
            for item in self._lumas():
                tw = time.perf_counter()
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                waited += time.perf_counter() - tw
                self.busy_seconds = time.perf_counter() - t0 - waited
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as e:  # handed to the consumer, re-raised there
            q.put(_Failure(e))

    def _lumas(self) -> Iterator[Item]:
        """Frames in pts order, each video packet's frame accounted for (see
        FrameSequencer), and the other streams' packets as they come."""
        info = self.info
        seq = FrameSequencer(info.time_base, info.rate, path=self.path, origin=self._t0,
                             first_index=self._first_index, skip=self._skip, floor=self._start_pts,
                             max_damaged=self.max_damaged)
        self.damaged = seq.damaged
        frames = self._frames
        pending, self._pending = self._pending, []
        while True:
            for item, packet in pending:
                if packet is not None:
                    yield packet
                elif isinstance(item, int):
                    seq.due(item)
                elif isinstance(item, _Lost):
                    seq.lost(item.pts, item.reason)
                elif item.width != info.width or item.height != info.height:
                    why = f"frame size changes from {info.width}x{info.height} to {item.width}x{item.height}"
                    yield from seq.frame(item.pts, None, why)
                else:
                    yield from seq.frame(item.pts, luma_plane(item))
            try:
                pending = [next(frames)]
            except StopIteration:
                break
        yield from seq.finish(info.frames, video_duration(self.stream), self._demux_error)
        self.truncated = seq.truncated

    def notes(self) -> list[str]:
        """What the damage came to, once the stream is read: one line each."""
        out = []
        if self.damaged:
            out.append(f"{self.path}: {damage_note(len(self.damaged), self.damaged)}")
        if self.truncated is not None:
            out.append(f"{self.path}: {self.truncated.describe()}")
        return out

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


def _check_header(path: str, stream) -> None:
    """Refuse, before decoding anything, a frame size the header says is absurd."""
    cc = stream.codec_context
    w, h = cc.width or 0, cc.height or 0
    if w * h > MAX_PIXELS:
        raise InputError(f"frames are too large ({w}x{h}; at most {MAX_PIXELS // 1_000_000} megapixels)", path)


def _y4m_size(path: str) -> tuple[int, int]:
    """(width, height) from a YUV4MPEG2 file's header line, (0, 0) for any other file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256).split(b"\n", 1)[0].split()
    except OSError:
        return 0, 0
    if not head or head[0] != b"YUV4MPEG2":
        return 0, 0
    size = {t[:1]: t[1:] for t in head[1:] if t[:1] in (b"W", b"H")}
    w, h = size.get(b"W", b""), size.get(b"H", b"")
    return (int(w), int(h)) if w.isdigit() and h.isdigit() else (0, 0)


def _check_size(path: str, w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise InputError(f"frames are too large ({w}x{h}; at most {MAX_PIXELS // 1_000_000} megapixels)", path)
    if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
        raise InputError(f"frames are too small ({w}x{h}; the minimum is {MIN_SIZE[0]}x{MIN_SIZE[1]})", path)


def open_video(path: str | os.PathLike, queue_size: int = RuntimeConfig.queue_size) -> VideoReader:
    return VideoReader(path, queue_size=queue_size)
