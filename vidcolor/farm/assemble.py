"""Joining a job's segments into the output, without re-encoding.

The segments' video packets are copied in order (every segment opens with
a keyframe, an IDR for x264, and all were encoded with one configuration,
so their parameter sets agree); the input's audio, subtitle and data
streams are copied from the input once, packet for packet, interleaved by
time. The output is written under a temporary name and renamed when
complete. Each segment's pts are in the input's time base, as the plan
stores them, so the joined film has the input's frames and timestamps.
"""
from __future__ import annotations

import itertools
import logging
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av

from ..errors import OutputError
from ..io.encode import container_options
from ..outputs import atomic_output
from .plan import Manifest

__all__ = ["assemble", "PacketJoiner", "LOOKAHEAD"]

log = logging.getLogger("vidcolor")

LOOKAHEAD = 32  # packets: more than any decoder's reorder delay (H.264: 16)


class PacketJoiner:
    """Video packets of several files, one file after another, into one stream:
    shifted in time, dts filled where the container stores none on the first
    packets (Matroska) and kept increasing across the joins."""

    def __init__(self):
        self.last_dts: Fraction | None = None  # seconds

    def packets(self, head: list, rest, shift: int, tb: Fraction, stream, overlap: Exception) -> Iterator[av.Packet]:
        """``head`` (the first packets, a list) then ``rest``, ``shift`` ticks of ``tb`` later, on
        ``stream``; ``overlap`` is raised when a packet cannot decode before it is shown."""
        known = next((i for i, p in enumerate(head) if p.dts is not None), None)
        for i in range(known - 1, -1, -1) if known else ():  # leading packets with no dts: just before the first
            head[i].dts = head[i + 1].dts - 1
        for p in itertools.chain(head, rest):
            p.pts += shift
            dts = p.dts + shift if p.dts is not None else p.pts
            if self.last_dts is not None and dts * tb <= self.last_dts:
                dts = math.floor(self.last_dts / tb) + 1
            if dts > p.pts:
                raise overlap
            p.dts = dts
            self.last_dts = dts * tb
            p.stream = stream
            yield p


def _near(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def _video_packets(manifest: Manifest, target) -> Iterator[av.Packet]:
    """Every segment's video packets in order, with dts filled where the
    container stores none (Matroska) and kept increasing across joins."""
    extradata = None
    joiner = PacketJoiner()
    for seg in manifest.segments:
        path = manifest.segment_path(seg.index)
        with av.open(os.fspath(path)) as c:
            st = c.streams.video[0]
            tb = st.time_base
            ed = bytes(st.codec_context.extradata or b"")
            if extradata is None:
                extradata = ed
            elif ed != extradata:
                raise OutputError(f"segment {seg.index} was encoded with other codec parameters than segment 0 "
                                  "(another encoder build or config?); re-render it", path)
            demux = (p for p in c.demux(st) if p.size)
            head = list(itertools.islice(demux, LOOKAHEAD))  # enough to see the first frame and the first dts
            if not head:
                raise OutputError(f"segment {seg.index} is empty; re-render it", path)
            # a muxer that moved the segment in time (a rounded edit list) is undone here
            want = _near(seg.first_pts * Fraction(manifest.video["time_base"]) / tb)
            shift = want - min(p.pts for p in head)
            if shift:
                log.warning("%s: segment %d starts %d ticks off its planned pts; corrected", path, seg.index, shift)
            overlap = OutputError(f"segment {seg.index}: cannot join it after segment {seg.index - 1} (decode "
                                  "timestamps overlap); use a container that keeps them (.mp4, .mkv)", path)
            count = 0
            for p in joiner.packets(head, demux, shift, tb, target, overlap):
                count += 1
                yield p
            if count != seg.frames:
                raise OutputError(f"segment {seg.index} has {count} frames, the plan {seg.frames}; re-render it", path)


def _other_packets(container, streams) -> Iterator[av.Packet]:
    if not streams:
        return
    for p in container.demux(streams):
        if p.dts is not None and p.size:
            yield p


def _time(p: av.Packet) -> float:
    t = p.dts if p.dts is not None else p.pts
    return float(t * p.time_base) if t is not None else 0.0


def assemble(manifest: Manifest, output: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
    """Join the segments of ``manifest`` with the input's other streams into ``output``
    (default: the job's output). Returns the output path."""
    dest = atomic_output(output or manifest.output_path, overwrite=overwrite, input=manifest.input)
    out, tmp = dest.target, dest.tmp
    tb = Fraction(manifest.video["time_base"])
    first = manifest.segment_path(0)
    try:
        with av.open(manifest.input, metadata_errors="ignore") as src, av.open(os.fspath(first)) as seg0:
            vin = src.streams.video[0]
            others = [s for s in src.streams if s is not vin]
            rotation = int(manifest.video.get("rotation") or 0)
            try:
                dst = av.open(os.fspath(tmp), "w", options=container_options(tmp, tb))
            except (av.error.FFmpegError, OSError, ValueError) as e:
                raise OutputError(f"cannot create the output ({e})", out) from None
            with dst:
                dst.metadata.update({k: v for k, v in src.metadata.items() if k != "encoder"})
                video = dst.add_stream_from_template(seg0.streams.video[0])
                video.time_base = tb
                if rotation:
                    video.set_display_rotation(rotation)
                mapped = {}
                for s in others:
                    try:
                        mapped[s.index] = dst.add_stream_from_template(s)
                    except (av.error.FFmpegError, ValueError, TypeError) as e:
                        raise OutputError(f"cannot copy {s.type} stream #{s.index} into a {out.suffix or 'this'} "
                                          f"file ({e}); choose another container, e.g. .mkv", out) from None
                vp = _video_packets(manifest, video)
                op = _other_packets(src, others)
                a, b = next(vp, None), next(op, None)
                frames = 0
                while a is not None or b is not None:
                    if b is None or (a is not None and _time(a) <= _time(b)):
                        dst.mux(a)
                        frames += 1
                        a = next(vp, None)
                    else:
                        b.stream = mapped[b.stream.index]
                        dst.mux(b)
                        b = next(op, None)
        if frames != manifest.frames:
            raise OutputError(f"joined {frames} frames where the plan has {manifest.frames}", out)
        dest.commit()
    except BaseException:
        dest.discard()
        raise
    return out
