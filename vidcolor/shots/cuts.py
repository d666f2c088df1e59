"""The classical change score between two frames, and the hard-cut test both detectors share.

A frame's features (``FrameFeatures``, made by ``FeatureExtractor`` from a
gray thumbnail): a soft-binned luminance histogram, the picture shrunk to
32x18 with and without its mean brightness, and an edge map. ``change_score``
compares two frames, 0..100: histogram distance, change of the picture less
its mean brightness, edge change ratio; a global exposure change within
``FLICKER_GAIN`` (an old print's flicker) is undone first, so flicker is not a cut.

``CutTest`` decides whether the change into frame ``c`` is a hard cut, as in
PySceneDetect's AdaptiveDetector: the score is at least ``min_score``,
neither frame is black, and the score is at least ``ratio`` times the mean
score of the ``window`` frames each side; and the change holds between the
frames just before and just after (at least half of it), so a flash of one
or two frames, or a glitch, is no cut. The `histogram` detector asks it of
every frame; the `transnet` detector asks it to confirm or veto the
network's peaks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..config import HistogramConfig

__all__ = ["FrameFeatures", "FeatureExtractor", "change_score", "l1", "CutTest", "SMALL", "FLASH_PAIRS"]

SMALL = (32, 18)  # (w, h) of the picture compared pixel by pixel
_NORM_SD = 48.0  # contrast of the exposure-normalised histogram
FLICKER_GAIN = 1.45  # most exposure ratio between two frames of one shot that flicker undoes
_KERNEL = np.ones((3, 3), np.uint8)
# (a, b) offsets from the frame after a change: the frames just before and just after it, compared
# to see whether the change holds (in this order; the first that differs by less than half ends the test)
FLASH_PAIRS = ((-2, 0), (-3, 0), (-1, 1), (-2, 1), (-1, 2))


@dataclass(slots=True)
class FrameFeatures:
    """A frame as the change score sees it."""

    mean: float
    sd: float
    hist: np.ndarray  # (bins,) float32, sums to 1
    nhist: np.ndarray  # the same of the thumbnail at a standard mean and contrast: the histogram whatever the exposure
    grid: np.ndarray  # (18, 32) float32, 0..255
    flat: np.ndarray  # grid less its mean: the picture whatever the exposure
    edges: np.ndarray  # (h, w) bool, the thumbnail's size
    grown: np.ndarray  # edges dilated by one pixel
    n_edges: int
    black: bool
    score: float = 0.0  # change score from the previous frame, 0..100 (set by the detector)


def l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference."""
    return cv2.norm(a, b, cv2.NORM_L1) / a.size


class FeatureExtractor:
    """``FrameFeatures`` of (H, W) uint8 gray thumbnails of ``thumb_size``
    (width, height; others are resized to it): a ``bins``-bin histogram; a
    frame is black when its mean and standard deviation (0..255) are at
    most ``black_level`` and ``black_sd``."""

    def __init__(self, thumb_size: tuple[int, int], bins: int = 32, black_level: float = 20.0,
                 black_sd: float = 10.0):
        self.thumb_size, self.bins = tuple(thumb_size), int(bins)
        self.black_level, self.black_sd = float(black_level), float(black_sd)
        w, h = self.thumb_size
        # soft binning: each gray level spread over neighbouring bins (Gaussian, one bin wide), so
        # that film flicker does not flip a narrow histogram from one bin to the next
        centres = (np.arange(self.bins) + 0.5) * (256 / self.bins)
        soft = np.exp(-0.5 * ((np.arange(256)[:, None] + 0.5 - centres[None, :]) / (256 / self.bins)) ** 2)
        self._soft = (soft / soft.sum(axis=1, keepdims=True) / (w * h)).astype(np.float32)

    def __call__(self, thumb: np.ndarray) -> FrameFeatures:
        w, h = self.thumb_size
        if thumb.ndim != 2 or thumb.dtype != np.uint8:
            raise ValueError(f"a thumbnail must be an (H, W) uint8 gray array, got {thumb.shape} {thumb.dtype}")
        if thumb.shape != (h, w):
            thumb = cv2.resize(thumb, (w, h), interpolation=cv2.INTER_AREA)
        counts = cv2.calcHist([thumb], [0], None, [256], [0, 256]).ravel()
        hist = counts @ self._soft
        grid = cv2.resize(thumb, SMALL, interpolation=cv2.INTER_AREA).astype(np.float32)
        mean, sd = cv2.meanStdDev(grid)
        mean, sd = float(mean[0, 0]), float(sd[0, 0])
        # the gray levels moved to mean 128 and standard deviation _NORM_SD (a flicker's gain and offset undone)
        levels = np.clip(np.rint(128 + (np.arange(256) + 0.5 - mean) * (_NORM_SD / max(sd, 4.0))), 0, 255)
        nhist = np.bincount(levels.astype(np.intp), weights=counts, minlength=256).astype(np.float32) @ self._soft
        blur = cv2.GaussianBlur(thumb, (3, 3), 0)
        mag = cv2.add(cv2.convertScaleAbs(cv2.Sobel(blur, cv2.CV_16S, 1, 0)),
                      cv2.convertScaleAbs(cv2.Sobel(blur, cv2.CV_16S, 0, 1)))
        # edges: the strongest 15% of gradients, and none weaker than film grain makes
        counts = np.bincount(mag.ravel(), minlength=256)
        level = max(40, int(np.searchsorted(np.cumsum(counts), 0.85 * mag.size)))
        edges = mag > level
        grown = cv2.dilate(edges.view(np.uint8), _KERNEL).view(bool)
        black = mean <= self.black_level and sd <= self.black_sd
        return FrameFeatures(mean, sd, hist, nhist, grid, grid - np.float32(mean), edges, grown,
                             int(np.count_nonzero(edges)), black)


