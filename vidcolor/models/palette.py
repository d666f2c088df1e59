"""``--palette IMAGE``: match the output's colour distribution to a still's.

For archivists who know a film's period palette but have no still of its
scenes (Larsson et al. 2016's partially automatic mode, with a target
histogram): the predicted a/b are written as chroma C = |ab| and hue
h = atan2(b, a), and each is quantile-matched to the still's.

- Chroma: plain quantile matching (the output's C quantiles become the still's).
- Hue: a circle, so both hue distributions are cut open at the angle where
  together they are sparsest, then quantile-matched with each pixel weighted
  by its chroma (the hue of a near-gray pixel is noise and should not count).

Luminance is never touched; only a/b move.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from ..errors import InputError

__all__ = ["Palette", "match_palette", "weighted_quantiles"]

LEVELS = np.linspace(0.0, 1.0, 257)
_MAX_SAMPLES = 200_000


def weighted_quantiles(x: np.ndarray, w: np.ndarray | None, levels: np.ndarray = LEVELS) -> np.ndarray:
    """Quantiles of samples ``x`` with weights ``w`` (None: equal) at ``levels`` in [0, 1]."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="stable")
    xs = x[order]
    ws = np.ones_like(xs) if w is None else np.asarray(w, dtype=np.float64).ravel()[order] + 1e-12
    cw = np.cumsum(ws)
    cdf = (cw - 0.5 * ws) / cw[-1]
    return np.interp(levels, cdf, xs)


def _match(x: np.ndarray, w: np.ndarray | None, target_q: np.ndarray) -> np.ndarray:
    src_q = weighted_quantiles(x, w)
    src_q = src_q + LEVELS * 1e-7  # strictly increasing for np.interp
    return np.interp(x, src_q, target_q)


def _polar(ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.hypot(ab[..., 0], ab[..., 1]), np.arctan2(ab[..., 1], ab[..., 0])


def _sparsest_angle(h1, w1, h2, w2, bins: int = 72) -> float:
    edges = np.linspace(-np.pi, np.pi, bins + 1)
    d1 = np.histogram(h1, edges, weights=w1)[0]
    d2 = np.histogram(h2, edges, weights=w2)[0]
    d = d1 / max(d1.sum(), 1e-12) + d2 / max(d2.sum(), 1e-12)
    d = d + 0.5 * (np.roll(d, 1) + np.roll(d, -1))  # a gap, not a single empty bin between neighbours
    i = int(np.argmin(d))
    return float(0.5 * (edges[i] + edges[i + 1]))


def match_palette(ab: np.ndarray, target_ab: np.ndarray) -> np.ndarray:
    """(..., 2) a/b -> (..., 2) a/b whose chroma quantiles and chroma-weighted hue
    quantiles are ``target_ab``'s ((M, 2) samples)."""
    shape = ab.shape
    src = np.asarray(ab, dtype=np.float64).reshape(-1, 2)
    tgt = np.asarray(target_ab, dtype=np.float64).reshape(-1, 2)
    c, h = _polar(src)
    tc, th = _polar(tgt)
    c2 = _match(c, None, weighted_quantiles(tc, None))
    cut = _sparsest_angle(h, c, th, tc)
    hu = np.mod(h - cut, 2 * np.pi)
    thu = np.mod(th - cut, 2 * np.pi)
    h2 = _match(hu, c, weighted_quantiles(thu, tc)) + cut
    out = np.stack((c2 * np.cos(h2), c2 * np.sin(h2)), axis=-1)
    return out.reshape(shape)


class Palette:
    """A target colour distribution (a still's a/b samples) to match outputs to."""

    def __init__(self, target_ab: np.ndarray):
        t = np.asarray(target_ab, dtype=np.float32).reshape(-1, 2)
        if len(t) > _MAX_SAMPLES:
            t = t[np.random.default_rng(0).choice(len(t), _MAX_SAMPLES, replace=False)]
        self.target = t

    @classmethod
    def from_image(cls, path: str | os.PathLike) -> "Palette":
        """The a/b of a colour still (read at most 512 px on its long side)."""
        import cv2

        from ..io.image import read_image

        img = read_image(path)
        rgb = img.astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)
        s = 512 / max(rgb.shape[:2])
        if s < 1:
            rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))),
                             interpolation=cv2.INTER_AREA)
        ab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2Lab)[..., 1:]
        if float(np.hypot(ab[..., 0], ab[..., 1]).mean()) < 2.0:
            raise InputError("the palette still has no colour (it is black and white)", path)
        return cls(ab)

    def apply(self, ab: torch.Tensor) -> torch.Tensor:
        """(N, 2, H, W) a/b -> the same, each image matched to the palette."""
        arr = ab.detach().float().cpu().permute(0, 2, 3, 1).numpy()
        out = np.stack([match_palette(a, self.target) for a in arr]).astype(np.float32)
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(ab.device, ab.dtype)
