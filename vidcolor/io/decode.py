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
import heapq
import queue
import re
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Union

import av
import numpy as np

from ..color import BT601, BT709, YCbCrSpec
from ..errors import InputError

__all__ = ["VideoInfo", "LumaFrame", "Truncation", "VideoReader", "open_video", "luma_plane", "damage_note",
           "MAX_PIXELS", "MIN_SIZE"]

log = logging.getLogger("vidcolor")

# Pixel formats whose first plane is the luma plane, read as is.
_DIRECT = re.compile(r"^(?:yuvj?(?:420|422|444|440|411|410)p|gray)(?:9|10|12|14|16)?(?:le)?$|^nv(?:12|21)$")
_UNSPECIFIED = (0, 2)  # AVCOL_RANGE_UNSPECIFIED / AVCOL_SPC_UNSPECIFIED
MAX_PIXELS = 100_000_000  # a frame larger than this is refused before it is decoded (a decompression bomb)
MIN_SIZE = (16, 16)  # smallest frame (width, height) colourised (optical flow needs 12 pixels)
MAX_RATE = 10_000  # frames per second beyond this are a broken rate tag, not a rate
_REORDER = 16  # frames held to put a damaged decoder's output back in pts order


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
        return (f"is truncated: the file ends at {_timecode(self.time)} (after frame {self.frames - 1}; "
                f"{self.frames}{of} frames decoded; {self.reason})")


