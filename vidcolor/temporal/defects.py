"""Dust and scratches on an old print, found as temporal outliers; the colour-side luma filled over them.

Dust and scratches are on the film, not in the scene: a speck of dust is a
small blob far brighter or darker than what is around it, there for a frame
or three; a scratch is a thin vertical line, brighter or darker than the
picture on either side of it, there for a few frames at (nearly) the same
place whatever the picture does. Left in the luminance the colorizer sees,
colour is painted along them: the guided filters that make colour follow
the frame's edges follow the scratch too.

:class:`DefectFinder` is fed a shot's frames in order. A pixel is a defect
when it is both

- a strong small spatial outlier: a blob (``dust``: the white or black
  top-hat of a disc a little wider than the largest speck) or a thin line
  whose horizontal top-hat holds over a long vertical run (``scratch``);
- not explained by the previous frame: brighter than anything within
  ``reach`` pixels of it in the previous frame brought to this frame's
  exposure (or darker than anything there), so a detail that was there
  a frame ago and moved a little is no defect; or it continues, with the
  same sign and still an outlier, a defect found at the previous frame at
  (nearly) the same place (a speck lives a frame or three, a scratch a few
  frames), for at most ``max_age`` frames.

A real detail is rarely both: the thresholds are conservative, so on a clean
film almost nothing is found. The film's own luma is never altered: the
finder's :meth:`DefectFinder.fill` gives the colour side (colorizer, temporal
smoother) a copy with the defects filled from the pixels around them, so
flows, matches and guided filters see the picture, not the dirt, and the
defect gets its surroundings' colour.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..ops import match_exposure


__all__ = ["DefectFinder", "fill_masked"]


def _ellipse(d: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def fill_masked(luma: np.ndarray, mask: np.ndarray, sigma: tuple[float, float] = (1.5, 1.0)) -> np.ndarray:
    """``luma`` (H, W) with the ``mask`` pixels replaced by the normalised convolution of the others
    (a Gaussian of ``sigma`` = (x, y) pixels, wider across than along: a vertical scratch is filled
    from either side of it); a larger Gaussian where the first has no unmasked pixel in reach."""
    if not mask.any():
        return luma
    keep = (~mask).astype(np.float32)
    y = luma.astype(np.float32)
    out = y.copy()
    todo = mask.copy()
    for sx, sy in (sigma, (3 * sigma[0], 3 * sigma[1]), (12 * sigma[0], 12 * sigma[1])):
        num = cv2.GaussianBlur(y * keep, (0, 0), sigmaX=sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT)
        den = cv2.GaussianBlur(keep, (0, 0), sigmaX=sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT)
        ok = todo & (den > 1e-3)
        out[ok] = num[ok] / den[ok]
        todo &= ~ok
        if not todo.any():
            break
    if np.issubdtype(luma.dtype, np.integer):
        out = np.clip(np.rint(out), 0, np.iinfo(luma.dtype).max)
    return out.astype(luma.dtype)


class DefectFinder:
    """Finds dust and scratches frame by frame inside a shot; see the module docstring.

    ``find(luma)`` -> (H, W) bool mask of one frame (in order; :meth:`reset` at every
    shot start: the first frame of a shot has nothing to compare with and gets none).
    ``fill(luma)`` -> (N, H, W) luma of a batch with its defects filled (the finder's state moves
    on by N frames). Levels are in 8-bit codes; ``bits``: the film's luma depth.
    """

    def __init__(self, *, bits: int = 8, dust_contrast: float = 30.0, scratch_contrast: float = 18.0,
                 novelty: float = 20.0, reach: int = 3, line_reach: int = 6, dust_size: int = 11, scratch_width: int = 9,
                 scratch_run: float = 0.25, scratch_cover: float = 0.7, max_age: int = 16, dust_life: int = 3, grow: int = 1, blob_slack: int = 4,
                 search: int = 16, pad: int = 6, fit_rms: float = 14.0):
        self.scale = 1.0 / (1 << max(0, bits - 8))
        self.dust_contrast, self.scratch_contrast, self.novelty = dust_contrast, scratch_contrast, novelty
        self.reach, self.scratch_run, self.scratch_cover = reach, scratch_run, scratch_cover
        self.max_age, self.dust_life, self.grow = max_age, dust_life, grow
        self.dust_size, self.blob_slack = dust_size, blob_slack
        self.search, self.pad, self.fit_rms = search, pad, fit_rms
        self._disc = _ellipse(dust_size)
        self._hline = np.ones((1, scratch_width), np.uint8)
        self._near = _ellipse(2 * reach + 1)
        self._wide = np.ones((1, 2 * line_reach + 1), np.uint8)
        self._margin = max(reach, line_reach) + 2
        self._tall: np.ndarray | None = None  # (run, 3): a scratch drifts a little sideways
        self._column: np.ndarray | None = None  # (run, 1)
        self._step = np.ones((3, 3), np.uint8)
        self.reset()

    def reset(self) -> None:
        """A new shot: nothing before it is compared with."""
        self._prev: np.ndarray | None = None  # the previous frame (8-bit codes)
        self._res: dict | None = None  # the previous frame's spatial residuals (dust, line), per sign
        self._speck: np.ndarray | None = None  # per pixel: frames it has been a speck (signed: + bright, - dark)
        self._scratch: np.ndarray | None = None  # ... a scratch

    def _small(self, on: np.ndarray, y: np.ndarray | None = None, p: np.ndarray | None = None,
               sign: int = 1) -> np.ndarray:
        """The parts of ``on`` that are small blobs (no wider nor taller than a speck can be); given
        this frame ``y`` and the previous ``p``, only those that did not come from near by: where the
        blob's surroundings best match the previous frame (within ``search`` pixels), what was
        under it was not as bright (``sign`` -1: as dark). A small thing that moved is no speck."""
        if not on.any():
            return on
        n, labels, stats, _ = cv2.connectedComponentsWithStats(on.view(np.uint8), connectivity=8)
        big = self.dust_size + self.blob_slack
        ok = (stats[:, cv2.CC_STAT_WIDTH] <= big) & (stats[:, cv2.CC_STAT_HEIGHT] <= big)
        ok[0] = False
        if p is not None:
            for i in np.flatnonzero(ok):
                ok[i] = self._moved_in(labels, i, stats[i], y, p, sign) is False
        return ok[labels]

    def _moved_in(self, labels: np.ndarray, i: int, box: np.ndarray, y: np.ndarray, p: np.ndarray,
                  sign: int) -> bool:
        """Whether blob ``i`` was near by in ``p``: its surroundings' best match in ``p`` has it too."""
        h, w = y.shape
        x0, y0, bw, bh = (int(v) for v in box[:4])
        pad, r = self.pad, self.search
        ax, ay, bx, by = max(0, x0 - pad), max(0, y0 - pad), min(w, x0 + bw + pad), min(h, y0 + bh + pad)
        sx, sy, ex, ey = max(0, ax - r), max(0, ay - r), min(w, bx + r), min(h, by + r)
        tpl = np.ascontiguousarray(y[ay:by, ax:bx])
        blob = labels[ay:by, ax:bx] == i
        around = (cv2.dilate(blob.view(np.uint8), self._step) == 0)
        if around.sum() < 8:
            return True
        fit = cv2.matchTemplate(np.ascontiguousarray(p[sy:ey, sx:ex]), tpl, cv2.TM_SQDIFF,
                                mask=around.astype(np.float32))
        _, _, (mx, my), _ = cv2.minMaxLoc(fit)
        oy, ox = sy + my, sx + mx
        under = p[oy:oy + (by - ay), ox:ox + (bx - ax)]
        rms = float(np.sqrt(((tpl - under)[around] ** 2).mean()))
        if rms > self.fit_rms:  # the surroundings are not found: whether it moved is unknown
            return True
        # what was there, give or take a pixel (the match is to the pixel, the motion is not)
        wide = np.pad(p, 1, mode="edge")[oy:oy + (by - ay) + 2, ox:ox + (bx - ax) + 2]
        wide = (cv2.dilate if sign > 0 else cv2.erode)(wide, self._step)[1:-1, 1:-1]
        return float((sign * (tpl - wide))[blob].mean()) < self.novelty

    def _line(self, resid: np.ndarray) -> np.ndarray:
        """Pixels of ``resid`` (a horizontal top-hat) over the scratch contrast along most of a vertical run."""
        on = (resid > self.scratch_contrast).astype(np.float32)
        frac = cv2.blur(on, (1, self._run), borderType=cv2.BORDER_REFLECT)
        line = ((on > 0) & (frac >= self.scratch_cover)).view(np.uint8)
        return (cv2.dilate(line, self._column) > 0) & (on > 0)  # and on to its ends

    def find(self, luma: np.ndarray) -> np.ndarray:
        """One frame's (H, W) defect mask; the frame becomes the one the next is compared with."""
        y8 = luma if luma.dtype == np.uint8 else np.clip(luma * self.scale, 0, 255).astype(np.uint8)
        run = max(15, round(self.scratch_run * y8.shape[0])) | 1  # a scratch runs down much of the frame
        if self._tall is None or self._tall.shape[0] != run:
            self._run, self._tall, self._column = run, np.ones((run, 3), np.uint8), np.ones((run, 1), np.uint8)
        y = y8.astype(np.float32)
        p = None if self._prev is None else match_exposure(self._prev, y8).astype(np.float32)
        self._prev = y8
        res = {}
        speck = np.zeros(y8.shape, np.int16)  # per pixel: frames it has been a speck (+ bright, - dark)
        scratch = np.zeros(y8.shape, np.int16)  # ... a scratch
        for sign in (1, -1):
            if sign > 0:  # brighter than the background (a disc's, or across a line)
                dust = y - cv2.morphologyEx(y, cv2.MORPH_OPEN, self._disc)
                line = y - cv2.morphologyEx(y, cv2.MORPH_OPEN, self._hline)
            else:
                dust = cv2.morphologyEx(y, cv2.MORPH_CLOSE, self._disc) - y
                line = cv2.morphologyEx(y, cv2.MORPH_CLOSE, self._hline) - y
            along = cv2.blur(line, (1, self._run), borderType=cv2.BORDER_REFLECT)  # a line's, down its run
            res[sign] = dust, along
            if self._res is None:
                continue
            # and more so than anything near it a frame ago: what moved a little is no news
            dust0, along0 = self._res[sign]
            new = dust - cv2.dilate(dust0, self._near)
            new_line = along - cv2.dilate(along0, self._wide)
            m = self._margin  # the picture coming in at a side is no news
            new[:, :m] = new[:, -m:] = new[:m] = new[-m:] = 0
            new_line[:, :m] = new_line[:, -m:] = 0
            # a speck: a small strong blob, new, or where one was a frame ago (dust lives a few frames, in place)
            was = np.clip(self._speck * sign, 0, 255).astype(np.uint8)
            blob = dust > self.dust_contrast
            found = self._small(blob & (new > self.novelty), y, p, sign)
            kept = self._small(blob & (was > 0) & (was < self.dust_life))
            hit = found | kept
            speck[hit] = sign * (np.where(kept, was, 0)[hit].astype(np.int16) + 1)
            # a scratch: a line, new along most of its run, or along one found a frame ago (it drifts a little)
            line_c = self._line(line)
            if line_c.any():
                was = np.clip(self._scratch * sign, 0, 255).astype(np.uint8)
                near = cv2.dilate(np.where(was < self.max_age, was, 0).astype(np.uint8), self._tall)
                kept = line_c & (near > 0)
                hit = (line_c & (new_line > self.scratch_contrast)) | kept
                scratch[hit] = sign * (np.where(kept, near, 0)[hit].astype(np.int16) + 1)
        first = self._res is None
        self._res, self._speck, self._scratch = res, speck, scratch
        if first:
            return np.zeros(y8.shape, bool)
        mask = (speck != 0) | (scratch != 0)
        if self.grow and mask.any():  # the defect's soft edge (and the encoder's ringing) with it
            mask = cv2.dilate(mask.view(np.uint8), _ellipse(2 * self.grow + 1)) > 0
        return mask

    def fill(self, luma: np.ndarray) -> np.ndarray:
        """(N, H, W) luma -> the same with each frame's defects filled from around them (a copy
        where any is found; ``luma`` itself is never written)."""
        out = luma
        for i, frame in enumerate(luma):
            m = self.find(frame)
            if m.any():
                if out is luma:
                    out = luma.copy()
                out[i] = fill_masked(frame, m)
        return out
