"""The one module that wires the stages together:

    decode ──► references per shot ──► colorize (batched) ──► encode
    (thread)                            (device)               (thread, other streams copied)

Luminance is never altered: each output frame's luma plane is the input's,
and the colorizer's a/b reach the file as Cb/Cr at the output's chroma
resolution.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .color import (BT601, YCbCrSpec, gray_to_l, lab_to_chroma_codes, lab_to_rgb, luma_lut, quantize_chroma,
                    rgb_to_lab, rgb_to_luma, ycbcr_to_rgb)
from .config import Config
from .errors import ConfigError, InputError, ModelError, OutputError
from .io.decode import LumaFrame, VideoInfo, VideoReader
from .io.encode import VideoWriter
from .io.image import is_image_path, read_image, write_image
from .io.span import SideBySideWriter, SideStreams, locate_span
from .models import Colorizer, get_colorizer
from .models.gallery import BlendColorizer, GalleryColorizer, gallery_from_config
from .models.registry import needs_reference
from .references import ReferenceSchedule, ReferenceStore
from .shots import ShotDetector, get_detector, list_detectors
from .shots.split import Shot, ShotSplitter
from .temporal import TemporalSmoother

__all__ = ["RunReport", "colorize_video", "colorize_image", "colorize", "detect_shots", "default_output", "resolve_device",
           "PlannedShot", "plan_shots"]

log = logging.getLogger("vidcolor")

Progress = Callable[[int], None]
IMAGE_WORKING_SIDE = 1024
SHOT_CONTEXT = 24  # frames of a shot's start that choosing its still from a folder may look at
MATCH_CONTEXT = 7  # ... and scoring its one still (the first 8 frames: what the exemplar's first batch sees)
MAX_SHOT_WARNINGS = 5  # shots named in a warning each when no still matches them; the rest are counted


@dataclass
class RunReport:
    input: str
    output: str
    frames: int = 0
    shots: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    colorizer: str = ""
    device: str = ""
    transitions: list[dict] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    damaged_frames: int = 0  # undecodable frames, each the previous good one repeated
    damaged: list[int] = field(default_factory=list)  # their indices (the first 1000)
    truncated: dict | None = None  # the input ends early: where (vidcolor.io.decode.Truncation)
    span: dict | None = None  # --start/--duration: where in the film the part lies

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "fps": round(self.fps, 3), "seconds": round(self.seconds, 3)}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError(f"unknown device '{name}' (valid: auto, cpu, cuda)")
    return torch.device(name)


def precision(cfg: Config, device: torch.device) -> torch.dtype | None:
    """runtime.precision on ``device``: the networks' mixed-precision type, None for float32.
    auto: float16 on a GPU (tensor cores), float32 on a CPU (no fast half arithmetic there)."""
    p = cfg.runtime.precision
    if device.type != "cuda" or p == "fp32":
        return None
    return torch.bfloat16 if p == "bf16" else torch.float16


#: GPU memory one frame in a batch takes, per pixel of the film (measured by the colorizers'
#: full-size tensors: L, chroma and the guided filter's coefficients, with room to spare)
GPU_BYTES_PER_PIXEL = 160


def auto_batch_size(cfg: Config, device: torch.device, size: tuple[int, int]) -> int:
    """runtime.batch_size, or (0) the batch that half the GPU's free memory holds, 1..64; 8 on a CPU."""
    if cfg.runtime.batch_size:
        return cfg.runtime.batch_size
    if device.type != "cuda":
        return 8
    free, _total = torch.cuda.mem_get_info(device)
    return int(max(1, min(64, free // 2 // (size[0] * size[1] * GPU_BYTES_PER_PIXEL))))


def _colorizer_parts(*colorizers: Colorizer | None) -> list[Colorizer]:
    """The colorizers given and those they hold (the gallery's exemplar and auto), once each."""
    seen: dict[int, Colorizer] = {}
    for c in colorizers:
        for part in (c, getattr(c, "exemplar", None), getattr(c, "auto", None)):
            if isinstance(part, Colorizer):
                seen.setdefault(id(part), part)
    return list(seen.values())


def _note_prealigned(entry: dict, colorizer: Colorizer) -> None:
    """Record in a shot's report entry on how many of its frames the exemplar brought its still onto the
    frame before the flow (a still framed otherwise than the shot), when it had a still for the shot."""
    for part in _colorizer_parts(colorizer):
        take = getattr(part, "take_prealigned", None)
        if take is not None:
            n = take()  # taken either way: a shot the exemplar had no still for must not inherit the count
            if n is not None and entry.get("reference"):
                entry["prealigned"] = n


def _note_auto(entry: dict, colorizer: Colorizer) -> None:
    """Record in a shot's report entry how much colour ``auto`` gave it (its mean confidence and chroma)."""
    for part in _colorizer_parts(colorizer):
        take = getattr(part, "take_shot_stats", None)
        stats = take() if take is not None else None
        if stats:
            entry.update(stats)


def default_output(input: str | os.PathLike) -> Path:
    p = Path(input)
    return p.with_name(f"{p.stem}_color{p.suffix}")


def _schedule(reference, reference_map) -> ReferenceSchedule:
    if reference is not None and reference_map is not None:
        raise ConfigError("give either a reference (still or folder) or a reference map, not both")
    if reference_map is not None:
        return ReferenceSchedule.from_csv(reference_map)
    if reference is not None:
        return ReferenceSchedule.single(reference)
    return ReferenceSchedule.automatic()


AUTOMATIC = "auto"  # the colorizer for shots without a still


def _build_colorizer(name: str, cfg: Config, device: torch.device) -> Colorizer:
    if name == "gallery" or (name == AUTOMATIC and cfg.gallery):
        # auto blended with exemplar from each shot's best gallery still (He et al. 2018, sec. 4)
        return gallery_from_config(cfg, device)
    kwargs = {"config": getattr(cfg, name)} if hasattr(cfg, name) else {}
    return get_colorizer(name, device=device, **kwargs)


def _colorizers(cfg: Config, schedule: ReferenceSchedule, device: torch.device) -> tuple[Colorizer, Colorizer | None]:
    """(the colorizer of shots with a still, the automatic one for shots without).

    With no still at all, or a colorizer that takes none, both are the same.
    A map with rows that name no still needs the automatic colorizer, so it
    is built now (a clear error if it cannot be); for a folder whose stills
    may not match every shot it is None here and built on demand.
    """
    if not needs_reference(cfg.colorizer):
        c = _build_colorizer(cfg.colorizer, cfg, device)
        return c, c
    if not schedule.references:
        c = _build_colorizer(AUTOMATIC, cfg, device)
        return c, c
    primary = _build_colorizer(cfg.colorizer, cfg, device)
    return primary, _build_colorizer(AUTOMATIC, cfg, device) if schedule.needs_automatic else None


def _partial_match(colorizer: Colorizer, cfg: Config, score: float | None) -> bool:
    """Whether a still of this match score gates ``colorizer``, an exemplar, partly (between gate_low
    and gate_high)."""
    return (colorizer.name == "exemplar" and score is not None
            and cfg.exemplar.gate_low <= score < cfg.exemplar.gate_high)


def _partial_blend(exemplar: Colorizer, auto: Colorizer, amp) -> BlendColorizer:
    """``exemplar`` blended with automatic colour (a gallery's own ``auto``: the still is the shot's)."""
    b = BlendColorizer(device=exemplar.device, auto=getattr(auto, "auto", auto), exemplar=exemplar)
    b.set_ycbcr(exemplar.ycbcr)
    b.set_precision(amp)
    return b


def _colorizer(cfg: Config, schedule: ReferenceSchedule, device: torch.device) -> Colorizer:
    return _colorizers(cfg, schedule, device)[0]


def _prepare_output(input: Path, output: str | os.PathLike | None, overwrite: bool) -> tuple[Path, Path]:
    out = Path(output) if output is not None else default_output(input)
    if out.is_dir():
        raise OutputError("is a folder; give a file name for the output", out)
    if out.exists():
        if input.exists() and out.resolve() == input.resolve():
            raise OutputError("is the input file; choose another output name", out)
        if not overwrite:
            raise OutputError("already exists (pass --overwrite to replace it)", out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError("the output folder does not exist", parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError("the output folder is not writable", parent)
    tmp = parent / f".{out.stem}.vidcolor-tmp-{os.getpid()}{out.suffix}"
    return out, tmp


def _check_input(input: Path) -> None:
    if not input.exists():
        raise InputError("file not found", input)
    if input.is_dir():
        raise InputError("is a folder; give a video or image file", input)


def _finish(tmp: Path, out: Path) -> None:
    try:
        os.replace(tmp, out)
    except OSError as e:
        _remove(tmp)
        if not (out.parent if str(out.parent) else Path(".")).is_dir():
            raise OutputError("the output folder was removed during the run; nothing was written", out) from None
        raise OutputError(f"cannot move the finished output into place ({e.strerror})", out) from None


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("%s: could not remove the partial output (%s)", tmp, e.strerror)


class _FrameColorist:
    """Turns batches of luma planes into chroma planes on the device."""

    def __init__(self, colorizer: Colorizer, device: torch.device, in_spec: YCbCrSpec, out_spec: YCbCrSpec,
                 chroma_size: tuple[int, int], size: tuple[int, int]):
        self.colorizer = colorizer
        self.device = device
        self.lut = luma_lut(in_spec, device)
        self.in_spec, self.out_spec = in_spec, out_spec
        self.chroma_size = chroma_size
        h, w = size
        self.pool = (round(h / chroma_size[0]), round(w / chroma_size[1]))
        self.neutral = False  # True: this shot stays black and white (a/b = 0)

    def _luma_to_l(self, luma: np.ndarray, full: bool = False) -> torch.Tensor:
        """(N, H, W) luma codes -> (N, 1, h, w) L at the chroma resolution (``full``: at the luma's)."""
        hc, wc = self.chroma_size
        if self.device.type == "cpu":
            if self.pool != (1, 1) and not full:  # OpenCV's area resize is ~10x faster than torch's pooling here
                luma = np.stack([cv2.resize(f, (wc, hc), interpolation=cv2.INTER_AREA) for f in luma])
            codes = torch.from_numpy(luma.astype(np.int64))
        else:
            y = torch.from_numpy(luma if luma.dtype == np.uint8 else luma.astype(np.int32))
            if self.device.type == "cuda":  # page-locked: the copy runs asynchronously, by DMA
                y = y.pin_memory()
            y = y.to(self.device, non_blocking=True)
            y = y.unsqueeze(1).float()
            if self.pool != (1, 1) and not full:
                y = F.avg_pool2d(y, self.pool, ceil_mode=True)
            codes = y.round().long().squeeze(1)
        return self.lut[codes].unsqueeze(1)

    @torch.inference_mode()
    def predict(self, luma: np.ndarray) -> torch.Tensor:
        """(N, H, W) luma codes -> (N, 2, h, w) float chroma at the chroma size, in the
        colorizer's own terms (Lab a/b or Cb/Cr): what temporal smoothing works on."""
        n = len(luma)
        if self.neutral:
            return torch.zeros(n, 2, *self.chroma_size, device=self.device)
        full = self.colorizer.full_luma and self.pool != (1, 1)
        L = self._luma_to_l(luma, full=full)
        ab = self.colorizer.colorize(L)
        if full:
            ab = F.adaptive_avg_pool2d(ab, self.chroma_size)
        elif ab.shape[-2:] != L.shape[-2:]:
            ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return ab.float()

    @torch.inference_mode()
    def confidence(self) -> np.ndarray | None:
        """The colorizer's confidence in its last answer, (N, h, w) at the chroma size, or None."""
        c = self.colorizer.confidence
        if c is None or self.neutral:
            return None
        if c.shape[-2:] != self.chroma_size:
            c = F.interpolate(c.float(), size=self.chroma_size, mode="bilinear", align_corners=False)
        return c[:, 0].cpu().numpy()

    @torch.inference_mode()
    def codes(self, luma: np.ndarray, chroma: torch.Tensor) -> np.ndarray:
        """Chroma from :meth:`predict` (smoothed or not) -> the output's Cb/Cr codes."""
        if self.neutral:
            return np.full((len(luma), 2, *self.chroma_size), self.out_spec.chroma_scale()[0],
                           np.uint8 if self.out_spec.bits == 8 else np.uint16)
        chroma = chroma.to(self.device)
        if self.colorizer.chroma == "cbcr":
            return quantize_chroma(chroma, self.out_spec).cpu().numpy()
        L = self._luma_to_l(luma)
        return lab_to_chroma_codes(torch.cat((L, chroma.to(L.dtype)), dim=1), self.out_spec)

    def __call__(self, luma: np.ndarray) -> np.ndarray:
        return self.codes(luma, self.predict(luma))


def _luma_for_output(luma: np.ndarray, in_bits: int, out_bits: int) -> np.ndarray:
    if in_bits == out_bits:
        return luma
    shift = out_bits - in_bits
    x = luma.astype(np.int64)
    x = x << shift if shift > 0 else (x + (1 << (-shift - 1))) >> -shift
    return x.astype(np.uint8 if out_bits == 8 else np.uint16)


class _Timers:
    """Seconds spent per stage, for the report."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t


def _detector(cfg: Config, device: torch.device) -> ShotDetector | None:
    name = cfg.shots.detector
    if name == "off":
        return None
    if name == "auto":
        name = "transnet" if device.type == "cuda" else "histogram"
    if name not in list_detectors():
        raise ConfigError(f"unknown shot detector '{name}' (valid: auto, {', '.join(list_detectors())}, off)")
    return get_detector(name, device=device)


def _smoother(cfg: Config, bits: int) -> TemporalSmoother:
    t = cfg.temporal
    return TemporalSmoother(mode=t.mode, strength=t.strength, flow_preset=t.flow_preset, flow_size=t.flow_size,
                            fb_sigma=t.fb_sigma, l_sigma=t.l_sigma, window=t.window, overlap=t.overlap,
                            detail=t.detail, bits=bits)


def _shot_l(frames: Sequence[LumaFrame], count: int, lut: torch.Tensor, side: int = 256) -> torch.Tensor:
    """L of up to ``count`` frames spread over ``frames``, short side ``side``: (N, 1, h, w)."""
    pick = [frames[round(i)] for i in np.linspace(0, len(frames) - 1, min(count, len(frames)))]
    h, w = pick[0].luma.shape
    s = min(1.0, side / min(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = np.stack([cv2.resize(f.luma, size, interpolation=cv2.INTER_AREA) for f in pick]).astype(np.int64)
    return lut.cpu()[torch.from_numpy(small)].unsqueeze(1)


def _load_references(cfg: Config, schedule: ReferenceSchedule, store: ReferenceStore, device: torch.device,
                     plan: Sequence["PlannedShot"] | None = None):
    """Load every still before any work starts (a fixed plan: only its own); a folder's retrieval index."""
    paths = schedule.references if plan is None else sorted({Path(s.reference) for s in plan if s.reference})
    for path in paths:
        store.get(path)
    if not schedule.folder_images or plan is not None:
        return None
    from .retrieval import ReferenceIndex

    return ReferenceIndex.from_folder(Path(schedule.origin), store, device, top_k=cfg.retrieval.top_k)


class _References:
    """Where shots start beyond the detector's cuts (reference-map rows), and
    which still each shot gets: the map's row, the one still, or the best
    match from a folder. A run and the farm's plan both choose here."""

    def __init__(self, cfg: Config, schedule: ReferenceSchedule, index, lut: torch.Tensor,
                 origin: float | None = None, store: ReferenceStore | None = None):
        self.cfg, self.schedule, self.index, self.lut = cfg, schedule, index, lut
        self._origin = origin  # the film's first frame's time (None: the first frame seen)
        self._last_row = None
        # the exemplar gives a still that does not match its shot no colour; the shot gets automatic
        # colour instead, as an unmatched shot of --reference DIR does (scored here, as the exemplar scores)
        self._store = store if cfg.colorizer == "exemplar" and cfg.exemplar.gate_low > 0 else None
        self._scorers: dict = {}
        self.unmatched = 0  # shots no still matched (coloured automatically)

    def row_for(self, index: int, seconds: float):
        row = self.schedule.lookup(index, seconds)
        if row is None:
            raise InputError(f"no row covers frame {index} ({seconds:.3f} s); the first row should start at 0",
                             self.schedule.origin or None)
        return row

    def _row_starts(self, frame: LumaFrame) -> bool:
        if self._origin is None:
            self._origin = frame.time
        key = self.row_for(frame.index, frame.time - self._origin).key
        changed, self._last_row = key != self._last_row, key
        return changed

    def splitter(self, detector: ShotDetector | None, spec: YCbCrSpec) -> ShotSplitter:
        context = SHOT_CONTEXT if self.index is not None else MATCH_CONTEXT if self._store is not None else 0
        return ShotSplitter(detector, spec, forced=self._row_starts if len(self.schedule.rows) > 1 else None,
                            context=context, origin=self._origin)

    def _score(self, path: Path, shot: Shot) -> float:
        """How well the still ``path`` matches ``shot`` (the exemplar's shot gate; retrieval's score)."""
        from .retrieval import ReferenceIndex

        if path not in self._scorers:
            self._scorers[path] = ReferenceIndex([(path, self._store.get(path))], self._store.device)
        return float(self._scorers[path].rank(_shot_l(shot.ahead, 3, self.lut))[0].score)

    def choose(self, shot: Shot, entry: dict) -> Path | None:
        """The still for ``shot`` (None: it stays black and white); what was chosen and why goes in ``entry``."""
        cfg = self.cfg
        if self.index is not None:
            matches = self.index.rank(_shot_l(shot.ahead, cfg.retrieval.frames, self.lut))
            best = matches[0]
            path, entry["score"] = best.path, round(float(best.score), 4)
            entry["candidates"] = [{"reference": os.fspath(m.path), "score": round(float(m.score), 4)}
                                   for m in matches[:3]]
            if best.score < cfg.retrieval.threshold:
                # a poor reference paints wrong colours: the shot gets automatic colour instead
                entry["unmatched"] = True
                path = None
                self._unmatched("shot %d (frame %d): no still in %s matches it (best %s, score %.2f < %.2f); "
                                "coloured automatically instead: add a still or use --reference-map",
                                shot.index, shot.first_frame, self.schedule.origin, best.path.name, best.score,
                                cfg.retrieval.threshold)
        else:
            row = self.row_for(shot.first_frame, shot.start_time)
            path = row.reference
            entry["row"] = row.source
            if path is not None and self._store is not None and shot.ahead:
                entry["score"] = round(self._score(path, shot), 4)
                if entry["score"] < cfg.exemplar.gate_low:
                    entry["unmatched"] = True
                    self._unmatched("shot %d (frame %d): %s does not match it (score %.2f < exemplar.gate_low "
                                    "%.2f); coloured automatically instead", shot.index, shot.first_frame, path.name,
                                    entry["score"], cfg.exemplar.gate_low)
                    path = None
        entry["reference"] = os.fspath(path) if path else None
        return path

    def _unmatched(self, message: str, *args) -> None:
        """A warning for each of the first MAX_SHOT_WARNINGS shots no still matches; then :meth:`summary`."""
        self.unmatched += 1
        if self.unmatched <= MAX_SHOT_WARNINGS:
            log.warning(message, *args)
        elif self.unmatched == MAX_SHOT_WARNINGS + 1:
            log.warning("more shots match no still: counted at the end (--report lists them, 'unmatched')")

    def summary(self, shots: int) -> None:
        if self.unmatched > MAX_SHOT_WARNINGS:
            log.warning("%d of %d shots matched no still and were coloured automatically", self.unmatched, shots)


@dataclass(frozen=True)
class PlannedShot:
    """A shot of a fixed plan: its first frame (index, pts, seconds from the
    film's first frame), its length, and its still (None: black and white);
    ``entry`` is what a run reports about it (transition, score, map row)."""

    index: int
    first_frame: int
    first_pts: int
    start_time: float
    frames: int
    reference: str | None
    entry: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PlannedShot":
        return cls(**data)


class _PlanSplitter:
    """A ShotSplitter's interface over a fixed plan: shots start where the plan says; no lookahead."""

    def __init__(self, plan: Sequence[PlannedShot]):
        self._starts = {s.first_frame: s for s in plan}
        self.shots: list[Shot] = []
        self.transitions: list = []

    def feed(self, frame: LumaFrame) -> list[tuple[LumaFrame, Shot | None]]:
        planned = self._starts.get(frame.index)
        shot = None
        if planned is not None:
            shot = Shot(planned.index, planned.first_frame, planned.start_time, None, [frame])
            self.shots.append(shot)
        elif not self.shots:
            raise InputError(f"frame {frame.index} begins no shot of the plan", None)
        self.shots[-1].frames += 1
        return [(frame, shot)]

    def finish(self) -> list:
        return []


class _PlanReferences:
    """The plan's stills, shot by shot."""

    def __init__(self, plan: Sequence[PlannedShot]):
        self._by_index = {s.index: s for s in plan}

    def splitter(self, detector, spec) -> _PlanSplitter:
        return _PlanSplitter(list(self._by_index.values()))

    def choose(self, shot: Shot, entry: dict) -> Path | None:
        planned = self._by_index[shot.index]
        entry.update({k: v for k, v in planned.entry.items() if k not in ("frames", "transition")})
        entry["reference"] = planned.reference
        return Path(planned.reference) if planned.reference else None


def plan_shots(input: str | os.PathLike, *, reference: str | os.PathLike | None = None,
               reference_map: str | os.PathLike | None = None, config: Config | None = None,
               progress: Progress | None = None,
               on_open: Callable[["VideoReader"], None] | None = None) -> tuple[list[PlannedShot], VideoInfo]:
    """The shots :func:`colorize_video` would find in ``input`` and the still it
    would give each, without colouring anything: a fixed plan for
    ``colorize_video(plan=...)`` (the render farm cuts a film by it)."""
    cfg = config or Config()
    input = Path(input)
    _check_input(input)
    schedule = _schedule(reference, reference_map)
    device = resolve_device(cfg.runtime.device)
    _colorizer(cfg, schedule, device)  # refuse what a run would refuse, before the long decode
    store = ReferenceStore(device)
    index = _load_references(cfg, schedule, store, device)
    detector = _detector(cfg, device)
    started: list[tuple[Shot, int, dict, Path | None]] = []
    with VideoReader(input, queue_size=cfg.runtime.queue_size, max_damaged=cfg.runtime.max_damaged_frames) as reader:
        info = reader.info
        schedule.bind(info.rate)
        if on_open is not None:
            on_open(reader)
        refs = _References(cfg, schedule, index, luma_lut(info.ycbcr, device), store=store)
        splitter = refs.splitter(detector, info.ycbcr)

        def take(released) -> None:
            for frame, shot in released:
                if shot is not None:
                    entry = shot.to_dict()
                    path = refs.choose(shot, entry)
                    shot.ahead = []
                    started.append((shot, frame.pts, entry, path))
                if progress is not None:
                    progress(1)

        for item in reader.items():
            if isinstance(item, LumaFrame):
                take(splitter.feed(item))
        take(splitter.finish())
        refs.summary(len(started))
        for note in reader.notes():
            log.warning("%s", note)
    plan = [PlannedShot(s.index, s.first_frame, pts, s.start_time, s.frames, os.fspath(p) if p else None,
                        {**entry, "frames": s.frames}) for s, pts, entry, p in started]
    return plan, info


def colorize_video(input: str | os.PathLike, output: str | os.PathLike | None = None, *,
                   reference: str | os.PathLike | None = None, reference_map: str | os.PathLike | None = None,
                   config: Config | None = None, overwrite: bool = False, progress: Progress | None = None,
                   on_open: Callable[["VideoReader"], None] | None = None,
                   plan: Sequence[PlannedShot] | None = None, frames: tuple[int, int] | None = None,
                   video_only: bool = False, span: tuple[float, float | None] | None = None,
                   compare: bool = False) -> RunReport:
    """Colourise a video file; every stream but the video is copied as is.

    The film is split into shots (detected, and wherever a reference-map row
    starts); each shot gets its reference still (the map's row, the one
    still, or the best match from a folder) and the colorizer starts afresh.
    The output is written beside its target under a temporary name and
    renamed when complete; on any error it is removed and the target (if
    any) is left as it was.

    ``plan`` (from :func:`plan_shots`) fixes the shots and their stills: no
    detection, no retrieval. ``frames=(a, b)`` renders frames a..b-1 only
    (``a`` must begin a planned shot; decoding seeks to it); ``video_only``
    writes the video stream alone. Together: one segment of a render farm.

    ``span=(start, duration)`` (seconds from the film's first frame;
    duration None: to the end) renders that part only: decoding from the
    keyframe before it, shots and stills chosen on the film's own timeline,
    the other streams trimmed to it, every timestamp shifted so it starts at
    0 (:mod:`vidcolor.io.span`). ``compare`` writes the input's gray and the
    colour side by side (:class:`~vidcolor.io.span.SideBySideWriter`).
    """
    cfg = config or Config()
    t0 = time.monotonic()
    timers = _Timers()
    input = Path(input)
    _check_input(input)
    schedule = _schedule(reference, reference_map)
    device = resolve_device(cfg.runtime.device)
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    colorizer, auto = _colorizers(cfg, schedule, device)
    amp = precision(cfg, device)
    for c in (colorizer, auto):
        if c is not None:
            c.set_precision(amp)
    auto_failed: list[str] = []

    def automatic() -> Colorizer | None:
        """The automatic colorizer, built the first time a shot needs it; None (the shot stays
        black and white, with a warning) when it cannot be, e.g. no trained weights."""
        nonlocal auto
        if auto is None and not auto_failed:
            try:
                auto = _build_colorizer(AUTOMATIC, cfg, device)
                auto.set_ycbcr(colorizer.ycbcr)
                auto.set_precision(amp)
            except ModelError as e:
                auto_failed.append(str(e))
                log.warning("no automatic colour for shots without a still (%s): they stay black and white", e)
        return auto

    blend: list[BlendColorizer] = []

    def blended() -> BlendColorizer | None:
        """The exemplar blended with automatic colour, for a still that matches its shot only
        partly; built the first time a shot needs it (None when there is no automatic colour)."""
        if not blend and automatic() is not None:
            blend.append(_partial_blend(colorizer, auto, amp))
        return blend[0] if blend else None

    store = ReferenceStore(device)
    start = None
    part = None
    if span is not None:
        if plan is not None or frames is not None:
            raise ConfigError("a span (--start/--duration) is rendered without a plan or a frame range")
        part = locate_span(input, *span)
        start = (part.first_frame, part.first_pts)
    if frames is not None:
        first = {s.first_frame: s for s in plan or ()}.get(frames[0])
        if first is None:
            raise ConfigError(f"frames {frames[0]}..{frames[1] - 1}: a range must begin a shot of a plan")
        start = (first.first_frame, first.first_pts)
    with timers("references"):
        index = _load_references(cfg, schedule, store, device, plan)
    detector = _detector(cfg, device) if plan is None else None
    out, tmp = _prepare_output(input, output, overwrite)
    if is_image_path(out):
        raise OutputError("is an image name, but the input is a video; give a video file name", out)
    report = RunReport(str(input), str(out), colorizer=cfg.colorizer, device=str(device),
                       span=part.to_dict() if part is not None else None)
    shift = part.first_pts if part is not None else 0  # a part starts at 0

    with VideoReader(input, queue_size=cfg.runtime.queue_size, start=start,
                     max_damaged=cfg.runtime.max_damaged_frames) as reader:
        info = reader.info
        schedule.bind(info.rate)
        if on_open is not None:
            on_open(reader)
        writer = (SideBySideWriter if compare else VideoWriter)(
            tmp, info, cfg.encode, () if video_only else reader.passthrough, target=out)
        smoother: TemporalSmoother | None = None
        side = None
        try:
            if part is not None and not video_only:
                side = SideStreams(input, part, [s.index for s in reader.passthrough])
            out_spec = YCbCrSpec(info.ycbcr.colorspace, info.ycbcr.full_range, writer.bits)
            colorizer.set_ycbcr(out_spec)
            if auto is not None:
                auto.set_ycbcr(out_spec)
            colorist = _FrameColorist(colorizer, device, info.ycbcr, out_spec, writer.chroma_size, (info.height, info.width))
            batch_size = auto_batch_size(cfg, device, (info.height, info.width))
            batch: list[LumaFrame] = []
            entries: list = []  # (Shot, report entry): lengths are known at the end
            refs = (_References(cfg, schedule, index, colorist.lut, origin=part.origin if part else None, store=store)
                    if plan is None else _PlanReferences(plan))
            splitter = refs.splitter(detector, info.ycbcr)

            smoother = _smoother(cfg, info.bits)

            def write(frames: list[LumaFrame], luma: np.ndarray, codes: np.ndarray) -> None:
                with timers("encode (waiting)"):
                    writer.write(_luma_for_output(luma, info.bits, writer.bits), codes, [f.pts - shift for f in frames])
                if progress is not None:
                    progress(len(frames))
                report.frames += len(frames)

            def write_smoothed(ready: list) -> None:
                if not ready:
                    return
                frames = [f for f, _ in ready]
                luma = np.stack([f.luma for f in frames])
                with timers("colorize"):
                    codes = colorist.codes(luma, torch.from_numpy(np.stack([c for _, c in ready])))
                write(frames, luma, codes)

            def flush() -> None:
                if not batch:
                    return
                luma = np.stack([f.luma for f in batch])
                if not smoother.enabled or colorist.neutral:
                    with timers("colorize"):
                        codes = colorist(luma)
                    write(batch, luma, codes)
                else:
                    with timers("temporal"):
                        motion = smoother.motion(luma, colorist.chroma_size)  # runs while the model does
                    with timers("colorize"):
                        chroma = colorist.predict(luma).cpu().numpy()
                        confidence = colorist.confidence()
                    with timers("temporal"):
                        ready = smoother.push(list(batch), chroma, motion, confidence)
                    write_smoothed(ready)
                batch.clear()

            def end_shot() -> None:
                flush()
                with timers("temporal"):
                    ready = smoother.end_shot()
                write_smoothed(ready)
                if entries and not colorist.neutral:  # the shot just coloured
                    _note_prealigned(entries[-1][1], colorist.colorizer)
                    _note_auto(entries[-1][1], colorist.colorizer)

            def begin(shot) -> None:
                end_shot()  # no colour is carried across a cut
                entry = shot.to_dict()
                with timers("references"):
                    path = refs.choose(shot, entry)
                    chosen = colorizer if path is not None else automatic()
                    if chosen is colorizer and _partial_match(colorizer, cfg, entry.get("score")):
                        chosen = blended() or colorizer  # the still's colour where sure, automatic elsewhere
                    colorist.neutral = chosen is None
                    if chosen is not None:
                        colorist.colorizer = chosen
                        entry["colorizer"] = chosen.name
                        if isinstance(chosen, GalleryColorizer):
                            chosen.entry = entry  # it records the still it retrieves on the shot's first batch
                        chosen.begin_shot(store.get(path) if path is not None else None)
                        if path is not None and entry.get("score") is not None and hasattr(chosen, "set_match"):
                            chosen.set_match(entry["score"])  # the score the still was chosen by gates it
                shot.ahead = []
                report.shots.append(entry)
                entries.append((shot, entry))

            def take(released) -> None:
                for frame, shot in released:
                    if shot is not None:
                        begin(shot)
                    batch.append(frame)
                    if len(batch) >= batch_size:
                        flush()

            items = reader.items()
            while True:
                with timers("decode (waiting)"):
                    item = next(items, None)
                if item is None:
                    break
                if not isinstance(item, LumaFrame):
                    if not video_only:
                        writer.copy(item)
                    continue
                if frames is not None and item.index >= frames[1]:
                    break
                if part is not None:
                    if not part.contains(item.time):
                        break
                    for packet in side.until(item.time) if side is not None else ():
                        writer.copy(packet)
                if item.damaged:
                    report.damaged_frames += 1
                    if len(report.damaged) < 1000:
                        report.damaged.append(item.index)
                with timers("shots"):
                    released = splitter.feed(item)
                take(released)
            with timers("shots"):
                released = splitter.finish()
            take(released)
            end_shot()
            for packet in side.until(None) if side is not None else ():
                writer.copy(packet)
            smoother.close()
            with timers("encode (waiting)"):
                writer.close()
            # the worker threads' busy time beside the main thread's stages: the slowest sets the pace
            timers.seconds["decode (thread)"] = reader.busy_seconds
            timers.seconds["encode (thread)"] = writer.busy_seconds
            if smoother.enabled:
                timers.seconds["frame flow (thread)"] = smoother.flow_seconds
            ref_flow = sum(getattr(c, "flow_seconds", 0.0) for c in _colorizer_parts(colorizer, auto))
            if ref_flow:
                timers.seconds["reference flow (thread)"] = ref_flow
            report.transitions = [dataclasses.asdict(t) for t in splitter.transitions]
            if reader.truncated is not None and frames is None:
                report.truncated = dataclasses.asdict(reader.truncated)
            for shot, entry in entries:
                entry["frames"] = shot.frames
            if isinstance(refs, _References):
                refs.summary(len(entries))
        except BaseException:
            if smoother is not None:
                smoother.close()
            writer.abort()
            _remove(tmp)
            raise
        finally:
            if side is not None:
                side.close()
    _finish(tmp, out)
    report.seconds = time.monotonic() - t0
    report.stages = {k: round(v, 3) for k, v in timers.seconds.items()}
    return report


def detect_shots(input: str | os.PathLike, *, config: Config | None = None,
                 progress: Progress | None = None) -> tuple[list[Shot], "VideoInfo"]:
    """Decode a video and return its shots (the detector of ``config.shots``)."""
    cfg = config or Config()
    input = Path(input)
    _check_input(input)
    if cfg.shots.detector == "off":
        raise ConfigError("shot detection is off; choose a detector (transnet, histogram)")
    detector = _detector(cfg, resolve_device(cfg.runtime.device))
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


def colorize_image(input: str | os.PathLike, output: str | os.PathLike | None = None, *,
                   reference: str | os.PathLike | None = None, reference_map: str | os.PathLike | None = None,
                   config: Config | None = None, overwrite: bool = False) -> RunReport:
    """Colourise a still photograph. Its Lab L is kept; a/b come from the colorizer."""
    cfg = config or Config()
    t0 = time.monotonic()
    input = Path(input)
    _check_input(input)
    schedule = _schedule(reference, reference_map)
    device = resolve_device(cfg.runtime.device)
    colorizer = _colorizer(cfg, schedule, device)
    colorizer.set_precision(precision(cfg, device))
    row = schedule.rows[0] if len(schedule.rows) == 1 else schedule.lookup(0, 0.0)
    if row is None:
        raise InputError("no row starts at 0 for a still image", schedule.origin or None)
    store = ReferenceStore(device)
    ref = store.get(row.reference) if row.reference else None
    out, tmp = _prepare_output(input, output, overwrite)
    if not is_image_path(out):
        raise OutputError("the input is a still image; give an image file name for the output (.png, .jpg, .tif)", out)
    img = read_image(input)
    peak = 65535.0 if img.dtype == np.uint16 else 255.0
    with torch.inference_mode():
        rgb = torch.from_numpy(np.ascontiguousarray(img)).to(device).permute(2, 0, 1)[None].float() / peak
        spec = YCbCrSpec(BT601, True, 8)  # a photograph's gray is its JPEG luma
        y = rgb_to_luma(rgb, spec)
        h, w = y.shape[-2:]
        s = IMAGE_WORKING_SIDE / max(h, w)

        def paint(c: Colorizer, still: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
            """(the photograph's L as ``c`` sees it, its a/b or Cb/Cr at the working size)."""
            L = rgb_to_lab(rgb)[:, :1] if c.chroma == "lab" else gray_to_l(y)
            c.set_ycbcr(spec)
            c.begin_shot(still)
            return L, c.colorize(F.interpolate(L, scale_factor=s, mode="area") if s < 1 else L)

        L, ab = paint(colorizer, ref)
        used = cfg.colorizer if ref is not None or not needs_reference(cfg.colorizer) else AUTOMATIC
        score = getattr(colorizer, "score", None)  # the exemplar's match of the still to the photograph
        if getattr(colorizer, "gate", None) == 0.0:  # the still does not match the photograph: auto, as a shot gets
            why = f"{Path(row.reference).name} does not match {input.name} (score {score:.2f} < exemplar.gate_low " \
                  f"{cfg.exemplar.gate_low:.2f})"
            try:
                auto = _build_colorizer(AUTOMATIC, cfg, device)
            except ModelError as e:  # as a shot: it stays black and white
                log.warning("%s; no automatic colour either (%s): it stays black and white", why, e)
            else:
                log.warning("%s; coloured automatically instead", why)
                colorizer, used = auto, AUTOMATIC
                colorizer.set_precision(precision(cfg, device))
                L, ab = paint(colorizer, None)
        elif _partial_match(colorizer, cfg, score):  # a partial match: the still's colour where sure, automatic elsewhere
            try:
                auto = _build_colorizer(AUTOMATIC, cfg, device)
            except ModelError as e:  # as a shot: the still's colour, faded
                log.warning("no automatic colour to blend the partly matching still with (%s)", e)
            else:
                colorizer = _partial_blend(colorizer, auto, precision(cfg, device))
                used = colorizer.name
                L, ab = paint(colorizer, ref)
        if ab.shape[-2:] != (h, w):
            ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
        if colorizer.chroma == "cbcr":
            result = ycbcr_to_rgb(y, ab, spec)[0].permute(1, 2, 0).cpu().numpy()
        else:
            result = lab_to_rgb(torch.cat((L, ab), dim=1))[0].permute(1, 2, 0).cpu().numpy()
    result = (result * peak + 0.5).astype(img.dtype)
    try:
        write_image(tmp, result)
        _finish(tmp, out)
    finally:
        _remove(tmp)
    shot = {"index": 0, "first_frame": 0, "start_time": 0.0, "row": row.source, "colorizer": used,
            "reference": os.fspath(row.reference) if row.reference and used != AUTOMATIC else None}
    if score is not None:
        shot["score"] = round(float(score), 4)
    if used == AUTOMATIC and row.reference:
        shot["unmatched"] = True
    _note_auto(shot, colorizer)
    return RunReport(str(input), str(out), frames=1, seconds=time.monotonic() - t0, colorizer=cfg.colorizer,
                     device=str(device), shots=[shot])


def colorize(input: str | os.PathLike, output: str | os.PathLike | None = None, **kwargs) -> RunReport:
    """Colourise a video or a still image, by the input's file name."""
    if is_image_path(input):
        kwargs.pop("progress", None)
        kwargs.pop("on_open", None)
        return colorize_image(input, output, **kwargs)
    return colorize_video(input, output, **kwargs)
