"""A print's light on the still's colour: each frame's :class:`~vidcolor.ops.Exposure` against its
still given to the still's chroma (:func:`exposed`), and taken out of a frame's luminance for the
colour side to see the still's light (:func:`evened`). See ``exemplar.follow_exposure``."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..color import gamut_room, gray_to_l, l_to_gray
from ..ops import area_resize, flat_noise

__all__ = ["exposed", "evened"]

# A frame's grain widens the luma range under each chroma sample, and a colour would be pulled toward
# neutral by it; the print's own pull goes by its picture, not its grain. The range is narrowed by
# GRAIN_RANGE times the grain's s.d. (:func:`~vidcolor.ops.flat_noise`, beyond NOISE_FLOOR, L units:
# a clean video's own noise, 0.13-0.36 on the development clips, takes nothing), down to the mean.
GRAIN_RANGE = 2.0
NOISE_FLOOR = 0.5


def exposed(ab: torch.Tensor, fits: list, L: torch.Tensor, ycbcr) -> torch.Tensor:
    """(N, 2, H, W) Cb/Cr (x 255) times each frame's (h, w) :func:`exposure_fit` gain (None: 1)
    brought to H x W, and pulled toward neutral where the frame's exposure takes the colour out of
    R'G'B' further than it was at the still's (the frame's (N, 1, H', W') ``L`` less the fit's black
    shift, over the gain): a brighter print's saturated colour clips toward white keeping its hue, a
    print whose black sank takes a dark saturated colour toward black, as the print's own would; a
    colour R'G'B' can show stays as it is, and a film's colour outside the gamut as carried is left so.
    ``L`` larger than H x W (the full-size luma of 4:2:0 chroma): every pixel under a chroma sample
    is kept in gamut, the darkest and the brightest, not their mean, less the grain's spread (``GRAIN_RANGE``:
    the print's picture pulls its colour, not its grain; on the old-film benchmark's grainy copies 41.33 ->
    41.59 dB, 41.68 clean, all degradations together 41.46 -> 41.56) (on the development clips'
    flickering copies, measured on the clean run's colour given the print's true exposure: street
    42.86 dB of chroma by the mean, 43.69 by the range, against 43.72 for the truth's own rule)."""
    if all(f is None for f in fits):
        return ab
    if ab.shape[0] > 1:  # a frame at a time: a batch's temporaries cost 130 MB of peak memory at 480p
        return torch.cat([exposed(ab[i:i + 1], fits[i:i + 1], L[i:i + 1], ycbcr) for i in range(ab.shape[0])])
    H, W = ab.shape[-2:]
    g = np.stack([np.ones((H, W), np.float32) if f is None else cv2.resize(f.gain, (W, H), interpolation=cv2.INTER_LINEAR)
                  for f in fits])
    g = torch.from_numpy(g)[:, None].to(ab.device, torch.float32)
    shift = torch.tensor([0.0 if f is None else f.shift for f in fits], device=ab.device).view(-1, 1, 1, 1)
    if float(g.max()) <= 1.0 and not bool(shift.any()):  # only dimmer: the colour, scaled, stays a picture
        return ab * g.to(ab.dtype)
    c = ab.float() / 255.0
    L = L.float()
    if L.shape[-2:] != (H, W):  # the luma range under each chroma sample (L -> luma is monotonic)
        pool = (lambda x: F.max_pool2d(x, 2)) if L.shape[-2:] == (2 * H, 2 * W) else \
            (lambda x: F.adaptive_max_pool2d(x, (H, W)))
        lo, hi = -pool(-L), pool(L)
        grain = GRAIN_RANGE * (flat_noise(L) ** 2 - NOISE_FLOOR ** 2).clamp(min=0).sqrt().view(-1, 1, 1, 1)
        if bool(grain.any()):  # narrowed by the grain, down to the block's mean at most
            mean = area_resize(L, (H, W))
            lo, hi = torch.minimum(lo + grain, mean), torch.maximum(hi - grain, mean)
        lo, hi = l_to_gray(lo), l_to_gray(hi)
    else:
        lo = hi = l_to_gray(L)
    # how far each colour is out of gamut (1: a colour R'G'B' can show), at the still's exposure and at
    # the frame's: pulled only by what the exposure added (a colour with room to spare stays as vivid)
    before = gamut_room(c, ((lo - shift) / g).clamp(0, 1), ((hi - shift) / g).clamp(0, 1), ycbcr).clamp_(max=1.0)
    after = gamut_room(c * g, lo, hi, ycbcr).clamp_(max=1.0)
    return ab * (g * (after / before.clamp_min(1e-6)).clamp(max=1.0)).to(ab.dtype)


def evened(L: torch.Tensor, falloff: np.ndarray) -> torch.Tensor:
    """(N, 1, H, W) L with the print's light across the picture (``falloff``: (h, w) gain, any size)
    taken out: each pixel's luma over its gain, as L."""
    g = torch.from_numpy(falloff)[None, None].to(L.device, torch.float32)
    g = F.interpolate(g, size=L.shape[-2:], mode="bilinear", align_corners=False)
    # a frame at a time: the Lab conversion's intermediates of a whole batch at full size would
    # hold hundreds of MB (a 480p batch of 8: 400 MB more peak memory)
    return torch.cat([gray_to_l((l_to_gray(L[i:i + 1]) / g).clamp(0, 1)) for i in range(L.shape[0])])
