"""Where the next keyframe is needed (``vidcolor keyframes FILM --suggest N``).

A colourist paints a few frames of each shot; this module says which. Per
frame it measures how much of the frame the colour carried from the
existing keyframes reaches: the share of its pixels whose flow to the
keyframe before or after it holds (the keyframe colorizer's own measure,
:mod:`vidcolor.models.keyframes`; 0 in a shot with no keyframe). A new
keyframe at frame ``f`` would reach frame ``t`` with a confidence of about
``exp(-|t - f| / reach)`` (``reach`` fitted on the film itself, from how
fast the existing keyframes' confidence falls with distance; 12 frames when
there is nothing to fit it on). Suggestions are chosen greedily, each the
frame that adds the most confidence over its shot, the model updated after
each: with no keyframes, the middle of the longest shots first, then the
thirds of long ones; with some, the middle of the longest stretches they
reach poorly.
"""
from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .errors import OutputError
from .io.decode import LumaFrame, VideoReader
from .outputs import check_input
from .pipeline import plan_shots
from .references.keyframes import KEYS_HEADER
from .runtime import resolve_device
from .timecode import format_timecode

__all__ = ["Suggestion", "suggest_keyframes", "carried_confidence", "choose_frames", "write_suggestions",
           "DEFAULT_REACH"]

log = logging.getLogger("vidcolor")

DEFAULT_REACH = 12.0  # frames: how far a keyframe's colour reaches, when the film gives nothing to fit it on
GAIN_BLOCK = 512  # candidate frames whose gains are computed together (memory: GAIN_BLOCK x shot length)


@dataclass(frozen=True)
class Suggestion:
    """A frame to colour next: its index, time (s from the first frame), shot, and the confidence it adds."""

    frame: int
    seconds: float
    shot: int
    gain: float

    @property
    def name(self) -> str:
        return f"frame_{self.frame:06d}_{format_timecode(self.seconds).replace(':', '-')}.png"


def carried_confidence(input: str | os.PathLike, plan, config: Config | None = None) -> np.ndarray:
    """Per frame of ``input`` (a plan from :func:`~vidcolor.pipeline.plan_shots` with keyframes), the share of
    it the flows from its shot's nearest keyframes reach (0 for shots without keyframes)."""
    from .color import luma_lut
    from .models.exemplar import PreparedStill, l8_of, working_l
    from .models.keyframes import sides_of
    from .ops import dis_flow
    from .references import ReferenceStore

    cfg = config or Config()
    device = resolve_device("cpu")
    total = sum(s.frames for s in plan)
    conf = np.zeros(total, np.float32)
    keyed = {s.first_frame: s for s in plan if s.entry.get("keys")}
    if not keyed:
        return conf
    first = plan[0].first_frame
    ex = cfg.exemplar
    dis = dis_flow(ex.flow_preset)
    check = dis_flow(ex.check_preset) if ex.check_preset != ex.flow_preset else None
    store = ReferenceStore(device)
    shot, stills, keys = None, {}, []
    with VideoReader(input, queue_size=cfg.runtime.queue_size, max_damaged=cfg.runtime.max_damaged_frames) as reader:
        lut = luma_lut(reader.info.ycbcr, device)
        for item in reader.items():
            if not isinstance(item, LumaFrame):
                continue
            if item.index in keyed or (shot is not None and item.index >= shot.first_frame + shot.frames):
                shot = keyed.get(item.index)
                stills, keys = {}, [] if shot is None else [f - shot.first_frame for f, _ in shot.entry["keys"]]
            if shot is None:
                continue
            t = item.index - shot.first_frame
            Lw = working_l(lut[torch.from_numpy(item.luma.astype(np.int64))][None, None].float(), ex)
            h, w = Lw.shape[-2:]
            l8 = l8_of(Lw)[0]
            best = None
            for k, _ in sides_of(keys, t):
                if k == t:
                    best = np.ones_like(l8, np.float32)
                    break
                if k not in stills:
                    path = dict(shot.entry["keys"])[k + shot.first_frame]
                    stills[k] = PreparedStill(store.get(Path(path)), (h, w), None, reader.info.ycbcr,
                                              prealign=ex.prealign)
                c = stills[k].flow(l8, ex, dis, check)[1]
                best = c if best is None else np.maximum(best, c)
            conf[item.index - first] = float(best.mean())
    return conf


def _reach(plan, conf: np.ndarray) -> float:
    """How far a keyframe's colour reaches, in frames, fitted on the film: the mean of d / -ln(c) over the
    frames with one keyframe at distance d on their side and a confidence c in (0.05, 0.95)."""
    first = plan[0].first_frame
    fits = []
    for s in plan:
        keys = [f - s.first_frame for f, _ in s.entry.get("keys", ())]
        for t in range(s.frames):
            c = conf[s.first_frame - first + t]
            if keys and 0.05 < c < 0.95:
                d = min(abs(t - k) for k in keys)
                fits.append(d / -math.log(c))
    return float(np.clip(np.median(fits), 2.0, 500.0)) if len(fits) >= 5 else DEFAULT_REACH


