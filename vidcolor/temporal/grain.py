"""A grainy print's grain smoothed out of the luma the colour is worked out from.

Film grain is fresh every frame: the flows (to the still, frame to frame)
match grain against grain, and the luminance checks and guided filters that
decide where colour goes read it as detail. On the old-film benchmark's
copies of the development clips at twice its grain (crf 0, a keyframe still),
montage lost 1.0 dB to grain alone (45.61 clean, 44.61 grainy); with this
filter 45.06 (carphone 39.18 -> 39.29, street 39.20 -> 39.36).

:class:`GrainFilter` gives the colour side (colorizer, temporal smoother,
the codes) an edge-preserving smoothed copy of a grainy print's luma: a
bilateral filter (``DIAMETER`` px, spatial sigma ``SIGMA_SPACE``) whose range
sigma is ``SIGMA_COLOR`` times the grain's s.d., so that grain is averaged
away and an edge a few times stronger than the grain is kept. The grain is
measured on each batch's first frame (:func:`vidcolor.ops.flat_noise`: the
fine detail in the picture's flattest blocks, 8-bit codes); under
``GRAIN_FLOOR`` (a clean video's own noise: 0.25-0.95 codes on the
development clips, 3 with the benchmark's grain, 5-6 at twice it) nothing
is done, so a clean film's colour is exactly what it was; once on in a
shot, the filter stays on until the grain falls under ``HOLD`` x the floor (a
print whose grain is near the floor is not filtered batch on, batch off,
which would make its colour flicker). The film's own luma is never altered:
the output keeps its grain.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..ops import flat_noise

__all__ = ["GrainFilter", "grain_level"]

GRAIN_FLOOR = 1.5  # 8-bit codes of grain s.d. under which the luma is left as it is
SIGMA_COLOR = 5.0  # the bilateral filter's range sigma, times the grain's s.d.
SIGMA_SPACE = 2.0  # its spatial sigma, pixels
DIAMETER = 5  # its neighbourhood, pixels
HOLD = 0.8  # once on in a shot, the filter stays on down to this share of the floor


def grain_level(luma: np.ndarray, bits: int = 8) -> float:
    """The grain (or noise) s.d. of one (H, W) frame's luma, in 8-bit codes."""
    x = torch.from_numpy(np.ascontiguousarray(luma, dtype=np.float32))[None, None]
    return float(flat_noise(x)[0]) / float(1 << (bits - 8))


class GrainFilter:
    """The colour side's copy of a batch of luma frames with a grainy print's grain smoothed out (see
    the module docstring). ``bits``: the luma's bit depth (uint8 for 8, uint16 above)."""

    def __init__(self, *, bits: int = 8, floor: float = GRAIN_FLOOR, sigma_color: float = SIGMA_COLOR):
        self.bits = bits
        self.floor = floor
        self.sigma_color = sigma_color
        self.level = 0.0  # the grain last measured (8-bit codes)
        self.on = False  # whether the shot's last batch was filtered

    def reset(self) -> None:
        """A new shot: the grain is measured afresh (per batch), the filter off until it is over the floor."""
        self.level = 0.0
        self.on = False

    def __call__(self, luma: np.ndarray) -> np.ndarray:
        """(N, H, W) luma -> the same, smoothed where the print is grainy (a new array), else ``luma`` itself."""
        if len(luma) == 0:
            return luma
        self.level = grain_level(luma[0], self.bits)
        self.on = self.level >= (HOLD * self.floor if self.on else self.floor)
        if not self.on:
            return luma
        scale = float(1 << (self.bits - 8))
        sc = self.sigma_color * self.level * scale
        if luma.dtype == np.uint8:
            return np.stack([cv2.bilateralFilter(x, DIAMETER, sc, SIGMA_SPACE) for x in luma])
        out = [cv2.bilateralFilter(x.astype(np.float32), DIAMETER, sc, SIGMA_SPACE) for x in luma]
        hi = float((1 << self.bits) - 1)
        return np.stack([np.clip(np.rint(x), 0, hi) for x in out]).astype(luma.dtype)
