"""The temporal smoother's arithmetic on torch tensors, where the colorizer's chroma is (a GPU).

:class:`~vidcolor.temporal.smooth.TemporalSmoother` picks this backend for a
device other than the CPU, so the chroma never leaves the device between the
colorizer and its quantisation to codes. The frame-to-frame flows are still
OpenCV's DIS on the CPU (on the smoother's worker thread, at the flow size,
with their confidence): here they are uploaded, brought to the chroma size,
and everything at the chroma size runs on the device: the warp of the
carried colour and precision (``grid_sample``: bilinear, borders
replicated, as ``cv2.remap`` with ``BORDER_REPLICATE``), the detail split
(a Gaussian with OpenCV's kernel and its mirrored border), the weights and
the blend. Same formulas as the numpy backend (:class:`NumpyOps` in
smooth.py); the results differ by float rounding and by ``cv2.remap``'s
1/32-pixel interpolation steps (tests/test_temporal_torch.py measures it).

Layout: chroma (2, h, w), precision and confidence (1, h, w); a frame's
motion is kept as ``grid_sample`` grids (1, h, w, 2), normalised.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .smooth import MAX_CONFIDENCE, MIN_CONFIDENCE

__all__ = ["TorchOps"]


@functools.lru_cache(maxsize=16)
def _reflect_index(n: int, pad: int) -> np.ndarray:
    """Indices of ``range(-pad, n + pad)`` mirrored into [0, n) without repeating the edge
    (OpenCV's BORDER_REFLECT_101, any ``pad``)."""
    i = np.arange(-pad, n + pad)
    if n == 1:
        return np.zeros_like(i)
    period = 2 * n - 2
    i = np.abs(i) % period
    return np.where(i >= n, period - i, i)


class TorchOps:
    """The smoother's operations on (C, h, w) tensors on ``device``; see the module docstring."""

    name = "torch"

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        # made once and kept on the device (a small upload each frame would wait on the queued work):
        self._base: dict[tuple[int, int], torch.Tensor] = {}  # pixel grids, per size
        self._consts: dict[tuple, torch.Tensor] = {}  # Gaussian kernels, border indices

    # -- in and out ------------------------------------------------------------------------
    def _upload(self, a: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(a, torch.Tensor):
            return a.to(self.device, torch.float32)
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        if self.device.type == "cuda":  # page-locked: copied by DMA, the host goes on
            t = t.pin_memory()
        return t.to(self.device, non_blocking=True)

    def take(self, batch):
        """A batch (chroma (N, 2, h, w) or confidence (N, h, w)) as float32 on the device."""
        return None if batch is None else self._upload(batch)

    def fresh(self, chroma: torch.Tensor) -> torch.Tensor:
        return chroma

    def out(self, chroma: torch.Tensor) -> torch.Tensor:
        return chroma

    # -- per frame ---------------------------------------------------------------------------
    def blur(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """``cv2.GaussianBlur(x, (0, 0), sigma)`` of (C, h, w) float32: OpenCV's kernel size and
        weights, separable, borders mirrored (BORDER_REFLECT_101)."""
        k = int(round(sigma * 4 * 2 + 1)) | 1  # OpenCV's size for float images
        c, h, w = x.shape
        p = k // 2
        g = self._const(("gauss", k, sigma), lambda: cv2.getGaussianKernel(k, sigma, cv2.CV_32F).ravel())
        x = x[:, :, self._const(("reflect", w, p), lambda: _reflect_index(w, p))]
        x = F.conv2d(x[None], g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)[0]
        x = x[:, self._const(("reflect", h, p), lambda: _reflect_index(h, p))]
        return F.conv2d(x[None], g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)[0]

    def _const(self, key: tuple, make) -> torch.Tensor:
        t = self._consts.get(key)
        if t is None:
            t = self._consts[key] = torch.from_numpy(make()).to(self.device)
        return t

    def weight(self, confidence: torch.Tensor | None, fresh: torch.Tensor) -> torch.Tensor:
        """The fresh colour's precision, (1, h, w): its confidence's odds (1 without one)."""
        if confidence is None:
            return torch.ones((1, *fresh.shape[-2:]), device=fresh.device)
        c = confidence.clamp(MIN_CONFIDENCE, MAX_CONFIDENCE)
        return (c / (1.0 - c))[None]

    def motion(self, m, fresh: torch.Tensor) -> tuple:
        """A :class:`~vidcolor.temporal.smooth.Motion` (its fields at the flow size, on the host)
        on the device at the chroma size: (forward grid, confidence, backward grid or None, its
        confidence or None)."""
        size = tuple(fresh.shape[-2:])
        fwd, conf = self._grid(self._flow(m.fwd, size)), self._resize(m.conf, size)
        if m.bwd is None:
            return fwd, conf, None, None
        return fwd, conf, self._grid(self._flow(m.bwd, size)), self._resize(m.bconf, size)

    def _resize(self, a: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        """(h, w) -> (1, H, W), bilinear (``cv2.resize``'s INTER_LINEAR: pixel centres aligned)."""
        t = self._upload(a)[None, None]
        if tuple(t.shape[-2:]) != size:
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
        return t[0]

    def _flow(self, flow: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        """(h, w, 2) flow -> (2, H, W), its vectors in the new size's pixels (:func:`~vidcolor.ops.resize_flow`)."""
        t = self._upload(flow).permute(2, 0, 1)[None]
        h, w = t.shape[-2:]
        H, W = size
        if (h, w) != (H, W):
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
            t = torch.cat((t[:, :1] * (W / w), t[:, 1:] * (H / h)), 1)
        return t[0]

    def _grid(self, flow: torch.Tensor) -> torch.Tensor:
        """(2, h, w) flow in pixels -> the (1, h, w, 2) ``grid_sample`` grid of ``x + flow(x)``."""
        h, w = flow.shape[-2:]
        base = self._base.get((h, w))
        if base is None:
            ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=self.device),
                                    torch.arange(w, dtype=torch.float32, device=self.device), indexing="ij")
            base = self._base[(h, w)] = torch.stack((xs, ys))
        pos = base + flow  # align_corners: -1 and 1 are the first and last pixels' centres
        return torch.stack((pos[0] * (2.0 / max(w - 1, 1)) - 1.0, pos[1] * (2.0 / max(h - 1, 1)) - 1.0), -1)[None]

    def step(self, state: tuple[torch.Tensor, torch.Tensor], fresh: torch.Tensor, weight: torch.Tensor,
             grid: torch.Tensor, conf: torch.Tensor, strength: float):
        """The numpy backend's step: the state (colour, precision) carried along the motion and fused
        with the fresh colour by precision. Returns (new state, carried state)."""
        both = F.grid_sample(torch.cat(state)[None], grid, mode="bilinear", padding_mode="border",
                             align_corners=True)[0]  # colour and precision sampled together
        colour, prec = both[:2], both[2:] * conf * strength
        total = weight + prec
        out = fresh + (prec / total.clamp_min(1e-6)) * (colour - fresh)
        return (out, total), (colour, prec)

    def fuse(self, mix: torch.Tensor, f_prec: torch.Tensor, b_col: torch.Tensor, b_prec: torch.Tensor) -> torch.Tensor:
        """The forward pass's colour and the backward pass's, by their precisions."""
        return mix + (b_prec / (f_prec + b_prec).clamp_min(1e-6)) * (b_col - mix)
