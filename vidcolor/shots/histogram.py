"""A fast classical shot detector for runs without a GPU.

Per frame it keeps a soft-binned luminance histogram and an edge map of a
64x36 thumbnail, and the thumbnail shrunk to 32x18. Three detections share
them:

- Hard cuts: the change score between consecutive frames (histogram
  distance, change of the picture less its mean brightness, edge change
  ratio; 0..100) must stand out from the scores of the frames around it, as
  in PySceneDetect's AdaptiveDetector (score over the mean of ``window``
  scores each side at least ``threshold``, and at least ``min_score``), and
  the change must hold between the frames just before and just after, so a
  flash of one or two frames is no cut (:class:`~vidcolor.shots.cuts.CutTest`,
  shared with the `transnet` detector's cross-check).
- Fades through black: a run of black frames, darkening before it and
  brightening after it; the new shot starts after the darkest frame.
- Dissolves: the frames ``h`` before and ``h`` after a centre frame are two
  different pictures and the centre is their mix, with the dip in contrast a
  mix has, once each picture is moved by its own camera motion (measured by
  template matching on frames outside the window, only where a dissolve is
  suspected); the picture must have been steady just outside the window.

Features of a bounded window of frames are kept, so memory does not grow
with the film; every transition is returned at most ``lookahead`` frames
after its boundary.
"""
from __future__ import annotations

import math
from collections import deque

import cv2
import numpy as np

from ..config import HistogramConfig
from ..settings import configure
from .base import ShotDetector, Transition, register_detector
from .cuts import SMALL, CutTest, FeatureExtractor, FrameFeatures, change_score, l1

__all__ = ["HistogramDetector"]

_HALVES = (3, 5, 7, 10)  # half-widths of the windows tested for dissolves
_REACH = (6, 4)  # largest camera shift measured between two frames, pixels of SMALL
_STEP = 4  # frames between two frames whose shift is measured
_MAX_RAMP = 24  # longest fade-out or fade-in counted in a fade's span


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How far the content of ``a`` has moved in ``b`` (dx, dy), to a fraction of a pixel."""
    kx, ky = _REACH
    r = cv2.matchTemplate(b, a[ky:-ky, kx:-kx], cv2.TM_SQDIFF)
    x, y = cv2.minMaxLoc(r)[2]
    dx, dy = float(x), float(y)
    if 0 < x < r.shape[1] - 1:
        den = r[y, x - 1] - 2 * r[y, x] + r[y, x + 1]
        dx += 0.5 * (r[y, x - 1] - r[y, x + 1]) / den if den > 0 else 0.0
    if 0 < y < r.shape[0] - 1:
        den = r[y - 1, x] - 2 * r[y, x] + r[y + 1, x]
        dy += 0.5 * (r[y - 1, x] - r[y + 1, x]) / den if den > 0 else 0.0
    return dx - kx, dy - ky


def _overlap(*shifts: tuple[float, float]) -> tuple[slice, slice] | None:
    """The part of a SMALL picture still in view after any of ``shifts``; None if too little is."""
    kx = math.ceil(max(abs(s[0]) for s in shifts)) + 1
    ky = math.ceil(max(abs(s[1]) for s in shifts)) + 1
    if SMALL[0] - 2 * kx < 10 or SMALL[1] - 2 * ky < 6:
        return None
    return slice(ky, -ky), slice(kx, -kx)


def _exposed_like(img: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``img`` with its mean and contrast moved to ``like``'s: two pictures compared for their content,
    whatever a flicker did to their exposure."""
    ma, sa = cv2.meanStdDev(img)
    mb, sb = cv2.meanStdDev(like)
    return (img - float(ma[0, 0])) * (float(sb[0, 0]) / max(float(sa[0, 0]), 1.0)) + float(mb[0, 0])


