"""The one module that wires the stages together:

    decode ──► shots ──► choose (per shot) ──► colorize (batched) ──► temporal ──► encode
    (thread)   (cuts)    (references)          (device)              (flow)        (thread, other streams copied)

Luminance is never altered (but by ``--deflicker``): each output frame's luma plane is the input's,
and the colorizer's a/b reach the file as Cb/Cr at the output's chroma
resolution. Which still colours a shot, and with which colorizer, is decided
once per shot by :mod:`vidcolor.references.choose`; :class:`Painters` holds
the colorizer for each kind of choice; :class:`VideoRun` streams one film.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .color import YCbCrSpec, luma_lut
from .colorist import FrameColorist, luma_for_output
from .config import Config
from .errors import ConfigError, OutputError
from .io.decode import LumaFrame, VideoInfo, VideoReader
from .io.encode import VideoWriter
from .io.image import is_image_path
from .io.span import SideBySideWriter, SideStreams, locate_span
from .models import Colorizer
from .models.painters import Painters
from .outputs import atomic_output, check_input, default_output
from .references import ReferenceSchedule, ReferenceStore, ShotChoice
from .references.choose import MAX_SHOT_WARNINGS, Chooser
from .references.keyframes import KeyframeSheet
from .references.plan import PlanChooser, PlannedShot
from .runtime import RunReport, Timers, auto_batch_size, resolve_device, set_torch_threads
from .shots import detector_from_config
from .shots.split import Shot, ShotSplitter
from .temporal import DefectFinder, GrainFilter, TemporalSmoother
from .temporal.deflicker import Deflicker, exposed_codes

__all__ = ["RunReport", "VideoRun", "Painters", "colorize_video", "colorize", "detect_shots",
           "default_output", "resolve_device", "PlannedShot", "plan_shots", "MAX_SHOT_WARNINGS", "schedule_for",
           "preload_stills", "record_choice", "low_stretches"]

log = logging.getLogger("vidcolor")

Progress = Callable[[int], None]


def schedule_for(reference, reference_map) -> ReferenceSchedule:
    if reference is not None and reference_map is not None:
        raise ConfigError("give either a reference (still or folder) or a reference map, not both")
    if reference_map is not None:
        return ReferenceSchedule.from_csv(reference_map)
    if reference is not None:
        return ReferenceSchedule.single(reference)
    return ReferenceSchedule.automatic()


def _one_shot(cfg: Config, schedule: ReferenceSchedule) -> bool:
    """Whether a film is one shot with one named still (shot detection off): its still is always used."""
    return cfg.shots.detector == "off" and len(schedule.rows) == 1 and not schedule.folder_images


def preload_stills(schedule: ReferenceSchedule, store: ReferenceStore, plan: Sequence[PlannedShot] | None) -> None:
    """Load every still before any work starts (a fixed plan: only its own): a bad still fails now."""
    paths = schedule.references if plan is None else sorted({Path(s.reference) for s in plan if s.reference})
    for path in paths:
        store.get(path)


def record_choice(entry: dict, choice: ShotChoice, painter: Colorizer | None = None, planned: bool = False) -> None:
    """What the report (``planned``: the plan) says about a shot's choice and the colorizer it got."""
    entry.update(choice.report)
    entry["reference"] = os.fspath(choice.still) if choice.still is not None else None
    entry["choice"] = choice.kind if painter is not None or planned else "neutral"
    if choice.still is not None and choice.gate < 1.0:
        entry["gate"] = round(choice.gate, 4)
    if painter is not None:
        entry["colorizer"] = painter.name