class _Lost:
    """A frame that could not be decoded: its pts and why."""

    __slots__ = ("pts", "reason")

    def __init__(self, pts: int | None, reason: str):
        self.pts, self.reason = pts, reason


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
        rate=Fraction(rate) if rate and 0 < rate <= MAX_RATE else None,  # an absurd rate tag: unknown
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

    Once the stream is read to its end, ``damaged`` lists the indices of the
    frames that repeat the previous good one, and ``truncated`` says where a
    file that ends early ends (None when it does not).
    """

    def __init__(self, path: str | os.PathLike, queue_size: int = 32, start: tuple[int, int] | None = None,
                 max_damaged: int = 25):
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
                             f"(FFmpeg: {_ffmpeg_reason(e)})", self.path) from None
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
            self.info = _describe(self.path, self.container, self.stream, self._pending[-1][0])
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
                        yield _Lost(None if packet.pts is None else int(packet.pts), _ffmpeg_reason(e)), None
                    continue
                for frame in frames:
                    yield _normalise(frame), None
        except av.error.EOFError:
            pass
        except (av.error.FFmpegError, OSError) as e:
            self._demux_error = f"unreadable from there on: {_ffmpeg_reason(e)}"
            try:  # the frames still in the decoder
                frames = self.stream.codec_context.decode(None)
            except (av.error.FFmpegError, ValueError):
                frames = []
            for frame in frames:
                yield _normalise(frame), None

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
        """Frames in pts order, each video packet's frame accounted for: a frame
        that is lost (its packet failed, or no frame came for its pts) is the
        previous good one again, at its own pts."""
        info = self.info
        tb = info.time_base
        rate = info.rate
        step = max(1, int(round(1 / (rate * tb)))) if rate else 1
        slot = max(1, int(0.75 * step))  # a pts this close to a frame's is a field of it, not a frame of its own
        floor = self._start_pts  # after a seek: what comes before the first frame asked for is dropped
        index = self._first_index
        heap: list = []  # (pts, seq, luma or None for a lost frame, why)
        due: list[int] = []  # heap of packet pts whose frame has not come (yet)
        seen: set[int] = set()  # pts of frames met (pruned below the last yielded)
        lost: dict[int, str] = {}  # pts of packets that failed to decode: why
        seq = 0
        last_pts: int | None = None  # the last pts yielded
        newest: int | None = None  # the largest pts met, to place what has none
        previous: np.ndarray | None = None  # the last good luma yielded
        run: list[tuple[int, int]] = []  # (index, pts) of the current run of lost frames

        def emit(pts: int, luma: np.ndarray | None, why: str) -> LumaFrame | None:
            nonlocal index, last_pts, previous
            if luma is None:
                # the previous good frame; lost at the very start, the first good one stands in
                luma = previous if previous is not None else min((e[0], e[1], e[2]) for e in heap if e[2] is not None)[2]
                run.append((index, pts))
                if len(run) > self.max_damaged:
                    first, t = run[0]
                    raise InputError(f"cannot be decoded from frame {first} ({_timecode(float((t - self._t0) * tb))}) "
                                     f"on: more than {self.max_damaged} damaged frames in a row, up to frame {index} "
                                     f"({why}; runtime.max_damaged_frames is how many are repaired)", self.path)
                frame = LumaFrame(luma, pts, tb, index, damaged=True)
            else:
                run.clear()
                previous = luma
                frame = LumaFrame(luma, pts, tb, index)
            last_pts = pts
            index += 1
            if index <= self._skip:
                return None
            if frame.damaged:
                self.damaged.append(frame.index)
            return frame

        def release(keep: int) -> Iterator[LumaFrame]:
            """Yield frames in pts order until ``keep`` are left held."""
            nonlocal seen
            while len(heap) > keep:
                pts, _, luma, why = heap[0]
                if previous is None and not any(e[2] is not None for e in heap):
                    return  # only lost frames so far: they wait for the first good one
                while due and due[0] < pts:  # packets whose frame never came, before this frame
                    q = heapq.heappop(due)
                    if q in seen or (floor is not None and q < floor) or pts - q < slot:
                        continue
                    if last_pts is not None and q - last_pts < slot:
                        continue
                    seen.add(q)
                    f = emit(q, None, lost.pop(q, "its packet gave no frame"))
                    if f is not None:
                        yield f
                heapq.heappop(heap)
                if (last_pts is not None and pts <= last_pts) or (floor is not None and pts < floor):
                    continue  # late or repeated (its place in time is taken), or before the start
                f = emit(pts, luma, why)
                if f is not None:
                    yield f
            if len(seen) > 1024 and last_pts is not None:
                seen = {p for p in seen if p > last_pts}
                for p in [p for p in lost if p <= last_pts]:
                    del lost[p]

        frames = self._frames
        pending, self._pending = self._pending, []
        while True:
            for item, packet in pending:
                if packet is not None:
                    yield packet
                elif isinstance(item, int):
                    if item not in seen and (last_pts is None or item > last_pts):
                        heapq.heappush(due, item)
                elif isinstance(item, _Lost):
                    if item.pts is not None:
                        lost[item.pts] = item.reason  # filled when its frame does not come
                        continue
                    pts = 0 if newest is None else newest + step
                    newest = pts
                    heapq.heappush(heap, (pts, seq, None, item.reason))
                    seq += 1
                else:
                    frame = item
                    pts = frame.pts
                    if pts is None:
                        pts = 0 if newest is None else newest + step
                    newest = pts if newest is None else max(newest, pts)
                    seen.add(pts)
                    if frame.width != info.width or frame.height != info.height:
                        why = f"frame size changes from {info.width}x{info.height} to {frame.width}x{frame.height}"
                        heapq.heappush(heap, (pts, seq, None, why))
                    else:
                        heapq.heappush(heap, (pts, seq, luma_plane(frame), ""))
                    seq += 1
                    yield from release(_REORDER)
            try:
                pending = [next(frames)]
            except StopIteration:
                break
        # the end: is it the end the file promised?
        good = [e[0] for e in heap if e[2] is not None]
        end = max(good) if good else (last_pts if previous is not None else None)
        count = (index - self._first_index + sum(1 for e in heap if end is None or e[0] <= end)
                 + len({q for q in due if q not in seen and (end is None or q <= end)}))
        why = self._demux_error
        expected = info.frames
        if why is None and expected and not self._skip and self._start_pts is None \
                and count < expected - max(2, expected // 100):
            why = f"its header promises {expected} frames"
        duration = _video_duration(self.stream)
        if why is None and duration and end is not None:
            ends_at = float((end - self._t0 + step) * tb)
            if ends_at < duration - max(2 * float(step * tb), duration / 100, 0.5):
                why = f"its header gives a length of {_timecode(duration)}"
        if why is None:  # a whole file: packets at its tail whose frame never came are filled too
            for q in [q for q in due if q not in seen and end is not None and q - end >= slot]:
                heapq.heappush(heap, (q, seq, None, lost.get(q, "its packet gave no frame")))
                seq += 1
                seen.add(q)
        elif end is not None:  # a truncated one ends at its last good frame
            heap[:] = [e for e in heap if e[0] <= end]
            due[:] = [q for q in due if q <= end]
            heapq.heapify(heap)
            heapq.heapify(due)
        yield from release(0)
        if why is not None and end is not None:
            self.truncated = Truncation(index, float((end - self._t0 + step) * tb), expected, why)

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


def damage_note(count: int, indices: list[int]) -> str:
    """'3 damaged frames (5, 6, 13) could not be decoded: each repeats the good frame before it'."""
    shown = ", ".join(map(str, indices[:10])) + (", ..." if count > 10 else "")
    return (f"{count} damaged frame{'s' if count != 1 else ''} ({shown}) could not be decoded: "
            f"{'each repeats' if count != 1 else 'it repeats'} the good frame before it")


def _timecode(seconds: float) -> str:
    ms = int(round(max(seconds, 0.0) * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _video_duration(stream) -> float | None:
    """The video stream's own length in seconds (not the container's, which
    a longer sound track sets), or None when the file does not say."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")  # Matroska, as FFmpeg writes it
    m = re.match(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$", tag.strip()) if isinstance(tag, str) else None
    if m:
        return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return None


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


def _ffmpeg_reason(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).split(":")[0].strip() or type(e).__name__


def open_video(path: str | os.PathLike, queue_size: int = 32) -> VideoReader:
    return VideoReader(path, queue_size=queue_size)
