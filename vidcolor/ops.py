"""Small image operations that run where the tensors are.

PyTorch's CPU kernels for some of them are an order of magnitude slower than
OpenCV's (a 5x5 box filter at 640x360: 3.3 ms against 0.2 ms), so CPU
tensors outside autograd take the OpenCV route; CUDA tensors and anything
that needs gradients stay in PyTorch. Both routes give the same result.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .config import FLOW_PRESETS as DIS_PRESETS  # the names configs use (config.py imports no cv2)

__all__ = ["area_resize", "box_filter", "gaussian_blur", "flat_noise", "use_opencv", "pixel_grid", "resize_flow", "work_shape", "DIS_PRESETS", "dis_flow", "fit_exposure", "exposure_gain", "exposure_fit", "Exposure",
           "match_exposure"]

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


def area_resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) averaged down to ``size`` (F.adaptive_avg_pool2d). Exactly halved on a CPU, each 2x2
    block summed in the pooling's own order and divided by 4: the same floats, ~5x faster."""
    h, w = size
    if t.device.type == "cpu" and t.shape[-2:] == (2 * h, 2 * w):
        return (t[..., 0::2, 0::2] + t[..., 0::2, 1::2] + t[..., 1::2, 0::2] + t[..., 1::2, 1::2]) / 4
    return F.adaptive_avg_pool2d(t, (h, w))


