"""A quick look before an overnight run: a few seconds of every shot.

``vidcolor film.mp4 --preview`` finds the film's shots and their stills
(:func:`vidcolor.pipeline.plan_shots`, the fast detection pass the render
farm plans with), colours ``preview.seconds`` from the start of each shot
(so the colorizer and temporal smoothing start as they would in the full
run) and joins the excerpts, one after the other, into one short file.
Each excerpt is rendered by the pipeline itself on the plan's frames
(``colorize_video(plan=..., frames=...)``, seeking to the keyframe before
the shot), so it is what the full run will write for those frames. The
preview holds the video only: excerpts of sound cut at shot starts would
click and drift.
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av

from .config import Config
from .errors import OutputError
from .farm.assemble import LOOKAHEAD, PacketJoiner
from .farm.plan import segment_suffix
from .io.encode import container_options
from .io.image import is_image_path
from .outputs import atomic_output, check_input, compare_output, part_output, preview_output, work_folder
from .pipeline import PlannedShot, colorize_video, plan_shots

__all__ = ["PreviewReport", "colorize_preview", "preview_output", "compare_output", "part_output", "pick_shots"]

log = logging.getLogger("vidcolor")


@dataclass
class PreviewReport:
    input: str
    output: str
    excerpts: list[dict] = field(default_factory=list)  # shot, first frame, timecode, frames, still, at (s)
    shots: int = 0  # shots in the film
    frames: int = 0
    seconds: float = 0.0
    plan_seconds: float = 0.0  # of which the detection pass
    device: str = ""

    @property
    def fps(self) -> float:
        render = self.seconds - self.plan_seconds
        return self.frames / render if render > 0 else 0.0

    def to_dict(self) -> dict:
        return {"input": self.input, "output": self.output, "excerpts": self.excerpts, "shots": self.shots,
                "frames": self.frames, "seconds": round(self.seconds, 3), "plan_seconds": round(self.plan_seconds, 3),
                "fps": round(self.fps, 3), "device": self.device}


def pick_shots(plan: Sequence[PlannedShot], most: int) -> list[PlannedShot]:
    """Every shot, or ``most`` of them spread evenly (first and last included)."""
    if most <= 0 or len(plan) <= most:
        return list(plan)
    if most == 1:
        return [plan[0]]
    keep = sorted({round(i * (len(plan) - 1) / (most - 1)) for i in range(most)})
    return [plan[i] for i in keep]


def colorize_preview(input: str | os.PathLike, output: str | os.PathLike | None = None, *,
                     reference: str | os.PathLike | None = None, reference_map: str | os.PathLike | None = None,
                     keyframes: str | os.PathLike | None = None,
                     config: Config | None = None, overwrite: bool = False, compare: bool = False,
                     progress: Callable[[int], None] | None = None,
                     plan_progress: Callable[[int], None] | None = None,
                     on_plan: Callable[[list[dict], int], None] | None = None) -> PreviewReport:
    """Colour ``preview.seconds`` of each shot of ``input`` and join them into ``output``
    (default ``INPUT_preview.EXT``; ``compare``: side by side, ``INPUT_preview_compare.EXT``).

    ``on_plan(excerpts, frames)`` is called once the shots are known, before
    any colouring.
    """
    cfg = config or Config()
    t0 = time.monotonic()
    input = Path(input)
    check_input(input)
    if output is None:
        output = compare_output(preview_output(input)) if compare else preview_output(input)
    dest = atomic_output(output, overwrite=overwrite, input=input)
    out, tmp = dest.target, dest.tmp
    if is_image_path(out):
        raise OutputError("is an image name; a preview is a video, give a video file name", out)
    plan, info = plan_shots(input, reference=reference, reference_map=reference_map, keyframes=keyframes,
                            config=cfg, progress=plan_progress)
    report = PreviewReport(str(input), str(out), shots=len(plan), plan_seconds=time.monotonic() - t0)
    rate = info.rate if info.rate and info.rate > 0 else Fraction(25)
    per = max(1, math.ceil(cfg.preview.seconds * rate - 1e-6))
    chosen = pick_shots(plan, cfg.preview.max_shots)
    report.excerpts = [{"excerpt": k, "shot": s.index, "first_frame": s.first_frame, "start_time": s.start_time,
                        "frames": min(s.frames, per), "reference": s.reference}
                       for k, s in enumerate(chosen)]
    if on_plan is not None:
        on_plan(report.excerpts, sum(e["frames"] for e in report.excerpts))
    work = work_folder(out)
    try:
        work.mkdir(exist_ok=True)
        pieces = []
        for e, shot in zip(report.excerpts, chosen):
            path = work / f"{e['excerpt']:05d}{segment_suffix(out)}"
            r = colorize_video(input, path, reference=reference, reference_map=reference_map, config=cfg,
                               overwrite=True, progress=progress, plan=plan, video_only=True, compare=compare,
                               frames=(shot.first_frame, shot.first_frame + e["frames"]))
            e["frames"] = r.frames
            report.device = r.device
            pieces.append(path)
        for e, at in zip(report.excerpts, _join(pieces, tmp, out, info.time_base, rate, info.rotation)):
            e["at"] = round(at, 6)
        report.frames = sum(e["frames"] for e in report.excerpts)
        dest.commit()
    except BaseException:
        dest.discard()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.monotonic() - t0
    return report


def _join(pieces: Sequence[Path], tmp: Path, out: Path, time_base: Fraction, rate: Fraction,
          rotation: int) -> list[float]:
    """Copy the pieces' video packets one after the other into ``tmp`` (no
    re-encoding), each retimed to begin where the one before ended (its last
    frame lasting one frame at ``rate``). Returns where each piece begins (s)."""
    starts: list[float] = []
    with av.open(os.fspath(pieces[0])) as first:
        template = first.streams.video[0]
        extradata = bytes(template.codec_context.extradata or b"")
        try:
            dst = av.open(os.fspath(tmp), "w", options=container_options(tmp, time_base))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise OutputError(f"cannot create the output ({e})", out) from None
        with dst:
            video = dst.add_stream_from_template(template)
            video.time_base = time_base
            if rotation:
                video.set_display_rotation(rotation)
            cursor = Fraction(0)  # seconds: where the next piece begins
            joiner = PacketJoiner()
            for path in pieces:
                with av.open(os.fspath(path)) as c:
                    st = c.streams.video[0]
                    if bytes(st.codec_context.extradata or b"") != extradata:
                        raise OutputError("preview excerpts were encoded with different codec parameters", path)
                    tb = st.time_base
                    demux = (p for p in c.demux(st) if p.size)
                    head = list(itertools.islice(demux, LOOKAHEAD))
                    if not head:
                        continue
                    shift = math.floor(cursor / tb + Fraction(1, 2)) - min(p.pts for p in head)
                    starts.append(float(cursor))
                    overlap = OutputError("cannot join the preview's excerpts (decode timestamps overlap); "
                                          "use an .mp4 or .mkv output", out)
                    end = None
                    for p in joiner.packets(head, demux, shift, tb, video, overlap):
                        end = p.pts if end is None else max(end, p.pts)
                        dst.mux(p)
                    cursor = end * tb + 1 / rate
    return starts