def plan_shots(input: str | os.PathLike, *, reference: str | os.PathLike | None = None,
               reference_map: str | os.PathLike | None = None, keyframes: str | os.PathLike | None = None,
               config: Config | None = None, progress: Progress | None = None,
               on_open: Callable[["VideoReader"], None] | None = None,
               span: tuple[float, float | None] | None = None) -> tuple[list[PlannedShot], VideoInfo]:
    """The shots :func:`colorize_video` would find in ``input`` and the choice it
    would make for each, without colouring anything: a fixed plan for
    ``colorize_video(plan=...)`` (the render farm cuts a film by it).
    ``keyframes``: a ``frame,reference`` sheet; each shot with keyframes
    takes them (:meth:`~vidcolor.references.keyframes.KeyframeSheet.assign`).
    ``span``: plan that part of the film only (``colorize_video``'s)."""
    cfg = config or Config()
    input = Path(input)
    check_input(input)
    schedule = schedule_for(reference, reference_map)
    device = resolve_device(cfg.runtime.device)
    Painters(cfg, schedule, device)  # refuse what a run would refuse, before the long decode
    store = ReferenceStore(device, scratches=cfg.temporal.defects)
    preload_stills(schedule, store, None)
    sheet = KeyframeSheet.from_csv(keyframes) if keyframes is not None else None
    if sheet is not None:
        sheet.check_stills(store)
    part = locate_span(input, *span) if span is not None else None
    detector = detector_from_config(cfg.shots, device)
    started: list[tuple[Shot, int, dict, ShotChoice]] = []
    with VideoReader(input, queue_size=cfg.runtime.queue_size, max_damaged=cfg.runtime.max_damaged_frames,
                     start=(part.first_frame, part.first_pts) if part is not None else None) as reader:
        info = reader.info
        schedule.bind(info.rate)
        if on_open is not None:
            on_open(reader)
        chooser = Chooser(cfg, schedule, store, luma_lut(info.ycbcr, device), ycbcr=info.ycbcr,
                          single=_one_shot(cfg, schedule),
                          origin=part.origin if part is not None else None)
        splitter = chooser.splitter(detector, info.ycbcr)
        locator = sheet.locator(info.rate) if sheet is not None else None
        origin = part.origin if part is not None else None

        def take(released) -> None:
            for frame, shot in released:
                if shot is not None:
                    entry = shot.to_dict()
                    choice = chooser.choose(shot)
                    record_choice(entry, choice, planned=True)
                    shot.ahead = []
                    started.append((shot, frame.pts, entry, choice))
                if progress is not None:
                    progress(1)

        for item in reader.items():
            if isinstance(item, LumaFrame):
                if part is not None and not part.contains(item.time):
                    break
                if locator is not None:
                    origin = item.time if origin is None else origin
                    locator.feed(item.index, item.time - origin)
                take(splitter.feed(item))
        take(splitter.finish())
        chooser.summary(len(started))
        for note in reader.notes():
            log.warning("%s", note)
    plan = [PlannedShot(s.index, s.first_frame, pts, s.start_time, s.frames,
                        os.fspath(c.still) if c.still is not None else None, {**entry, "frames": s.frames})
            for s, pts, entry, c in started]
    if sheet is not None:
        plan = sheet.assign(plan, locator.finish(partial=part is not None))
    return plan, info