def _moved(img: np.ndarray, s: tuple[float, float]) -> np.ndarray:
    """``img`` with its content moved by ``s`` = (dx, dy) pixels."""
    if s == (0.0, 0.0):
        return img
    m = np.float32([[1, 0, s[0]], [0, 1, s[1]]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


@register_detector("histogram", config=HistogramConfig)
class HistogramDetector(ShotDetector):
    """Adaptive-threshold cut detector on histograms and edges, with fade and dissolve detection.

    Settings: a config's ``shots.histogram`` section (:class:`~vidcolor.config.HistogramConfig`:
    what each one means), with keyword ``settings`` over it, checked as a config file's.
    ``device`` is accepted like every detector's and ignored: this one runs on the CPU.
    """

    thumb_size = (64, 36)
    lookahead = 36  # a fade-in of up to _MAX_RAMP frames after the boundary, a dissolve's far side and its margin

    def __init__(self, config: HistogramConfig | None = None, *, device=None, **settings):
        del device  # classical and cheap: always on the CPU
        c = configure(config or HistogramConfig(), settings, "shots.histogram.")
        self.threshold, self.min_score, self.window = float(c.threshold), float(c.min_score), int(c.window)
        self.min_shot_len, self.bins = int(c.min_shot_len), int(c.bins)
        self.black_level, self.black_sd = float(c.black_level), float(c.black_sd)
        self.dissolves, self.dissolve_min = bool(c.dissolves), float(c.dissolve_min)
        self._features = FeatureExtractor(self.thumb_size, self.bins, self.black_level, self.black_sd)
        self._cut = CutTest(self.threshold, self.min_score, self.window)
        self._frames: deque[FrameFeatures] = deque()
        self._first = 0  # index of self._frames[0]
        self._keep = 2 * self.lookahead + 2 * max(_HALVES) + 8
        self._n = 0
        self._content = False  # a frame that is not black has been seen
        self._dark: dict | None = None  # the black run under way
        self._rise: dict | None = None  # the fade-in under way
        self._zones: list[list[float]] = []  # fade spans: no cut or dissolve inside
        self._cand: dict[int, tuple[float, int]] = {}  # dissolve centre -> (change, half-width)
        self._group: list[int] | None = None  # [first, last] centre of a run of dissolve centres
        self._cuts: list[int] = []  # recent cut candidates
        self._pending: list[Transition] = []
        self._last = -(1 << 30)  # boundary last returned

    # -- features --------------------------------------------------------------------------------

    def _at(self, i: int) -> FrameFeatures:
        return self._frames[i - self._first]

    # -- streaming -------------------------------------------------------------------------------

    def push(self, thumb: np.ndarray) -> list[Transition]:
        f = self._features(np.asarray(thumb))
        n = self._n
        if n:
            prev = self._frames[-1]
            f.score = change_score(prev, f)
        self._frames.append(f)
        if len(self._frames) > self._keep:
            self._frames.popleft()
            self._first += 1
        self._n += 1
        self._fade_step(n)
        self._cut_step(n - max(self.window, 2), n)
        if self.dissolves:
            for h in _HALVES:
                self._test_centre(n - 2 * h, h)
            self._group_step(n - 2 * max(_HALVES), n)
        return self._emit(n - self.lookahead)

    def flush(self) -> list[Transition]:
        last = self._n - 1
        if last < 0:
            return []
        for c in range(max(1, last - max(self.window, 2) + 1), last + 1):
            self._cut_step(c, last)
        if self.dissolves:
            for c in range(max(0, last - 2 * max(_HALVES) + 1), last + 1):
                for h in _HALVES:
                    if c + 2 * h > last:
                        self._test_centre(c, h)
                self._group_step(c, last)
            self._close_group(last)
        if self._rise is not None:
            r, self._rise = self._rise, None
            self._finish_fade(r, last if r["top"] == last else r["top"] - 1)
        self._dark = None  # the film ends in black: no new shot
        return self._emit(1 << 62)

    def _emit(self, upto: int) -> list[Transition]:
        if not any(t.boundary <= upto for t in self._pending):
            return []
        ready = sorted((t for t in self._pending if t.boundary <= upto), key=lambda t: t.boundary)
        self._pending = [t for t in self._pending if t.boundary > upto]
        out = []
        for t in ready:
            if t.kind != "fade" and self._in_zone(t.start, t.end):
                continue
            if t.boundary <= 0 or t.boundary - self._last < self.min_shot_len:
                continue
            out.append(t)
            self._last = t.boundary
        self._zones = [z for z in self._zones if z[1] >= upto - 2 * self.lookahead]
        self._cuts = [c for c in self._cuts if c >= upto - 2 * self.lookahead]
        return out

    def _in_zone(self, lo: int, hi: int) -> bool:
        return any(z[0] <= hi and lo <= z[1] for z in self._zones)

    # -- hard cuts -------------------------------------------------------------------------------

    def _cut_step(self, c: int, last: int) -> None:
        """Is frame ``c`` the first of a new shot? Frames up to ``last`` are known."""
        if c < 1 or c - 1 < self._first:
            return
        at, first = self._at, self._first
        if not self._cut(c, last, lambda j: at(j).score, lambda j: at(j).black,
                         lambda a, b: change_score(at(a), at(b)) if a >= first else math.nan, first):
            return
        s = at(c).score
        self._cuts.append(c)
        self._pending.append(Transition(c, c, c, "cut", round(float(s) / 100.0, 4)))

    # -- fades through black ---------------------------------------------------------------------

    @staticmethod
    def _step(m: float) -> float:
        """Least change of mean brightness that counts as darkening or brightening."""
        return 0.4 + 0.015 * m

    def _fade_step(self, n: int) -> None:
        f = self._at(n)
        r = self._rise
        if r is not None:
            prev = self._at(n - 1)
            if not f.black and f.mean > prev.mean + self._step(prev.mean) and n - r["dark_end"] <= _MAX_RAMP:
                r["top"] = n
            else:
                self._rise = None
                self._finish_fade(r, r["top"] - 1)
        d = self._dark
        if f.black:
            if d is None:
                d = self._dark = {"lead": not self._content, "min": f.mean, "darkest": n, "done": False}
                if not d["lead"]:  # the fade-out: the frames darkening into the black run
                    j = n
                    while j - 1 >= max(self._first, n - _MAX_RAMP) and \
                            self._at(j - 1).mean > self._at(j).mean + self._step(self._at(j).mean):
                        j -= 1
                    d["fs"] = min(j + 1, n)
                    d["pre"] = self._at(max(d["fs"] - 1, self._first))
                    d["zone"] = [d["fs"], math.inf]
                    self._zones.append(d["zone"])
            elif f.mean <= d["min"] + max(1.0, 0.1 * d["min"]):
                d["min"] = min(d["min"], f.mean)
                d["darkest"] = n
            if not d["lead"] and not d["done"] and d["darkest"] + 1 + self.lookahead <= n + 2:
                # a long black run: report the fade before its boundary leaves the lookahead
                b = d["darkest"] + 1
                self._add_fade(d["fs"], max(n, b - 1), b, d["pre"], f)
                d["zone"][1] = n
                d["done"] = True
        else:
            self._content = True
            if d is not None:
                if d["lead"] or d["done"]:
                    if "zone" in d:
                        d["zone"][1] = n
                else:
                    self._rise = {"fs": d["fs"], "boundary": d["darkest"] + 1, "dark_end": n - 1, "top": n,
                                  "pre": d["pre"], "zone": d["zone"]}
                self._dark = None

    def _finish_fade(self, r: dict, end: int) -> None:
        end = max(end, r["boundary"] - 1, r["fs"])
        r["zone"][1] = end + 1
        self._add_fade(r["fs"], end, r["boundary"], r["pre"], self._at(min(end + 1, self._n - 1)))

    def _add_fade(self, start: int, end: int, boundary: int, pre: FrameFeatures, post: FrameFeatures) -> None:
        s = change_score(pre, post)
        if s >= self.min_score:  # else the same picture came back: a dip, not a new shot
            self._pending.append(Transition(start, end, boundary, "fade", round(s / 100.0, 4)))

    # -- dissolves -------------------------------------------------------------------------------

    def _velocity(self, i: int, j: int) -> tuple[float, float]:
        """The content's mean shift a frame from frame ``i`` to frame ``j``, measured in steps of at
        most ``_STEP`` frames (so a fast pan stays within reach); none where unknown."""
        i, j = max(i, self._first, 0), min(j, self._n - 1)
        if j - i < 2:
            return 0.0, 0.0
        sx = sy = 0.0
        a = i
        while a < j:
            b = min(a + _STEP, j)
            if self._at(a).black or self._at(b).black:
                return 0.0, 0.0
            dx, dy = _shift(self._at(a).grid, self._at(b).grid)
            sx, sy, a = sx + dx, sy + dy, b
        return sx / (j - i), sy / (j - i)

    def _test_centre(self, c: int, h: int) -> None:
        if c - h < max(self._first, 0) or c + h > self._n - 1:
            return
        t = self._dissolve_test(c, h)
        if t is not None and t > self._cand.get(c, (0.0, 0))[0]:
            self._cand[c] = (t, h)

    def _dissolve_test(self, c: int, h: int) -> float | None:
        """Mean change across frames ``c - h``..``c + h`` if they look like a dissolve, else None."""
        p, q, m = self._at(c - h), self._at(c + h), self._at(c)
        if p.black or q.black or m.black or m.sd > 0.45 * (p.sd + q.sd):
            return None  # a mix of two different pictures has less contrast than either
        va, vb = self._velocity(c - 2 * h, c - h), self._velocity(c + h, c + 2 * h)
        sa, sb = (va[0] * h, va[1] * h), (-vb[0] * h, -vb[1] * h)
        crop = _overlap(sa, sb)
        if crop is None:
            return None
        pa, qb, mm = _moved(p.grid, sa)[crop], _moved(q.grid, sb)[crop], m.grid[crop]
        d = l1(pa, qb)
        if d < self.dissolve_min or l1(mm, 0.5 * (pa + qb)) > 0.3 * d:
            return None
        zp, zq = pa - pa.mean(), qb - qb.mean()
        if float((zp * zq).sum()) > 0.8 * math.sqrt(float((zp * zp).sum() * (zq * zq).sum())) + 1e-6:
            return None  # the same picture, brighter or darker: lighting, not a dissolve
        before = _moved(self._at(max(c - 2 * h, self._first)).grid, sa)[crop]
        after = _moved(self._at(min(c + 2 * h, self._n - 1)).grid, sb)[crop]
        # the picture changes across the window far more than just outside it, exposure aside (a
        # flicker's drift over the window is no dissolve)
        pc, qc = p.grid[crop], q.grid[crop]
        content = l1(pa, _exposed_like(qb, pa))
        if content < self.dissolve_min or content < 2.5 * max(l1(_exposed_like(before, pc), pc),
                                                            l1(_exposed_like(after, qc), qc)):
            return None
        return d

    def _group_step(self, c: int, n: int) -> None:
        """Centre ``c`` has been tested at every half-width: grow, start or close the run of dissolve centres."""
        g = self._group
        if c in self._cand:
            if g is not None and c - g[1] <= 2:
                g[1] = c
            else:
                self._close_group(n)
                self._group = [c, c]
        elif g is not None and c - g[1] > 2:
            self._close_group(n)
        g = self._group
        if g is not None and (g[0] + g[1]) // 2 + self.lookahead <= n + 2:
            self._close_group(n)

    def _close_group(self, n: int) -> None:
        """The run of dissolve centres is complete: place the dissolve by how much of each picture every frame holds."""
        g, self._group = self._group, None
        if g is None:
            return
        members = [(c, self._cand[c][1]) for c in range(g[0], g[1] + 1) if c in self._cand]
        for c in [c for c in self._cand if c <= g[1]]:
            del self._cand[c]
        lo = max(min(c - h for c, h in members), self._first)
        hi = min(max(c + h for c, h in members), self._n - 1)
        span = max(3, min((hi - lo) // 2, 10))
        va, vb = self._velocity(lo - span, lo), self._velocity(hi, hi + span)
        share = []
        for i in range(lo, hi + 1):
            sa, sb = (va[0] * (i - lo), va[1] * (i - lo)), (-vb[0] * (hi - i), -vb[1] * (hi - i))
            crop = _overlap(sa, sb) or (slice(6, -6), slice(10, -10))
            pa, qb = _moved(self._at(lo).grid, sa)[crop], _moved(self._at(hi).grid, sb)[crop]
            axis = qb - pa
            share.append(float(((self._at(i).grid[crop] - pa) * axis).sum()) / max(float((axis * axis).sum()), 1e-6))
        over = [i for i, a in enumerate(share) if a >= 0.5]
        if not over:
            return
        b = lo + over[0]
        start = b
        while start - 1 > lo and share[start - 1 - lo] > 0.08:
            start -= 1
        end = b
        while end + 1 < hi and share[end + 1 - lo] < 0.92:
            end += 1
        if any(start <= c <= end + 1 for c in self._cuts) or self._in_zone(start, end):
            return
        self._pending.append(Transition(start, max(end, b), b, "dissolve",
                                        round(l1(self._at(lo).grid, self._at(hi).grid) / 255.0, 4)))
