"""Colour conventions: Lab as kornia defines it and the video Y'CbCr planes.

Tensors are NCHW, RGB in [0, 1], L in [0, 100], a and b in about
[-128, 127]. Luminance never changes: the output's luma plane is the input's,
and colour reaches the video as Cb/Cr computed from the Lab result.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import kornia.color
import numpy as np
import torch

__all__ = [
    "YCbCrSpec",
    "luma_lut",
    "gray_to_l",
    "lab_to_rgb",
    "rgb_to_lab",
    "rgb_to_cbcr",
    "rgb_to_luma",
    "ycbcr_to_rgb",
    "quantize_chroma",
    "mean_chroma",
    "lab_to_chroma_codes",
]

# (Kr, Kb) of the Y'CbCr matrices, by FFmpeg's AVColorSpace number.
_MATRICES = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (= BT.601 625)
    6: (0.299, 0.114),  # SMPTE 170M (= BT.601 525)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
    10: (0.2627, 0.0593),  # BT.2020 constant luminance (approximated as NCL)
}
BT601, BT709 = 6, 1


@dataclass(frozen=True)
class YCbCrSpec:
    """How Y'CbCr codes map to R'G'B' for one video.

    ``colorspace`` is FFmpeg's AVColorSpace number (1 = BT.709, 6 = BT.601),
    ``full_range`` is True for JPEG/"pc" range, ``bits`` the sample depth.
    """

    colorspace: int
    full_range: bool
    bits: int

    @property
    def kr_kb(self) -> tuple[float, float]:
        return _MATRICES.get(self.colorspace, _MATRICES[BT601])

    @property
    def max_code(self) -> int:
        return (1 << self.bits) - 1

    def luma_scale(self) -> tuple[float, float]:
        """(offset, span) so that Y' in [0, 1] = (code - offset) / span."""
        s = 1 << (self.bits - 8)
        return (0.0, float(self.max_code)) if self.full_range else (16.0 * s, 219.0 * s)

    def chroma_scale(self) -> tuple[float, float]:
        """(centre, span) so that Cb in [-0.5, 0.5] = (code - centre) / span."""
        s = 1 << (self.bits - 8)
        return (128.0 * s, float(self.max_code)) if self.full_range else (128.0 * s, 224.0 * s)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(*, 3, H, W) sRGB in [0, 1] -> Lab (L 0..100, a/b about -128..127)."""
    if rgb.dim() < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"Input size must have a shape of (*, 3, H, W). Got {tuple(rgb.shape)}")
    return kornia.color.rgb_to_lab(rgb.clamp(0, 1))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(*, 3, H, W) Lab -> sRGB in [0, 1], out-of-gamut values clipped.

    kornia's conversion, except for CPU tensors outside autograd, which go
    through OpenCV's (same D65 sRGB definition, within 1e-3 where in gamut,
    and 3-4x faster on a CPU).
    """
    if lab.dim() < 3 or lab.shape[-3] != 3:
        raise ValueError(f"Input size must have a shape of (*, 3, H, W). Got {tuple(lab.shape)}")
    if lab.device.type == "cpu" and not lab.requires_grad and lab.dim() == 4:
        return _lab_to_rgb_cv2(lab)
    return kornia.color.lab_to_rgb(lab, clip=True)


def _lab_to_rgb_cv2(lab: torch.Tensor) -> torch.Tensor:
    arr = lab.detach().to(torch.float32).permute(0, 2, 3, 1).contiguous().numpy()
    out = np.empty_like(arr)
    for i in range(arr.shape[0]):
        cv2.cvtColor(arr[i], cv2.COLOR_Lab2RGB, dst=out[i])
    np.clip(out, 0.0, 1.0, out=out)
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(lab.dtype)


def gray_to_l(gray: torch.Tensor) -> torch.Tensor:
    """(*, 1, H, W) gray R'=G'=B' in [0, 1] -> L in [0, 100] (the Lab L of that gray)."""
    return kornia.color.rgb_to_lab(gray.clamp(0, 1).expand(*gray.shape[:-3], 3, *gray.shape[-2:]))[..., :1, :, :]


def luma_lut(spec: YCbCrSpec, device: torch.device | str = "cpu") -> torch.Tensor:
    """Table from every luma code to its L, so a frame's L is one gather.

    The video's luma codes are read as a gray R'G'B' (that is what a player
    shows for a black-and-white film) and converted to Lab L by kornia.
    """
    offset, span = spec.luma_scale()
    codes = torch.arange(spec.max_code + 1, dtype=torch.float32, device=device)
    y = ((codes - offset) / span).clamp(0, 1)
    return gray_to_l(y.view(1, 1, 1, -1)).flatten()


def rgb_to_cbcr(rgb: torch.Tensor, spec: YCbCrSpec) -> torch.Tensor:
    """(N, 3, H, W) R'G'B' in [0, 1] -> (N, 2, H, W) Cb, Cr in [-0.5, 0.5]."""
    kr, kb = spec.kr_kb
    r, g, b = rgb.unbind(-3)
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb = (b - y) / (2 * (1 - kb))
    cr = (r - y) / (2 * (1 - kr))
    return torch.stack((cb, cr), dim=-3)


def rgb_to_luma(rgb: torch.Tensor, spec: YCbCrSpec) -> torch.Tensor:
    """(N, 3, H, W) R'G'B' in [0, 1] -> (N, 1, H, W) luma Y' in [0, 1] (the gray a
    black-and-white video of this picture would hold)."""
    kr, kb = spec.kr_kb
    r, g, b = rgb.unbind(-3)
    return (kr * r + (1 - kr - kb) * g + kb * b).unsqueeze(-3)


