"""TransNetV2's windowed inference, streamed: frames in, per-frame probabilities out.

As the original inference: 25 copies of the first frame before the film,
copies of the last frame after it, 100-frame windows every 50 frames, and of
each window only the predictions for its middle 50 frames are kept. Window
``k`` covers frames ``50k-25 .. 50k+74`` and decides frames ``50k .. 50k+49``,
so it runs once frame ``50k+74`` has come (or the film has ended); only the
frames a window still to run needs are held.
"""
from __future__ import annotations

import numpy as np
import torch

from .transnet_net import CONTEXT, STEP, WINDOW, predict_windows

__all__ = ["WindowedPredictor"]


class WindowedPredictor:
    """Feeds ``net`` on ``device``, ``batch`` windows a call at most.

    :meth:`push` takes a (27, 48, 3) uint8 RGB frame and, once ``ready``
    windows can run, runs them and returns the new probabilities (two lists
    of floats, the next frames' in order: the single-frame head, that the
    frame is the last of its shot; the all-frames head, that it belongs to a
    transition); else None. :meth:`finish` runs what is left at the end of
    the film and starts over.
    """

    def __init__(self, net: torch.nn.Module, device: torch.device, batch: int):
        self.net, self.device, self.batch = net, device, batch
        self.reset()

    def reset(self) -> None:
        self.frames: list[np.ndarray] = []  # RGB frames from frame self.first on
        self.first = 0
        self.n = 0  # frames pushed
        self.k = 0  # next window

    def push(self, rgb: np.ndarray, ready: int = 1) -> tuple[list[float], list[float]] | None:
        self.frames.append(rgb)
        self.n += 1
        last = (self.n - 1 - (CONTEXT + STEP - 1)) // STEP  # window k needs frames up to 50k + 74
        if last + 1 - self.k >= ready:
            return self._run(last)
        return None

    def finish(self) -> tuple[list[float], list[float]]:
        """The probabilities not yet returned (of the last frames), then start over."""
        try:
            return self._run((self.n - 1) // STEP) if self.n else ([], [])
        finally:
            self.reset()

    def _window(self, k: int) -> np.ndarray:
        idx = np.clip(np.arange(k * STEP - CONTEXT, k * STEP - CONTEXT + WINDOW), 0, self.n - 1) - self.first
        return np.stack([self.frames[i] for i in idx])

    def _run(self, last: int) -> tuple[list[float], list[float]]:
        """Predict windows self.k .. last."""
        if last < self.k:
            return [], []
        wins = np.stack([self._window(k) for k in range(self.k, last + 1)])
        p1, pm = predict_windows(self.net, wins, self.device, self.batch)
        n_new = min((last + 1) * STEP, self.n) - self.k * STEP
        self.k = last + 1
        drop = max(0, min(self.k * STEP - CONTEXT, self.n - 1) - self.first)
        del self.frames[:drop]
        self.first += drop
        return p1.reshape(-1)[:n_new].tolist(), pm.reshape(-1)[:n_new].tolist()
