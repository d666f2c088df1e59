"""Encode with PyAV: the input's frames, pts and metadata, with new chroma.

The writer owns the output container in its own thread (muxing is not
thread-safe), takes colour frames as luma + chroma planes and the input's
other streams as packets, and copies those packets unchanged. Frames keep
their ``pts`` in the input stream's time base, so variable frame rate
survives exactly.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from fractions import Fraction
from typing import Sequence

import av
import numpy as np

from ..config import EncodeConfig
from ..errors import ConfigError, OutputError
from .probe import VideoInfo, plane_array

__all__ = ["VideoWriter", "choose_pix_fmt", "encoder_options", "container_options"]

log = logging.getLogger("vidcolor")

# crf / preset defaults an archivist accepts: visually transparent, standard
# players. The luma passes through unchanged, so what the encoder loses of it
# is pure generation loss: x264 crf 16 keeps it at 43-49 dB PSNR against the
# input's luma on the development clips, in files 0.55-0.75x the input's;
# crf 12 at 47-54 dB in files about the input's size (1.9x crf 16's), the
# whole pipeline about 4% slower at 480p (benchmarks/bench_generation.py;
# --crf 12 or configs/fine.yaml for masters). FFV1 is lossless (level 3,
# per-slice CRCs, intra only).
_ARCHIVAL = {
    "libx264": {"crf": "16", "preset": "medium"},
    "libx265": {"crf": "18", "preset": "medium"},
    "libsvtav1": {"crf": "24", "preset": "6"},
    "libaom-av1": {"crf": "24", "cpu-used": "4"},
    "libvpx-vp9": {"crf": "20", "b": "0"},
    "ffv1": {"level": "3", "slicecrc": "1", "slices": "4", "g": "1"},
}
_HAS_CRF = {"libx264", "libx265", "libsvtav1", "libaom-av1", "libvpx-vp9"}
_HAS_PRESET = {"libx264", "libx265", "libsvtav1"}


def container_options(path: str | os.PathLike, time_base: Fraction) -> dict[str, str]:
    """Muxer options that keep every frame's pts exact. MP4/MOV: the edit list
    that places a video not starting at 0 (a film cut from a broadcast, a
    render-farm segment) is counted in the video track's own timescale (the
    muxer's choice: the time base's denominator, doubled up to >= 10000),
    not in the default 1/1000 s, which moved such frames by a few ticks."""
    if os.path.splitext(os.fspath(path))[1].lower() not in (".mp4", ".m4v", ".mov"):
        return {}
    scale = time_base.denominator
    while scale < 10000:
        scale *= 2
    return {"movie_timescale": str(scale)}


def encoder_options(enc: EncodeConfig) -> dict[str, str]:
    opts = dict(_ARCHIVAL.get(enc.codec, {}))
    if enc.crf is not None:
        if enc.codec not in _HAS_CRF:
            raise ConfigError(f"encoder {enc.codec} has no crf setting (codecs with crf: {', '.join(sorted(_HAS_CRF))})")
        opts["crf"] = str(enc.crf)
    if enc.preset is not None:
        if enc.codec not in _HAS_PRESET:
            raise ConfigError(f"encoder {enc.codec} has no preset setting")
        opts["preset"] = enc.preset
    opts.update(enc.options)
    return opts


def choose_pix_fmt(codec: av.Codec, info: VideoInfo, wanted: str | None) -> str:
    """The output pixel format: the input's subsampling and bit depth where
    the encoder supports them and the frame size divides by the subsampling
    (x264 refuses 4:2:0 at 720x405), else the nearest that fits."""
    supported = {f.name for f in (codec.video_formats or [])}
    if wanted:
        if supported and wanted not in supported:
            raise ConfigError(f"encoder {codec.name} cannot write pixel format {wanted} (it can: {', '.join(sorted(supported))})")
        return wanted
    depth = info.bits
    shift = info.chroma_shift or (1, 1)
    order = {(1, 1): ["420", "422", "444"], (1, 0): ["422", "444"], (0, 0): ["444"]}.get(tuple(shift), ["444"])
    depths = [d for d in (8, 10, 12, 16) if d >= depth] + [d for d in (16, 12, 10, 8) if d < depth]
    for d in depths:
        for sub in order:
            sx, sy = {"420": (1, 1), "422": (1, 0), "444": (0, 0)}[sub]
            if info.width % (1 << sx) or info.height % (1 << sy):
                continue
            name = f"yuv{sub}p" + ("" if d == 8 else f"{d}le")
            if not supported or name in supported:
                if d != depth:
                    log.warning("%s: encoder %s cannot keep %d-bit samples; writing %s", info.path, codec.name, depth, name)
                return name
    raise ConfigError(f"encoder {codec.name} supports no planar YUV format for a {info.width}x{info.height} frame")


class VideoWriter:
    """Writes ``path`` (a temporary file; the caller renames it) in a thread.

    ``write(luma, chroma, pts)`` takes numpy planes; ``copy(packet)`` an
    input packet of a pass-through stream. ``close()`` flushes and joins,
    re-raising any error the thread met; ``abort()`` stops without flushing.
    """

    def __init__(self, path: str | os.PathLike, info: VideoInfo, enc: EncodeConfig,
                 passthrough: Sequence[av.stream.Stream] = (), queue_size: int = 4,
                 target: str | os.PathLike | None = None):
        self.path = os.fspath(path)
        self.target = os.fspath(target) if target is not None else self.path  # the name errors give
        self.info = info
        try:
            codec = av.Codec(enc.codec, "w")
        except Exception:
            raise ConfigError(f"unknown video encoder '{enc.codec}' (try libx264, libx265, ffv1)") from None
        if codec.type != "video":
            raise ConfigError(f"'{enc.codec}' is not a video encoder")
        self.pix_fmt = choose_pix_fmt(codec, info, enc.pix_fmt)
        self.format = av.VideoFormat(self.pix_fmt, info.width, info.height)
        self.bits = self.format.components[0].bits
        self.chroma_size = (self.format.components[1].height, self.format.components[1].width)
        options = encoder_options(enc)
        try:
            self.container = av.open(self.path, "w", options=container_options(self.path, info.time_base))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise OutputError(f"cannot create the output ({e})", self.target) from None
        try:
            if info.metadata:
                self.container.metadata.update({k: v for k, v in info.metadata.items() if k not in ("encoder",)})
            try:
                self.stream = self._add_video(enc.codec, options)
            except ValueError as e:
                ext = os.path.splitext(self.path)[1] or "this"
                raise OutputError(f"a {ext} file cannot hold {enc.codec} video ({e}); choose another --codec, "
                                  "or a container that can (.mkv holds almost anything)", self.target) from None
            self._map = {}
            for s in passthrough:
                try:
                    self._map[s.index] = self.container.add_stream_from_template(s)
                except (av.error.FFmpegError, ValueError, TypeError) as e:
                    raise OutputError(
                        f"cannot copy {s.type} stream #{s.index} ({s.codec_context.name if s.codec_context else '?'}) "
                        f"into a {os.path.splitext(self.path)[1] or 'this'} file ({e}); choose another container, e.g. .mkv",
                        self.target,
                    ) from None
        except BaseException:
            self.container.close()
            raise
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.busy_seconds = 0.0  # the worker thread's time not spent waiting on the queue
        self._error: BaseException | None = None
        self.frames_written = 0
        self._thread = threading.Thread(target=self._run, name="vidcolor-encode", daemon=True)
        self._thread.start()

    def _add_video(self, codec: str, options: dict[str, str]):
        info = self.info
        rate = info.rate if info.rate and info.rate > 0 else Fraction(25)
        s = self.container.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = info.width, info.height, self.pix_fmt
        s.time_base = info.time_base
        cc = s.codec_context
        cc.time_base = info.time_base
        if "g" in options:
            cc.gop_size = int(options.pop("g"))
        cc.color_range = info.color_range
        cc.colorspace = info.ycbcr.colorspace
        if info.color_primaries not in (0, 2):
            cc.color_primaries = info.color_primaries
        if info.color_trc not in (0, 2):
            cc.color_trc = info.color_trc
        if info.sample_aspect_ratio:
            cc.sample_aspect_ratio = info.sample_aspect_ratio
        if info.rotation:
            s.set_display_rotation(info.rotation)
        s.options = options
        return s

    # -- producer side -----------------------------------------------------------------
    def _put(self, item) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise self._error or OutputError("the encoder stopped", self.target)

    def write(self, luma: np.ndarray, chroma: np.ndarray, pts: Sequence[int]) -> None:
        """luma (N, H, W), chroma (N, 2, h, w) integer codes; one pts per frame."""
        self._put(("frames", luma, chroma, list(pts)))

    def copy(self, packet: av.Packet) -> None:
        self._put(("packet", packet))

    def close(self) -> None:
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._error = self._error or OutputError("aborted", self.target)
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
        self._thread.join()
        try:
            self.container.close()
        except Exception:
            pass

    # -- the encoder thread -----------------------------------------------------------
    def _frame(self, y: np.ndarray, cb: np.ndarray, cr: np.ndarray, pts: int) -> av.VideoFrame:
        f = av.VideoFrame(self.info.width, self.info.height, self.pix_fmt)
        dtype = np.uint8 if self.bits == 8 else np.dtype("<u2")
        for plane, data in zip(f.planes, (y, cb, cr)):
            plane_array(plane, dtype)[...] = data
        f.pts = pts
        f.time_base = self.info.time_base
        f.color_range = self.info.color_range
        f.colorspace = self.info.ycbcr.colorspace
        return f

    def _run(self) -> None:
        t0, waited = time.perf_counter(), 0.0
        try:
            while True:
                tw = time.perf_counter()
                item = self._queue.get()
                waited += time.perf_counter() - tw
                self.busy_seconds = time.perf_counter() - t0 - waited
                if item is None or self._error is not None:
                    break
                if item[0] == "packet":
                    packet = item[1]
                    packet.stream = self._map[packet.stream.index]
                    self.container.mux(packet)
                    continue
                _, luma, chroma, pts = item
                for i, p in enumerate(pts):
                    frame = self._frame(luma[i], chroma[i, 0], chroma[i, 1], p)
                    self.container.mux(self.stream.encode(frame))
                    self.frames_written += 1
            if self._error is None:
                self.container.mux(self.stream.encode(None))
                self.container.close()
            self.busy_seconds = time.perf_counter() - t0 - waited
        except BaseException as e:
            self._error = _as_output_error(e, self.target)
            try:
                self.container.close()
            except Exception:
                pass


def _as_output_error(e: BaseException, path: str) -> BaseException:
    if isinstance(e, OSError) and getattr(e, "errno", None) == 28:
        return OutputError("no space left on the device", path)
    if isinstance(e, av.error.FFmpegError):
        return OutputError(f"the encoder or muxer failed ({e})", path)
    return e
