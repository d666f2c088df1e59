"""Luma planes in, chroma codes out: the colorizer of the current shot at the film's chroma resolution."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .color import YCbCrSpec, lab_to_chroma_codes, luma_lut, quantize_chroma
from .models import Colorizer

__all__ = ["FrameColorist", "luma_for_output"]


class FrameColorist:
    """Turns batches of luma planes into chroma planes on the device."""

    def __init__(self, colorizer: Colorizer, device: torch.device, in_spec: YCbCrSpec, out_spec: YCbCrSpec,
                 chroma_size: tuple[int, int], size: tuple[int, int]):
        self.colorizer = colorizer
        self.device = device
        self.lut = luma_lut(in_spec, device)
        self._lut_np = self.lut.numpy() if device.type == "cpu" and len(self.lut) == 256 else None
        self.in_spec, self.out_spec = in_spec, out_spec
        self.chroma_size = chroma_size
        h, w = size
        self.pool = (round(h / chroma_size[0]), round(w / chroma_size[1]))
        self.neutral = False  # True: this shot stays black and white (a/b = 0)
        self.exposure: list | None = None  # the last answer's frames' exposures (Colorizer.exposure)
        self.grainy = False  # the print is grainy (the pipeline's grain filter is on): Colorizer.grainy

    @property
    def _full(self) -> bool:
        """The colorizer takes the luma's full size (:attr:`Colorizer.full_luma`), larger than the chroma's."""
        return self.colorizer.full_luma and self.pool != (1, 1)

    def _luma_to_l(self, luma: np.ndarray, full: bool = False) -> torch.Tensor:
        """(N, H, W) luma codes -> (N, 1, h, w) L at the chroma resolution (``full``: at the luma's)."""
        hc, wc = self.chroma_size
        if self.device.type == "cpu":
            if self.pool != (1, 1) and not full:  # OpenCV's area resize is ~10x faster than torch's pooling here
                luma = np.stack([cv2.resize(f, (wc, hc), interpolation=cv2.INTER_AREA) for f in luma])
            if luma.dtype == np.uint8 and self._lut_np is not None:  # OpenCV's look-up: 4x torch's gather's speed
                return torch.from_numpy(np.stack([cv2.LUT(f, self._lut_np) for f in luma])).unsqueeze(1)
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
    def predict(self, luma: np.ndarray, motions: list | None = None) -> torch.Tensor:
        """(N, H, W) luma codes -> (N, 2, h, w) float chroma at the chroma size, in the
        colorizer's own terms (Lab a/b or Cb/Cr): what temporal smoothing works on.
        ``motions``: the frames' motion from the temporal smoother (:attr:`Colorizer.motions`)."""
        n = len(luma)
        self.exposure = None
        if self.neutral:
            return torch.zeros(n, 2, *self.chroma_size, device=self.device)
        full = self._full
        L = self._luma_to_l(luma, full=full)
        self.colorizer.out_size = self.chroma_size if full else None
        self.colorizer.motions = motions
        self.colorizer.grainy = self.grainy
        ab = self.colorizer.colorize(L)
        self.exposure = self.colorizer.exposure
        if full:
            if ab.shape[-2:] != self.chroma_size:
                ab = F.adaptive_avg_pool2d(ab, self.chroma_size)
        elif ab.shape[-2:] != L.shape[-2:]:
            ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return ab.float()

    @torch.inference_mode()
    def confidence(self) -> torch.Tensor | None:
        """The colorizer's confidence in its last answer, (N, h, w) at the chroma size, on the device, or None."""
        c = self.colorizer.confidence
        if c is None or self.neutral:
            return None
        if c.shape[-2:] != self.chroma_size:
            c = F.interpolate(c.float(), size=self.chroma_size, mode="bilinear", align_corners=False)
        return c[:, 0]

    def pinned(self) -> list[bool] | None:
        """Per frame of the last answer, whether its chroma was given, not guessed (a keyframe's own frame)."""
        return None if self.neutral else self.colorizer.pinned

    @torch.inference_mode()
    def codes(self, luma: np.ndarray, chroma: torch.Tensor | Sequence, exposure: list | None = None) -> np.ndarray:
        """Chroma from :meth:`predict` (smoothed or not: (N, 2, h, w), or a (2, h, w) numpy array or
        tensor per frame) -> the output's Cb/Cr codes; ``exposure``: the frames' entries of
        :attr:`exposure` (None: none), each frame's chroma given its exposure first."""
        if self.neutral:
            return np.full((len(luma), 2, *self.chroma_size), self.out_spec.chroma_scale()[0],
                           np.uint8 if self.out_spec.bits == 8 else np.uint16)
        if not isinstance(chroma, torch.Tensor):
            chroma = torch.stack(list(chroma)) if isinstance(chroma[0], torch.Tensor) else torch.from_numpy(np.stack(chroma))
        chroma = chroma.to(self.device)
        if exposure is not None and any(f is not None for f in exposure):
            chroma = self.colorizer.expose(chroma.float(), self._luma_to_l(luma, full=self._full), exposure)
        if self.colorizer.chroma == "cbcr":
            return quantize_chroma(chroma, self.out_spec).cpu().numpy()
        L = self._luma_to_l(luma)
        return lab_to_chroma_codes(torch.cat((L, chroma.to(L.dtype)), dim=1), self.out_spec)

    def __call__(self, luma: np.ndarray) -> np.ndarray:
        chroma = self.predict(luma)
        return self.codes(luma, chroma, self.exposure)


def luma_for_output(luma: np.ndarray, in_bits: int, out_bits: int) -> np.ndarray:
    if in_bits == out_bits:
        return luma
    shift = out_bits - in_bits
    x = luma.astype(np.int64)
    x = x << shift if shift > 0 else (x + (1 << (-shift - 1))) >> -shift
    return x.astype(np.uint8 if out_bits == 8 else np.uint16)