def choose_frames(plan, conf: np.ndarray, n: int, *, per_shot: int | None = None,
                  reach: float | None = None) -> list[tuple[int, int, float]]:
    """(frame, shot index, gain) of ``n`` frames chosen greedily (see the module docstring); ``per_shot``:
    exactly that many in every shot instead (``n`` ignored)."""
    first = plan[0].first_frame
    reach = reach or _reach(plan, conf)
    cover = conf.astype(np.float64).copy()
    keyed = {f for s in plan for f, _ in s.entry.get("keys", ())}
    picks: list[tuple[int, int, float]] = []

    def best_in(s) -> tuple[float, int]:
        a = s.first_frame - first
        c = cover[a:a + s.frames]
        t = np.arange(s.frames)
        # the gain of a keyframe at each candidate: sum over the shot of the confidence it adds
        # (candidates a block at a time: a long shot's full candidate x frame table would be gigabytes)
        gain = np.empty(s.frames)
        for b in range(0, s.frames, GAIN_BLOCK):
            near = np.exp(-np.abs(t[b:b + GAIN_BLOCK, None] - t[None, :]) / reach)
            gain[b:b + GAIN_BLOCK] = np.maximum(near - c[None, :], 0.0).sum(1)
        for f in keyed:
            if s.first_frame <= f < s.first_frame + s.frames:
                gain[f - s.first_frame] = -1.0
        i = int(np.flatnonzero(gain >= gain.max() - 1e-9 * abs(gain.max()))[0])  # of equal gains (to rounding,
        return float(gain[i]), i  # which the summation order moves between numpy releases) the first

    def take(s, i: int, gain: float) -> None:
        a = s.first_frame - first
        t = np.arange(s.frames)
        cover[a:a + s.frames] = np.maximum(cover[a:a + s.frames], np.exp(-np.abs(t - i) / reach))
        picks.append((s.first_frame + i, s.index, gain))
        keyed.add(s.first_frame + i)

    if per_shot is not None:
        for s in plan:
            for _ in range(min(per_shot, s.frames)):
                g, i = best_in(s)
                if g > 0:
                    take(s, i, g)
        return picks
    best = [best_in(s) for s in plan]  # a pick changes its own shot's cover only: the others' best stand
    for _ in range(n):
        k = max(range(len(plan)), key=lambda j: best[j][0])
        (g, i), s = best[k], plan[k]
        if g <= 0:
            break
        take(s, i, g)
        best[k] = best_in(s)
    return picks


def suggest_keyframes(input: str | os.PathLike, *, keyframes: str | os.PathLike | None = None, n: int = 1,
                      per_shot: int | None = None, reference: str | os.PathLike | None = None,
                      reference_map: str | os.PathLike | None = None,
                      config: Config | None = None, progress=None) -> tuple[list[Suggestion], list]:
    """The frames of ``input`` a colourist should colour next, and the plan (shots, keyframes) they were
    chosen on; see the module docstring."""
    cfg = config or Config()
    input = Path(input)
    check_input(input)
    plan, info = plan_shots(input, reference=reference, reference_map=reference_map, keyframes=keyframes, config=cfg,
                            progress=progress)
    conf = carried_confidence(input, plan, cfg)
    times = {}
    rate = float(info.rate) if info.rate else 25.0
    picks = choose_frames(plan, conf, n, per_shot=per_shot)
    for s in plan:  # the frame's time: the shot's start plus frames at the film's rate (exact for CFR)
        for f, _, _ in picks:
            if s.first_frame <= f < s.first_frame + s.frames:
                times[f] = s.start_time + (f - s.first_frame) / rate
    out = [Suggestion(f, times[f], shot, round(g, 2)) for f, shot, g in sorted(picks)]
    log.debug("keyframe suggestions: %s (confidence from %d frames, %d shots)", out, len(conf), len(plan))
    return out, plan


def write_suggestions(input: str | os.PathLike, suggestions: list[Suggestion], folder: str | os.PathLike,
                      plan, *, overwrite: bool = False) -> Path:
    """Each suggested frame as a black-and-white PNG in ``folder`` (named by frame number and timecode)
    and a ``keys.csv`` listing the existing keyframes and the new ones (their reference: the PNG, to be
    coloured in place). Returns the CSV's path."""
    import cv2

    from .shots.split import gray8_lut

    folder = Path(folder)
    keys_csv = folder / "keys.csv"
    if folder.exists() and not folder.is_dir():
        raise OutputError("is a file; give a folder for the suggested frames", folder)
    if keys_csv.exists() and not overwrite:
        raise OutputError("already exists (pass --overwrite to replace it)", keys_csv)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {s.frame: s for s in suggestions}
    with VideoReader(input) as reader:
        lut = gray8_lut(reader.info.ycbcr)
        for item in reader.items():
            if isinstance(item, LumaFrame) and item.index in wanted:
                path = folder / wanted.pop(item.index).name
                if not cv2.imwrite(os.fspath(path), lut[item.luma]):
                    raise OutputError("cannot write the frame", path)
                if not wanted:
                    break
    rows = [(f, p) for s in plan for f, p in s.entry.get("keys", ())]
    rows += [(s.frame, s.name) for s in suggestions]
    tmp = keys_csv.with_name(".keys.csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(KEYS_HEADER)
        for f, p in sorted(rows):
            w.writerow([f, p])
    os.replace(tmp, keys_csv)
    return keys_csv
