"""What a video is, from its stream and first frame; reading planes of PyAV frames.

``describe`` turns an open stream and its first decoded frame into the
``VideoInfo`` the writer needs to reproduce the input but for colour. The
plane helpers read a frame's planes as numpy views and pick the luma plane
of any pixel format (formats whose first plane is not luma are converted
once to planar 4:4:4 YUV).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from ..color import BT601, BT709, YCbCrSpec
from ..timecode import parse_timecode

__all__ = ["VideoInfo", "describe", "plane_array", "pixel_bits", "normalise", "luma_plane", "video_duration",
           "ffmpeg_reason", "DIRECT_FORMATS", "MAX_RATE"]

# Pixel formats whose first plane is the luma plane, read as is.
DIRECT_FORMATS = re.compile(r"^(?:yuvj?(?:420|422|444|440|411|410)p|gray)(?:9|10|12|14|16)?(?:le)?$|^nv(?:12|21)$")
_UNSPECIFIED = (0, 2)  # AVCOL_RANGE_UNSPECIFIED / AVCOL_SPC_UNSPECIFIED
MAX_RATE = 10_000  # frames per second beyond this are a broken rate tag, not a rate


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


def plane_array(plane, dtype) -> np.ndarray:
    """A writable (height, width) numpy view of a PyAV frame plane of ``dtype``
    samples (uint8, or little-endian uint16 above 8 bits), line padding cut off."""
    itemsize = np.dtype(dtype).itemsize
    arr = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // itemsize)
    return arr[:, : plane.width]


def pixel_bits(fmt: av.VideoFormat) -> int:
    """Bits per sample of a pixel format's first component."""
    return fmt.components[0].bits


def normalise(frame: av.VideoFrame) -> av.VideoFrame:
    """Frames whose luma can't be read directly (RGB, palette, packed YUV,
    P010) are converted once to planar 4:4:4 YUV."""
    if DIRECT_FORMATS.match(frame.format.name):
        return frame
    return frame.reformat(format="yuv444p10le" if pixel_bits(frame.format) > 8 else "yuv444p")


def luma_plane(frame: av.VideoFrame) -> np.ndarray:
    """Copy of the luma plane of a normalised frame: (H, W) uint8 or uint16."""
    dtype = np.uint8 if pixel_bits(frame.format) <= 8 else np.dtype("<u2")
    return plane_array(frame.planes[0], dtype).copy()


def _chroma_shift(fmt: av.VideoFormat, width: int, height: int) -> tuple[int, int] | None:
    comps = fmt.components
    if len(comps) < 3:
        return None
    cw, ch = comps[1].width, comps[1].height
    shift = (int(round(np.log2(width / cw))) if cw else 0, int(round(np.log2(height / ch))) if ch else 0)
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
    return shift


def describe(path: str, container, stream, first: av.VideoFrame) -> VideoInfo:
    """The VideoInfo of ``stream`` in ``container``, from its first (normalised) frame."""
    fmt = first.format
    bits = pixel_bits(fmt)
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
        chroma_shift=_chroma_shift(fmt, first.width, first.height),
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


def video_duration(stream) -> float | None:
    """The video stream's own length in seconds (not the container's, which
    a longer sound track sets), or None when the file does not say."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")  # Matroska, as FFmpeg writes it
    return parse_timecode(tag, strict=False) if isinstance(tag, str) else None


def ffmpeg_reason(e: Exception) -> str:
    """The gist of an FFmpeg error: its message up to the first colon."""
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).split(":")[0].strip() or type(e).__name__