class VideoRun:
    """One film coloured: :func:`colorize_video`'s arguments, :meth:`run` does the work.

    Frames stream from the decoder through the shot splitter; at every shot
    start the chooser decides the shot's still and the painters give the
    colorizer for it (:meth:`begin_shot`); frames go to the colorizer in
    batches (:meth:`flush`), through the temporal smoother and on to the
    encoder (:meth:`write`); at the shot's end the colorizer's
    :class:`~vidcolor.models.ShotStats` go into the report (:meth:`end_shot`).
    """

    def __init__(self, input: str | os.PathLike, output: str | os.PathLike | None = None, *,
                 reference: str | os.PathLike | None = None, reference_map: str | os.PathLike | None = None,
                 keyframes: str | os.PathLike | None = None,
                 config: Config | None = None, overwrite: bool = False, progress: Progress | None = None,
                 on_open: Callable[["VideoReader"], None] | None = None,
                 plan: Sequence[PlannedShot] | None = None, frames: tuple[int, int] | None = None,
                 video_only: bool = False, span: tuple[float, float | None] | None = None,
                 compare: bool = False):
        self.cfg = cfg = config or Config()
        self.t0 = time.monotonic()
        self.timers = Timers()
        self.input = Path(input)
        check_input(self.input)
        self.schedule = schedule_for(reference, reference_map)
        self.device = resolve_device(cfg.runtime.device)
        set_torch_threads(cfg.runtime.threads)
        self.painters = Painters(cfg, self.schedule, self.device)
        self.progress, self.on_open, self.plan, self.frames = progress, on_open, plan, frames
        self.video_only, self.compare = video_only, compare
        self.store = ReferenceStore(self.device, scratches=cfg.temporal.defects)
        self.part = self.start = None
        if span is not None:
            if plan is not None or frames is not None:
                raise ConfigError("a span (--start/--duration) is rendered without a plan or a frame range")
            self.part = locate_span(self.input, *span)
            self.start = (self.part.first_frame, self.part.first_pts)
        if keyframes is not None:
            if plan is not None:
                raise ConfigError("keyframes are given to the planning pass (plan_shots), not with a plan")
            # a shot takes the keyframes inside it: its extent must be known before it is coloured, so a
            # first, fast pass finds the shots (and the keyframes' frames), as the render farm does
            with self.timers("planning (keyframes)"):
                self.plan = plan = plan_shots(self.input, reference=reference, reference_map=reference_map,
                                              keyframes=keyframes, config=cfg, span=span)[0]
        if frames is not None:
            first = {s.first_frame: s for s in plan or ()}.get(frames[0])
            if first is None:
                raise ConfigError(f"frames {frames[0]}..{frames[1] - 1}: a range must begin a shot of a plan")
            self.start = (first.first_frame, first.first_pts)
        with self.timers("references"):
            preload_stills(self.schedule, self.store, plan)
        self.detector = detector_from_config(cfg.shots, self.device) if plan is None else None
        self.dest = atomic_output(output if output is not None else default_output(self.input), overwrite=overwrite,
                                  input=self.input)
        self.out, self.tmp = self.dest.target, self.dest.tmp
        if is_image_path(self.out):
            raise OutputError("is an image name, but the input is a video; give a video file name", self.out)
        self.report = RunReport(str(self.input), str(self.out), colorizer=cfg.colorizer, device=str(self.device),
                                span=self.part.to_dict() if self.part is not None else None)
        self.shift = self.part.first_pts if self.part is not None else 0  # a part starts at 0
        self.batch: list[LumaFrame] = []
        self.entries: list[tuple[Shot, dict]] = []  # lengths are known at the end
        self.current: tuple[dict, Colorizer | None] | None = None  # the shot being coloured: its entry, colorizer
        self.reference_flow = 0.0
        self.writer = self.smoother = self.side = self.deflicker = self.defects = self.grain = None

    # -- the run ---------------------------------------------------------------------
    def run(self) -> RunReport:
        cfg = self.cfg
        with VideoReader(self.input, queue_size=cfg.runtime.queue_size, start=self.start,
                         max_damaged=cfg.runtime.max_damaged_frames) as reader:
            try:
                self._open(reader)
                self._stream(reader)
                self._close(reader)
            except BaseException:
                if self.smoother is not None:
                    self.smoother.close()
                if self.writer is not None:
                    self.writer.abort()
                self.dest.discard()
                raise
            finally:
                if self.side is not None:
                    self.side.close()
        self.dest.commit()
        self.report.seconds = time.monotonic() - self.t0
        self.report.stages = {k: round(v, 3) for k, v in self.timers.seconds.items()}
        return self.report

    def _open(self, reader: VideoReader) -> None:
        cfg = self.cfg
        self.info = info = reader.info
        self.schedule.bind(info.rate)
        if self.on_open is not None:
            self.on_open(reader)
        self.writer = (SideBySideWriter if self.compare else VideoWriter)(
            self.tmp, info, cfg.encode, () if self.video_only else reader.passthrough, target=self.out)
        if self.part is not None and not self.video_only:
            self.side = SideStreams(self.input, self.part, [s.index for s in reader.passthrough])
        out_spec = YCbCrSpec(info.ycbcr.colorspace, info.ycbcr.full_range, self.writer.bits)
        self.painters.set_ycbcr(out_spec)
        self.colorist = FrameColorist(self.painters.primary, self.device, info.ycbcr, out_spec,
                                      self.writer.chroma_size, (info.height, info.width))
        self.batch_size = auto_batch_size(cfg, self.device, (info.height, info.width))
        if self.plan is None:
            with self.timers("references"):
                self.chooser = Chooser(cfg, self.schedule, self.store, self.colorist.lut, ycbcr=info.ycbcr,
                                       origin=self.part.origin if self.part else None,
                                       single=_one_shot(cfg, self.schedule))
        else:
            self.chooser = PlanChooser(self.plan, cfg.exemplar.gate_low, cfg.exemplar.gate_high)
        self.splitter = self.chooser.splitter(self.detector, info.ycbcr)
        self.smoother = TemporalSmoother.from_config(cfg.temporal, info.bits, self.device)
        self.deflicker = Deflicker(bits=info.bits) if cfg.temporal.deflicker else None
        self.defects = DefectFinder(bits=info.bits) if cfg.temporal.defects else None
        self.grain = GrainFilter(bits=info.bits) if cfg.temporal.degrain else None

    def _stream(self, reader: VideoReader) -> None:
        items = reader.items()
        while True:
            with self.timers("decode (waiting)"):
                item = next(items, None)
            if item is None:
                break
            if not isinstance(item, LumaFrame):
                if not self.video_only:
                    self.writer.copy(item)
                continue
            if self.frames is not None and item.index >= self.frames[1]:
                break
            if self.part is not None:
                if not self.part.contains(item.time):
                    break
                for packet in self.side.until(item.time) if self.side is not None else ():
                    self.writer.copy(packet)
            if item.damaged:
                self.report.damaged_frames += 1
                if len(self.report.damaged) < 1000:
                    self.report.damaged.append(item.index)
            with self.timers("shots"):
                released = self.splitter.feed(item)
            self._take(released)
        with self.timers("shots"):
            released = self.splitter.finish()
        self._take(released)
        self.end_shot()

    def _close(self, reader: VideoReader) -> None:
        report, seconds = self.report, self.timers.seconds
        for packet in self.side.until(None) if self.side is not None else ():
            self.writer.copy(packet)
        self.smoother.close()
        with self.timers("encode (waiting)"):
            self.writer.close()
        # the worker threads' busy time beside the main thread's stages: the slowest sets the pace
        seconds["decode (thread)"] = reader.busy_seconds
        seconds["encode (thread)"] = self.writer.busy_seconds
        if self.smoother.enabled:
            seconds["frame flow (thread)"] = self.smoother.flow_seconds
        if self.reference_flow:
            seconds["reference flow (thread)"] = self.reference_flow
        report.transitions = [dataclasses.asdict(t) for t in self.splitter.transitions]
        if reader.truncated is not None and self.frames is None:
            report.truncated = dataclasses.asdict(reader.truncated)
        for shot, entry in self.entries:
            entry["frames"] = shot.frames
        self.chooser.summary(len(self.entries))

    def _take(self, released) -> None:
        for frame, shot in released:
            if shot is not None:
                self.begin_shot(shot)
            self.batch.append(frame)
            self.flush(final=False)

    # -- per shot --------------------------------------------------------------------
    def begin_shot(self, shot: Shot) -> None:
        self.end_shot()  # no colour is carried across a cut
        for stage in (self.deflicker, self.defects, self.grain):
            if stage is not None:
                stage.reset()
        entry = shot.to_dict()
        with self.timers("references"):
            choice = self.chooser.choose(shot)
            painter = self.painters.for_choice(choice)
            record_choice(entry, choice, painter)
            self.colorist.neutral = painter is None
            self.smoother.begin_shot(None if painter is None else painter.temporal)
            if painter is not None:
                self.colorist.colorizer = painter
                if choice.kind == "keyframes":
                    painter.begin_keys([(t, functools.partial(self.store.get, p)) for t, p in choice.keys], choice)
                else:
                    painter.begin_shot(self.store.get(choice.still) if choice.still is not None else None, choice)
        shot.ahead = []
        self.report.shots.append(entry)
        self.entries.append((shot, entry))
        self.current = (entry, painter)

    def end_shot(self) -> None:
        self.flush()
        with self.timers("temporal"):
            ready = self.smoother.end_shot()
        self._write_ready(ready)
        if self.current is None:
            return
        entry, painter = self.current
        self.current = None
        if painter is not None:
            stats = painter.end_shot()
            self.reference_flow += stats.reference_flow_seconds
            if stats.prealigned is not None and entry.get("reference"):
                entry["prealigned"] = stats.prealigned
            entry.update(stats.extra)
            if "confidence" in stats.extra:
                entry["low_confidence"] = low_stretches(stats.extra["confidence"], entry["first_frame"],
                                                        self.cfg.keyframes.low_confidence)

    # -- per batch -------------------------------------------------------------------
    def flush(self, final: bool = True) -> None:
        """Colour the frames held, a batch at a time; all of them (``final``: the shot ends), or as many
        batches as leave the frames after them that the defect finder looks ahead at held back."""
        while self.batch:
            n = min(len(self.batch), self.batch_size)
            if not final and len(self.batch) < n + (0 if self.defects is None else self.defects.ahead(n)):
                return
            batch, self.batch = self.batch[:n], self.batch[n:]
            self._colour(batch, self.batch)

    def _colour(self, batch: list[LumaFrame], after: list[LumaFrame]) -> None:
        """One batch of the shot's frames coloured (``after``: the shot's frames after it, held back)."""
        timers, colorist = self.timers, self.colorist
        luma = np.stack([f.luma for f in batch])  # the batch's luma, stacked once: colorizer, codes, encoder
        with timers("defects"):  # what the colour side sees: dust and scratches filled (the output keeps the luma)
            seen = luma if self.defects is None else self.defects.fill(luma, (f.luma for f in after))
        if self.grain is not None:
            with timers("grain"):  # ... and a grainy print's grain smoothed out of it
                seen = self.grain(seen)
            colorist.grainy = self.grain.on  # (its features matched on smoothed copies: ExemplarConfig.grain_blur)
        if not self.smoother.enabled or colorist.neutral:
            with timers("colorize"):
                codes = colorist(seen)
            self.write(batch, luma, codes)
        else:
            for i, f in enumerate(batch):  # one copy of the luma held while the smoother holds the frames
                f.luma = luma[i]
            with timers("temporal"):
                motion = self.smoother.motion(seen, colorist.chroma_size)  # runs while the model does
            with timers("colorize"):  # the chroma stays on the model's device (the smoother's backend takes it there)
                chroma = colorist.predict(seen, motion)
                confidence = colorist.confidence()
            fits = colorist.exposure or [None] * len(batch)  # given after the smoother (Colorizer.exposure)
            with timers("temporal"):
                ready = self.smoother.push([(f, luma, i, seen, fits[i]) for i, f in enumerate(batch)], chroma,
                                           motion, confidence, colorist.pinned())
            self._write_ready(ready)

    def _write_ready(self, ready: list) -> None:
        """Frames the smoother has finished with, and their chroma, to codes and on to the encoder: each
        run of them from one batch with that batch's stacked luma (a slice of it), coded on the luma the colour saw."""
        start = 0
        while start < len(ready):
            _, luma, a, seen, _ = ready[start][0]
            end = start + 1
            while end < len(ready) and ready[end][0][1] is luma and ready[end][0][2] == a + end - start:
                end += 1
            run, start = ready[start:end], end
            frames, luma, seen = [f for (f, *_), _ in run], luma[a:a + len(run)], seen[a:a + len(run)]
            with self.timers("colorize"):
                codes = self.colorist.codes(seen, [c for _, c in run], [item[4] for item, _ in run])
            self.write(frames, luma, codes)

    def write(self, frames: list[LumaFrame], luma: np.ndarray, codes: np.ndarray) -> None:
        if self.deflicker is not None:  # --deflicker: the one change to the film's luma, after the colour
            luma = self.deflicker(luma)  # and to the colour where it follows the exposure (the exemplar's)
            if self.current is not None and self.current[1] is not None and self.current[1].follows_exposure:
                codes = exposed_codes(codes, self.deflicker.gains, self.colorist.out_spec.chroma_scale()[0],
                                      self.colorist.out_spec.max_code)
        with self.timers("encode (waiting)"):
            self.writer.write(luma_for_output(luma, self.info.bits, self.writer.bits), codes,
                              [f.pts - self.shift for f in frames])
        if self.progress is not None:
            self.progress(len(frames))
        self.report.frames += len(frames)