def gaussian_blur(t: torch.Tensor, sigma: float, *, truncate: float = 2.5, padding: str = "constant") -> torch.Tensor:
    """(N, C, H, W) blurred by a separable Gaussian of ``sigma`` pixels, each channel on its own, radius
    ``max(1, ceil(truncate * sigma))``, the border padded with ``padding`` (F.pad's mode: zeros by
    default, "reflect" mirrored); ``t`` itself for sigma <= 0."""
    if sigma <= 0:
        return t
    r = max(1, int(math.ceil(truncate * sigma)))
    x = torch.arange(-r, r + 1, dtype=t.dtype, device=t.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = t.shape[1]
    t = F.conv2d(F.pad(t, (r, r, 0, 0), mode=padding), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(t, (0, 0, r, r), mode=padding), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def flat_noise(L: torch.Tensor, block: int = 8, quantile: float = 0.1) -> torch.Tensor:
    """(N, 1, H, W) -> (N,) s.d. of the fine detail (the residual of a sigma-1 Gaussian blur) in the
    picture's flattest ``block`` x ``block`` blocks (their ``quantile``-th variance): the grain or noise
    of the frame, not its detail (a mean over the whole picture counts every edge). Zero for a picture
    too small to hold such blocks. On the development clips, in L units: 0.13-0.36 clean, 1.0-1.4 with
    the old-film benchmark's grain, 2.3 at twice it."""
    h, w = L.shape[-2:]
    if min(h, w) < 2 * block:
        return torch.zeros(L.shape[0], device=L.device)
    hb, wb = h // block, w // block
    out = []
    for x in L.detach().float().cpu().numpy()[:, 0]:  # OpenCV and numpy: about 4 ms a 480p frame (torch: 40)
        r = x - cv2.GaussianBlur(x, (5, 5), 1.0, borderType=cv2.BORDER_REFLECT_101)
        v = np.square(r[:hb * block, :wb * block]).reshape(hb, block, wb, block).mean(axis=(1, 3))
        out.append(math.sqrt(float(np.quantile(v, quantile))))
    return torch.tensor(out, device=L.device)


@functools.lru_cache(maxsize=4)
def pixel_grid(h: int, w: int) -> np.ndarray:
    """(h, w, 2) float32 (x, y) of every pixel: add a flow to get where it points (cv2.remap, which
    takes such an array whole as its map: as fast again as its x and y planes given apart).
    Made once per size (read-only: every frame's flows use it; 16 MB at 1080p)."""
    x, y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid = np.stack((x, y), axis=-1)
    grid.setflags(write=False)
    return grid


def resize_flow(flow: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """(h, w, 2) flow brought to ``size`` = (H, W), its vectors in that size's pixels (itself when
    the size is its own)."""
    h, w = flow.shape[:2]
    H, W = size
    if (h, w) == (H, W):
        return flow
    # OpenCV's per-channel product: numpy's broadcast over a last axis of 2 is ~10x slower (the same floats)
    return cv2.multiply(cv2.resize(flow, (W, H), interpolation=interpolation),
                        (float(np.float32(W / w)), float(np.float32(H / h)), 0.0, 0.0))


def work_shape(h: int, w: int, short: int, minimum: int = 8, enlarge: bool = False) -> tuple[int, int]:
    """(h, w) scaled so the short side is ``short`` (never enlarged unless ``enlarge``), each side at least ``minimum``."""
    s = short / min(h, w) if enlarge else min(1.0, short / min(h, w))
    return max(minimum, round(h * s)), max(minimum, round(w * s))


MAX_EXPOSURE_GAIN = 1.35  # most exposure ratio between two luminances that fit_exposure undoes (a print's flicker)


def fit_exposure(src: np.ndarray, dst: np.ndarray, weight: np.ndarray | None = None,
                 max_gain: float = MAX_EXPOSURE_GAIN, min_corr: float | None = None) -> tuple[float, float]:
    """Gain ``g`` and offset ``o`` such that ``g * src + o`` has the exposure of ``dst``: the
    weighted mean and spread of ``src`` matched to those of ``dst`` over the same pixels (the two
    images in correspondence, or whole pictures of the same scene), once more without the pixels
    that still differ most (what moved). A gain outside [1/max_gain, max_gain] is no exposure
    change (a new picture, another framing): (1, 0); so is, given ``min_corr``, a correlation of
    the pixels kept under it (they do not correspond). Film flicker (an exposure jump frame to
    frame) is such a change."""
    step = max(1, np.size(src) // 16384)  # a sample of pixels spread over the picture is enough for two numbers
    s = np.asarray(src, np.float32).ravel()[::step]
    d = np.asarray(dst, np.float32).ravel()[::step]
    w = np.ones_like(s) if weight is None else np.asarray(weight, np.float32).ravel()[::step]
    g, o = 1.0, 0.0
    for last in (False, True):
        sw = float(w.sum())
        if sw < 16.0:
            return 1.0, 0.0
        ms, md = float(w @ s) / sw, float(w @ d) / sw
        vs, vd = float(w @ (s - ms) ** 2) / sw, float(w @ (d - md) ** 2) / sw
        g = float(np.sqrt(vd / vs)) if vs > 4.0 and vd > 4.0 else 1.0
        o = md - g * ms
        if last and not 1.0 / max_gain <= g <= max_gain:
            return 1.0, 0.0
        if last and min_corr is not None and float(w @ ((s - ms) * (d - md))) / sw < min_corr * np.sqrt(vs * vd):
            return 1.0, 0.0
        r = np.abs(g * s + o - d)
        w = w * (r <= 2.5 * float(np.median(r)) + 2.0)
    return g, o


def match_exposure(img: np.ndarray, ref: np.ndarray, max_gain: float = MAX_EXPOSURE_GAIN) -> np.ndarray:
    """(h, w) uint8 luminance ``img`` brought to the exposure of ``ref`` (:func:`fit_exposure` of the
    whole pictures), uint8; ``img`` itself where they are already alike (within a code)."""
    return apply_exposure(img, *fit_exposure(img, ref, max_gain=max_gain))


def apply_exposure(img: np.ndarray, gain: float, offset: float, top: int = 255) -> np.ndarray:
    """(h, w) ``img`` * ``gain`` + ``offset`` (a :func:`fit_exposure`), in ``img``'s dtype within
    [0, ``top``] (uint8: 255; a deeper luminance in uint16, its highest code); ``img`` itself where
    that moves no code by a whole code."""
    if max(abs(offset), abs(top * (gain - 1.0) + offset)) < 1.0:
        return img
    if img.dtype == np.uint8:
        return cv2.convertScaleAbs(img, alpha=gain, beta=offset)
    return np.clip(np.rint(img.astype(np.float32) * gain + offset), 0, top).astype(img.dtype)


# the most an exposure change between a frame and its still is followed: up to twice the still's light,
# down to a tenth (a deep vignette's corner: at twice the old-film benchmark's vignette, under 0.2)
GAIN_RANGE = (0.1, 2.0)
GAIN_DEAD = (0.01, 0.04)  # a gain within 1% of 1 is not followed, one beyond 4% fully (eased in between)
MAX_BLACK_SHIFT = 0.05  # of the luma range: the most the black level may move between a still and a frame
SHIFT_DEAD = (0.005, 0.015)  # a black level move within 0.5% of the range is not followed, one beyond 1.5% fully
GAIN_RIDGE = 0.001  # how firmly the gain is held flat across the picture where the matches say little
CLIPPED = 0.02  # of the luma range: a frame's pixels this near white or black are left out of its exposure fit
FIT_SIZE = 32  # short side the exposure model is fitted at (it is smooth)
FOLLOW_CONF = (0.25, 0.45)  # mean confidence under which a frame's exposure is not followed, over which fully


@functools.lru_cache(maxsize=4)
def _gain_terms(size: tuple[int, int]) -> np.ndarray:
    """(h * w, 6): 1, u, v, u^2, uv, v^2 on a (w, h) = ``size`` grid over [-1, 1]: the gain's terms."""
    u, v = (g.ravel() for g in np.meshgrid(np.linspace(-1, 1, size[0]), np.linspace(-1, 1, size[1])))
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)


def _ridge_solve(cols: np.ndarray, y: np.ndarray, wt: np.ndarray, ridge: float) -> np.ndarray:
    """The weighted least-squares coefficients of ``y ~ cols``, the last five (the gain's terms across
    the picture) held toward 0 by ``ridge``."""
    ata = (cols * wt[:, None]).T @ cols
    n = ata.shape[0]
    ata[n - 5:, n - 5:] += ridge * np.eye(5)
    return np.linalg.solve(ata + 1e-9 * np.eye(n), (cols * wt[:, None]).T @ y)


class Exposure(NamedTuple):
    """A frame's exposure against its still (:func:`exposure_fit`): ``gain`` (h, w) float32 and
    ``shift``, the black level's move (luma 0..1; the frame's luma ~ shift + gain x the still's)."""

    gain: np.ndarray
    shift: float


def exposure_gain(yt: np.ndarray, yr: np.ndarray, conf: np.ndarray) -> np.ndarray | None:
    """:func:`exposure_fit`'s gain alone: None where it is 1."""
    fit = exposure_fit(yt, yr, conf)
    if fit is None or float(np.abs(fit.gain - 1).max()) < 0.005:
        return None
    return fit.gain


def exposure_fit(yt: np.ndarray, yr: np.ndarray, conf: np.ndarray, light: np.ndarray | None = None) -> Exposure | None:
    """:class:`Exposure`: the frame's exposure against the still's, where the flow says they show the
    same scene (``yt``: the frame's luma, ``yr``: the still's carried onto the frame, both float32
    0..1 and linear in the light's R'G'B', as luma is: :func:`vidcolor.models.align.luma_of_l8`;
    ``conf``: 0..1, squared as the fit's weight): the (h, w) gain ``G`` and the shift ``a`` of the
    weighted least-squares fit ``yt ~ a + G(x, y) yr``, ``G`` a quadratic across the picture (a
    flicker's gain, a vignette's falloff; held flat where the matches say little) and ``a`` a shift
    of the black level (within +-:data:`MAX_BLACK_SHIFT`; an offset adds the same to R', G' and B':
    the chroma stays), on the frame's pixels not clipped at white or black (:data:`CLIPPED`), fitted
    once more without the pixels furthest off it (what moved, what the still shows otherwise); within :data:`GAIN_RANGE`, a change of a few percent
    eased out (:data:`GAIN_DEAD`: a still's luma made otherwise than the film's), and only as far as
    the mean confidence says the still is a view of the frame (:data:`FOLLOW_CONF`); the shift too,
    a move of under a code or so eased out (:data:`SHIFT_DEAD`). None where the exposure is the
    still's or too little of the frame is matched to say.

    A print's flicker or vignette scales its light, and with it R'G'B', Y' - black and Cb/Cr alike
    (BT.601 is linear in R'G'B'): a darker corner or a dimmer frame of the still's scene has its hues
    and proportionally less chroma. The still's Cb/Cr times this gain are that colour; kept as they
    are on a darkened luma they would be more vivid than the scene, out of gamut where it is dark.

    ``light``: the (any size) gain ``yt`` was evened by (a vignette's falloff as last seen), put back
    before the fit: the gain returned is the print's whole, and pixels clipped as evened stay out."""
    h, w = yt.shape
    # followed where the still is a view of the frame (the flow reaches most of it); a still of another
    # view or framing may be exposed or graded otherwise: its light against the frame's says nothing
    follow = float(np.clip((float(conf.mean()) - FOLLOW_CONF[0]) / (FOLLOW_CONF[1] - FOLLOW_CONF[0]), 0, 1))
    if follow == 0:
        return None
    wt = np.square(conf.astype(np.float32))  # the surest matches count most
    # ... and none where the frame is clipped at white or black: a brighter print's highlights stop at
    # white, and would have the fit take the gain for less and the black for higher
    wt = wt * ((yt > CLIPPED) & (yt < 1.0 - CLIPPED))
    if light is not None:
        yt = yt * cv2.resize(light, (w, h), interpolation=cv2.INTER_LINEAR)
    s = min(1.0, FIT_SIZE / min(h, w))
    size = (max(2, round(w * s)), max(2, round(h * s)))
    t, r, wt = (cv2.resize(x, size, interpolation=cv2.INTER_AREA).ravel().astype(np.float64) for x in (yt, yr, wt))
    spatial = _gain_terms(size)
    cols = np.concatenate([np.ones((len(t), 1)), spatial * r[:, None]], axis=1)  # black shift, gain
    coef = None
    for last in (False, True):
        sw = float(wt.sum())
        if sw < 0.01 * len(t) or float(wt @ r) < 0.02 * sw:
            return None
        coef = _ridge_solve(cols, t, wt, GAIN_RIDGE * float(wt @ (r * r)))
        if not last:
            res = np.abs(t - cols @ coef)
            wt = wt * (res <= 2.5 * float(np.median(res[wt > 0])) + 1e-4)
    if abs(coef[0]) > MAX_BLACK_SHIFT:  # more than a black level moves: the gain alone, the shift held
        a = float(np.clip(coef[0], -MAX_BLACK_SHIFT, MAX_BLACK_SHIFT))
        coef = np.concatenate([[a], _ridge_solve(cols[:, 1:], t - a, wt, GAIN_RIDGE * float(wt @ (r * r)))])
    gain = np.clip((spatial @ coef[1:]).reshape(size[1], size[0]), *GAIN_RANGE).astype(np.float32) - 1.0
    gain = 1.0 + follow * gain * np.clip((np.abs(gain) - GAIN_DEAD[0]) / (GAIN_DEAD[1] - GAIN_DEAD[0]), 0, 1)
    a = float(coef[0])
    a = follow * a * float(np.clip((abs(a) - SHIFT_DEAD[0]) / (SHIFT_DEAD[1] - SHIFT_DEAD[0]), 0, 1))
    if float(np.abs(gain - 1).max()) < 0.005 and abs(a) < 1e-4:
        return None
    return Exposure(cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR), a)
