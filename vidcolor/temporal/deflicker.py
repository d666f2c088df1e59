"""``--deflicker``: the output luma's exposure equalised frame to frame (opt-in).

The one option that changes a film's luminance: everything else in vidcolor
passes the luma through untouched. A scanned print flickers, its exposure
jumping from frame to frame; an archivist may want that gone from the
colour master. Per shot, each frame's exposure is measured (the mean and
standard deviation of its luma, on every other pixel of every other row) and
followed by a target that moves slowly (an exponential moving average over
about ``span`` frames, started at the shot's first frame); the frame's luma
gets the gain and offset that bring its exposure to the target (gain kept
within [1/``max_gain``, ``max_gain``]), rounded and clipped to the codes of
the film's bit depth. Jumps frame to frame go; slow changes (a lamp dimming
over seconds) stay, a few frames late. Where the colorizer's chroma follows
each frame's exposure (the exemplar's: a dimmer frame has proportionally
less chroma), :func:`exposed_codes` scales the chroma by the same gains
(``gains``: the last call's), so that luma and colour are steadied together;
otherwise the chroma is the colorizer's, as it is.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Deflicker", "exposed_codes"]


class Deflicker:
    """Equalises each frame's luma exposure to the shot's slowly moving one; see the module docstring.
    ``reset()`` at every shot's start."""

    def __init__(self, *, bits: int = 8, span: float = 12.0, max_gain: float = 1.6):
        if span < 1 or max_gain < 1:
            raise ValueError(f"deflicker: need span >= 1 and max_gain >= 1, got {span}, {max_gain}")
        self.top = float((1 << bits) - 1)
        self.dtype = np.uint8 if bits <= 8 else np.uint16
        self.alpha = 1.0 / float(span)
        self.max_gain = float(max_gain)
        self.reset()

    def reset(self) -> None:
        self._target: tuple[float, float] | None = None
        self.gains: list[float] = []  # the last call's gain per frame

    def __call__(self, luma: np.ndarray) -> np.ndarray:
        """(N, H, W) luma codes of consecutive frames of one shot -> the same, deflickered."""
        out = np.empty_like(luma)
        self.gains = [1.0] * len(luma)
        for i, y in enumerate(luma):
            sample = y[::2, ::2].astype(np.float32)
            m, s = float(sample.mean()), float(sample.std())
            if self._target is None:
                self._target = (m, s)
            tm, ts = self._target
            tm, ts = tm + self.alpha * (m - tm), ts + self.alpha * (s - ts)
            self._target = (tm, ts)
            g = float(np.clip(ts / s, 1 / self.max_gain, self.max_gain)) if s > 1e-3 else 1.0
            o = tm - g * m
            if abs(g - 1.0) * self.top < 0.5 and abs(o) < 0.5:
                out[i] = y
                continue
            out[i] = np.clip(np.rint(y.astype(np.float32) * g + o), 0, self.top).astype(self.dtype)
            self.gains[i] = g
        return out


def exposed_codes(codes: np.ndarray, gains: list[float], centre: float, top: int) -> np.ndarray:
    """(N, 2, h, w) Cb/Cr codes, each frame's scaled about the neutral ``centre`` by its gain (a
    :class:`Deflicker`'s ``gains``), clipped to [0, ``top``]."""
    if all(abs(g - 1.0) < 1e-6 for g in gains):
        return codes
    out = np.empty_like(codes)
    for i, (c, g) in enumerate(zip(codes, gains)):
        out[i] = np.clip(np.rint(centre + (c.astype(np.float32) - centre) * np.float32(g)), 0, top)
    return out