def low_stretches(confidence: Sequence[float], first_frame: int, threshold: float) -> list[list[int]]:
    """[first, last] frame ranges where ``confidence`` (per frame of a shot starting at ``first_frame``)
    is under ``threshold``."""
    out: list[list[int]] = []
    for i, c in enumerate(confidence):
        if c < threshold:
            if out and out[-1][1] == first_frame + i - 1:
                out[-1][1] += 1
            else:
                out.append([first_frame + i, first_frame + i])
    return out


def colorize_video(input: str | os.PathLike, output: str | os.PathLike | None = None, **kwargs) -> RunReport:
    """Colourise a video file; every stream but the video is copied as is.

    The film is split into shots (detected, and wherever a reference-map row
    starts); each shot gets its choice (:mod:`vidcolor.references.choose`:
    the map's row, the one still, or the best match from a folder, scored
    against the shot) and the colorizer starts afresh. The output is written
    beside its target under a temporary name and renamed when complete; on
    any error it is removed and the target (if any) is left as it was.

    Keywords (:class:`VideoRun`): ``reference``, ``reference_map``,
    ``config``, ``overwrite``, ``progress``, ``on_open``; ``plan`` (from
    :func:`plan_shots`) fixes the shots and their choices: no detection, no
    scoring. ``frames=(a, b)`` renders frames a..b-1 only (``a`` must begin a
    planned shot; decoding seeks to it); ``video_only`` writes the video
    stream alone. Together: one segment of a render farm.
    ``span=(start, duration)`` (seconds from the film's first frame;
    duration None: to the end) renders that part only: decoding from the
    keyframe before it, shots and stills chosen on the film's own timeline,
    the other streams trimmed to it, every timestamp shifted so it starts at
    0 (:mod:`vidcolor.io.span`). ``compare`` writes the input's gray and the
    colour side by side (:class:`~vidcolor.io.span.SideBySideWriter`).
    """
    return VideoRun(input, output, **kwargs).run()