def ycbcr_to_rgb(y: torch.Tensor, cbcr: torch.Tensor, spec: YCbCrSpec) -> torch.Tensor:
    """Y' (N, 1, H, W) in [0, 1] and Cb/Cr (N, 2, H, W) in [-0.5, 0.5] -> R'G'B'
    in [0, 1] (clipped); the inverse of :func:`rgb_to_luma` and :func:`rgb_to_cbcr`."""
    kr, kb = spec.kr_kb
    kg = 1 - kr - kb
    cb, cr = cbcr.unbind(-3)
    y = y.squeeze(-3)
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / kg
    return torch.stack((r, g, b), dim=-3).clamp(0, 1)


def gamut_room(cbcr: torch.Tensor, y_min: torch.Tensor, y_max: torch.Tensor, spec: YCbCrSpec) -> torch.Tensor:
    """(N, 1, h, w): the most each Cb/Cr sample of (N, 2, h, w) (in [-0.5, 0.5]) may be scaled by (>= 0;
    over 1 where it could be more vivid) so that every pixel under it (its luma from ``y_min`` to
    ``y_max``, (N, 1, h, w) in [0, 1]) stays a colour R'G'B' can show."""
    kr, kb = spec.kr_kb
    cb, cr = cbcr[:, :1], cbcr[:, 1:]
    d_r, d_b = 2 * (1 - kr) * cr, 2 * (1 - kb) * cb
    d_g = -(kr * d_r + kb * d_b) / (1 - kr - kb)
    room = None
    for d in (d_r, d_g, d_b):  # each channel's room: up to 1 where d > 0, down to 0 where d < 0
        lim = torch.where(d > 0, (1 - y_max) / d.clamp_min(1e-6), y_min / (-d).clamp_min(1e-6))
        room = lim if room is None else torch.minimum(room, lim)
    return room.clamp_(min=0)


def l_to_gray(L: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> the gray R'=G'=B' in [0, 1] whose Lab L it is (the inverse of :func:`gray_to_l`)."""
    f = (L + 16) / 116
    lin = torch.where(L > 8, f ** 3, L / (24389 / 27)).clamp(0, 1)
    return torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, 12.92 * lin)


def quantize_chroma(cbcr: torch.Tensor, spec: YCbCrSpec) -> torch.Tensor:
    """Cb/Cr in [-0.5, 0.5] -> integer codes (uint8 for 8 bit, int32 otherwise)."""
    centre, span = spec.chroma_scale()
    lo, hi = (0, spec.max_code) if spec.full_range else (16 << (spec.bits - 8), 240 << (spec.bits - 8))
    codes = (cbcr * span + centre).round_().clamp_(lo, hi)
    return codes.to(torch.uint8 if spec.bits == 8 else torch.int32)


def mean_chroma(rgb: torch.Tensor) -> float:
    """Mean Lab chroma sqrt(a^2 + b^2) of an image: under ~2 for a grayscale still."""
    ab = rgb_to_lab(rgb)[..., 1:, :, :]
    return float(ab.float().square().sum(dim=-3).sqrt().mean())


def _cbcr_matrix(spec: YCbCrSpec) -> np.ndarray:
    """2x4 affine map from R'G'B' in [0, 1] to Cb/Cr codes (before rounding)."""
    kr, kb = spec.kr_kb
    kg = 1 - kr - kb
    centre, span = spec.chroma_scale()
    cb = np.array([-kr, -kg, 1 - kb]) / (2 * (1 - kb))
    cr = np.array([1 - kr, -kg, -kb]) / (2 * (1 - kr))
    return np.hstack([np.stack([cb, cr]) * span, [[centre], [centre]]]).astype(np.float32)


def lab_to_chroma_codes(lab: torch.Tensor, spec: YCbCrSpec) -> np.ndarray:
    """(N, 3, H, W) Lab -> (N, 2, H, W) Cb/Cr integer codes for ``spec``
    (uint8 for 8 bit, uint16 otherwise), as a numpy array for the encoder.

    The colour reaches the video this way: Lab -> R'G'B' (clipped to the
    gamut) -> Cb/Cr with the video's matrix and range. On a CPU the whole
    chain is OpenCV's, one frame at a time (4x faster than the tensor
    route); elsewhere it is kornia's and PyTorch's, batched on the device.
    """
    if lab.dim() != 4 or lab.shape[1] != 3:
        raise ValueError(f"Input size must have a shape of (N, 3, H, W). Got {tuple(lab.shape)}")
    dtype = np.uint8 if spec.bits == 8 else np.uint16
    lo, hi = (0, spec.max_code) if spec.full_range else (16 << (spec.bits - 8), 240 << (spec.bits - 8))
    if lab.device.type != "cpu" or lab.requires_grad:
        codes = quantize_chroma(rgb_to_cbcr(kornia.color.lab_to_rgb(lab, clip=True), spec), spec)
        return codes.cpu().numpy().astype(dtype, copy=False)
    arr = lab.detach().to(torch.float32).permute(0, 2, 3, 1).contiguous().numpy()
    m = _cbcr_matrix(spec)
    out = np.empty((arr.shape[0], arr.shape[1], arr.shape[2], 2), dtype=dtype)
    rgb = np.empty(arr.shape[1:], dtype=np.float32)
    for i in range(arr.shape[0]):
        cv2.cvtColor(arr[i], cv2.COLOR_Lab2RGB, dst=rgb)
        np.clip(rgb, 0.0, 1.0, out=rgb)
        cc = cv2.transform(rgb, m)
        np.rint(cc, out=cc)
        np.clip(cc, lo, hi, out=cc)
        out[i] = cc
    return np.moveaxis(out, -1, 1)
