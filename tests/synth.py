"""Synthetic clips with known content, made by the tests and benchmarks.

Frames are black and white (neutral chroma) unless ``gray=False``: a moving
gradient and a bright square whose brightness and position change with the
shot, so cuts, timing and luminance are all known.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

__all__ = ["make_clip", "frame_rgb", "make_still", "decode_luma", "decode_pts", "packet_bytes"]


def frame_rgb(i: int, w: int, h: int, shot: int = 0) -> np.ndarray:
    """A colour frame: a gradient scrolling with i, a square per shot."""
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    base = 40 + 150 * (0.5 + 0.5 * np.sin((x + 3 * i) / max(w, 8) * 6.28 + shot * 1.7)) * (0.6 + 0.4 * y / max(h, 1))
    rgb = np.stack([base, base * (0.7 + 0.1 * shot), 255 - base], axis=-1)
    s = max(2, min(w, h) // 4)
    cx = int((i * 2 + shot * w // 3) % max(1, w - s))
    cy = int((h - s) // 2)
    rgb[cy:cy + s, cx:cx + s] = (230, 60 + 40 * (shot % 4), 40)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def make_still(path: Path, w: int = 96, h: int = 64, shot: int = 0, gray: bool = False) -> Path:
    import cv2

    rgb = frame_rgb(5, w, h, shot)
    if gray:
        g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        rgb = np.dstack([g, g, g])
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return Path(path)


def make_clip(path: Path, n: int = 24, w: int = 64, h: int = 48, *, fps: int = 24, codec: str = "libx264",
              pix_fmt: str = "yuv420p", audio: bool = False, subtitles: bool = False, gray: bool = True,
              pts: Sequence[int] | None = None, time_base: Fraction | None = None, rotation: int | None = None,
              sar: Fraction | None = None, color: dict | None = None, shots: Sequence[int] = (0,),
              options: dict | None = None, container_options: dict | None = None) -> Path:
    """Write a clip. ``pts`` (in ``time_base``) gives variable frame rate;
    ``shots`` are the frame indices where shots start; ``color`` sets
    color_range/colorspace/color_primaries/color_trc on the stream."""
    path = Path(path)
    tb = time_base or Fraction(1, fps)
    pts = list(pts) if pts is not None else [int(round(i / fps / tb)) for i in range(n)]
    with av.open(str(path), "w", options=container_options or {}) as c:
        v = c.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        v.time_base = tb
        v.codec_context.time_base = tb
        if options:
            v.options = dict(options)
        for k, val in (color or {}).items():
            setattr(v.codec_context, k, val)
        if sar:
            v.codec_context.sample_aspect_ratio = sar
        if rotation is not None:
            v.set_display_rotation(rotation)
        a = None
        if audio:
            a = c.add_stream("aac", rate=48000)
            a.layout = "stereo"
        s = srt = None
        if subtitles:  # muxed from a real .srt file, as a remux would
            srt_path = path.with_suffix(".srt")
            srt_path.write_text("1\n00:00:00,000 --> 00:00:00,400\nhello\n\n2\n00:00:00,500 --> 00:00:00,900\nworld\n\n")
            srt = av.open(str(srt_path))
            s = c.add_stream_from_template(srt.streams.subtitles[0])
        for i in range(n):
            shot = sum(1 for st in shots if st <= i) - 1
            rgb = frame_rgb(i, w, h, shot)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f = f.reformat(format=pix_fmt) if not gray else _gray_frame(rgb, pix_fmt, color)
            f.pts = pts[i]
            f.time_base = tb
            c.mux(v.encode(f))
        c.mux(v.encode())
        if a is not None:
            dur = float((pts[-1] + (pts[-1] - pts[-2] if n > 1 else 1)) * tb)
            t = np.arange(int(48000 * dur)) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
            for j in range(0, len(tone), 1024):
                chunk = np.ascontiguousarray(np.stack([tone[j:j + 1024]] * 2))
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, j
                c.mux(a.encode(af))
            c.mux(a.encode())
        if s is not None:
            for pkt in srt.demux(srt.streams.subtitles[0]):
                if pkt.dts is not None:
                    pkt.stream = s
                    c.mux(pkt)
            srt.close()
    return path


def _gray_frame(rgb: np.ndarray, pix_fmt: str, color: dict | None) -> av.VideoFrame:
    """Neutral-chroma frame of ``pix_fmt`` whose luma is the frame's luma."""
    f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
    if pix_fmt.startswith("gray"):
        return f
    bits = f.format.components[0].bits
    mid = 128 << (bits - 8)
    dtype = np.uint8 if bits == 8 else np.dtype("<u2")
    for plane in f.planes[1:3]:
        arr = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // np.dtype(dtype).itemsize)
        arr[:, : plane.width] = mid
    return f


def decode_luma(path) -> list[np.ndarray]:
    """The luma plane of every frame, as stored (no range conversion)."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            bits = f.format.components[0].bits
            dtype = np.uint8 if bits == 8 else np.dtype("<u2")
            p = f.planes[0]
            out.append(np.frombuffer(p, dtype=dtype).reshape(p.height, p.line_size // np.dtype(dtype).itemsize)[:, : p.width].copy())
    return out


def decode_pts(path) -> list[int]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [f.pts for f in c.decode(s)]


def packet_bytes(path, kind: str = "audio") -> list[bytes]:
    with av.open(str(path)) as c:
        streams = getattr(c.streams, kind)
        if not streams:
            return []
        return [bytes(p) for p in c.demux(streams[0]) if p.size]