def detect_shots(input: str | os.PathLike, *, config: Config | None = None,
                 progress: Progress | None = None) -> tuple[list[Shot], "VideoInfo"]:
    """Decode a video and return its shots (the detector of ``config.shots``)."""
    cfg = config or Config()
    input = Path(input)
    check_input(input)
    if cfg.shots.detector == "off":
        raise ConfigError("shot detection is off; choose a detector (transnet, histogram)")
    detector = detector_from_config(cfg.shots, resolve_device(cfg.runtime.device))
    with VideoReader(input, queue_size=cfg.runtime.queue_size, max_damaged=cfg.runtime.max_damaged_frames) as reader:
        splitter = ShotSplitter(detector, reader.info.ycbcr)
        for item in reader.items():
            if isinstance(item, LumaFrame):
                for _ in splitter.feed(item):
                    pass
                if progress is not None:
                    progress(1)
        for _ in splitter.finish():
            pass
        return splitter.shots, reader.info


def colorize(input: str | os.PathLike, output: str | os.PathLike | None = None, **kwargs) -> RunReport:
    """Colourise a video or a still image, by the input's file name."""
    if is_image_path(input):
        kwargs.pop("progress", None)
        kwargs.pop("on_open", None)
        from .photo import colorize_image

        return colorize_image(input, output, **kwargs)
    return colorize_video(input, output, **kwargs)