def change_score(a: FrameFeatures, b: FrameFeatures) -> float:
    """Change score between two frames, 0..100."""
    hd = 0.5 * cv2.norm(a.hist, b.hist, cv2.NORM_L1)
    # flicker is not a cut: a global exposure change (gain and offset) within what a scanned print's
    # flicker does is undone before comparing (the histograms at a standard mean and contrast, the
    # pictures less their means with b's contrast fitted to a's)
    gain = max(a.sd, 1.0) / max(b.sd, 1.0)
    if 1 / FLICKER_GAIN <= gain <= FLICKER_GAIN:
        hd = min(hd, 0.5 * cv2.norm(a.nhist, b.nhist, cv2.NORM_L1))
    else:
        gain = 1.0
    pd = min(1.0, min(l1(a.flat, b.flat), l1(a.flat, b.flat * np.float32(gain))) / 48.0)
    ecr = 0.0
    few = min(a.n_edges, b.n_edges)
    if few:  # edge change ratio, trusted as far as both frames have edges
        enter = np.count_nonzero(b.edges & ~a.grown) / b.n_edges
        leave = np.count_nonzero(a.edges & ~b.grown) / a.n_edges
        ecr = max(enter, leave) * min(1.0, few / (0.1 * a.edges.size))
    return float(100.0 * (hd + pd + ecr) / 3.0)


@dataclass(frozen=True)
class CutTest:
    """Is the change into frame ``c`` a hard cut? See the module docstring.

    The frames are given by functions of a frame index: ``score(j)``, the
    change score into frame ``j`` (0..100); ``black(j)``; ``distance(a, b)``,
    the change score between frames ``a`` and ``b`` (nan where ``a`` is not
    known). ``last`` is the last frame known; ``first`` the first whose
    score is.
    """

    ratio: float = HistogramConfig.threshold  # times the neighbours' mean score
    min_score: float = HistogramConfig.min_score  # 0..100
    window: int = HistogramConfig.window  # neighbours each side

    def strong(self, c: int, score: Callable[[int], float], black: Callable[[int], bool]) -> bool:
        """The change into ``c`` is at least ``min_score`` (a nan score is not) and neither frame is black."""
        return score(c) >= self.min_score and not black(c) and not black(c - 1)

    def stands_out(self, c: int, last: int, score: Callable[[int], float], first: int = 1) -> bool:
        """The score into ``c`` is at least ``ratio`` times the mean of its neighbours' (at least 0.5)."""
        near = [score(j) for j in range(max(1, c - self.window, first), min(last, c + self.window) + 1) if j != c]
        base = sum(near) / len(near) if near else 0.0
        return score(c) >= self.ratio * max(base, 0.5)

    def undone(self, c: int, last: int, score: Callable[[int], float],
               distance: Callable[[int, int], float]) -> bool:
        """The change into ``c`` does not hold: frames just before and just after it (up to
        ``c + 2``, where known) differ by less than half of it, as around a flash."""
        s = score(c)
        for da, db in FLASH_PAIRS:
            if c + db <= last and distance(c + da, c + db) < 0.5 * s:  # nan (unknown) compares False
                return True
        return False

    def __call__(self, c: int, last: int, score: Callable[[int], float], black: Callable[[int], bool],
                 distance: Callable[[int, int], float], first: int = 1) -> bool:
        return (self.strong(c, score, black) and self.stands_out(c, last, score, first)
                and not self.undone(c, last, score, distance))

