"""Small image operations that run where the tensors are.

PyTorch's CPU kernels for some of them are an order of magnitude slower than
OpenCV's (a 5x5 box filter at 640x360: 3.3 ms against 0.2 ms), so CPU
tensors outside autograd take the OpenCV route; CUDA tensors and anything
that needs gradients stay in PyTorch. Both routes give the same result.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .config import FLOW_PRESETS as DIS_PRESETS  # the names configs use (config.py imports no cv2)

__all__ = ["box_filter", "use_opencv", "pixel_grid", "work_shape", "DIS_PRESETS", "dis_flow"]

# OpenCV's own presets; ``fine`` is built on ``medium`` by dis_flow()
_OPENCV_DIS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, "fine": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def dis_flow(preset: str) -> "cv2.DISOpticalFlow":
    """An OpenCV DIS optical flow by preset name. OpenCV's presets stop their
    coarse-to-fine search one pyramid level short of the image (finest scale 1:
    half resolution, upsampled), which blurs motion boundaries; ``fine`` is
    ``medium`` carried on to the full resolution, with a sparser patch grid and
    fewer iterations there to pay for it (about 2x medium's time)."""
    if preset not in _OPENCV_DIS:
        raise ValueError(f"unknown DIS preset {preset!r} (valid: {', '.join(DIS_PRESETS)})")
    dis = cv2.DISOpticalFlow_create(_OPENCV_DIS[preset])
    if preset == "fine":
        dis.setFinestScale(0)
        dis.setPatchStride(4)
        dis.setGradientDescentIterations(12)
        dis.setVariationalRefinementIterations(2)
    return dis


def use_opencv(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and not t.requires_grad and t.dtype == torch.float32


def box_filter(t: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over a size x size window of each channel of (N, C, H, W),
    borders mirrored (OpenCV's BORDER_REFLECT_101)."""
    if size == 1:
        return t
    p = size // 2
    if use_opencv(t) and min(t.shape[-2:]) > p:
        a = t.contiguous().numpy()
        out = np.empty_like(a)
        for n in range(a.shape[0]):
            for c in range(a.shape[1]):
                cv2.boxFilter(a[n, c], -1, (size, size), dst=out[n, c], borderType=cv2.BORDER_REFLECT_101)
        return torch.from_numpy(out)
    mode = "reflect" if min(t.shape[-2:]) > p else "replicate"
    return F.avg_pool2d(F.pad(t, (p, p, p, p), mode=mode), size, stride=1)


def pixel_grid(h: int, w: int) -> np.ndarray:
    """(h, w, 2) float32 (x, y) of every pixel: add a flow to get where it points (cv2.remap)."""
    x, y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.stack((x, y), axis=-1)


def work_shape(h: int, w: int, short: int, minimum: int = 8, enlarge: bool = False) -> tuple[int, int]:
    """(h, w) scaled so the short side is ``short`` (never enlarged unless ``enlarge``), each side at least ``minimum``."""
    s = short / min(h, w) if enlarge else min(1.0, short / min(h, w))
    return max(minimum, round(h * s)), max(minimum, round(w * s))
