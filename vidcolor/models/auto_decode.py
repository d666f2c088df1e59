"""Calibrated decoding of the ``auto`` network's ab-bin distribution: colour *and* confidence.

The network predicts, per cell at stride 4 of the working size, a
distribution p over the in-gamut ab bins. The annealed mean (Zhang et al.)
turns it into a vivid colour whatever its shape: a spread or two-peaked
distribution (sky blue or grass green?) still gives a confident-looking hue.
Here (:func:`decode`):

1. confidence ``c`` = exp(-(s / spread)^2), s the standard deviation of the
   plain (T = 1) distribution in ab units: spread or multi-modal
   distributions have a large s;
2. with a second view (the frame mirrored and at ``view_scale``), c is also
   multiplied by exp(-(d / agree)^2), d the distance between the two views'
   colours (a colour that changes when the picture is mirrored or scaled is
   a guess), and the colour is the two views' mean;
3. the colour goes from the annealed mean (``temperature``) where sure
   towards the distribution's plain mean where not: c * vivid + (1 - c) * mean;
4. consensus (:mod:`.consensus`): colour and confidence pooled within
   regions of even luminance (``keep`` of the pixel's own answer stays);
5. chroma scaled by ``gain * c ** power``: neutral where unsure;
6. chroma scaled by a gain per hue (``hue``: one per sector of the a/b
   plane, interpolated around the circle; ``benchmarks/fit_auto_hue.py``).
   On the validation photos the network's greens and yellows were often
   guesses (a blurred background painted as foliage) and its earth tones
   under-saturated, but gains fitted there lost colour on the test photos
   and the development clips, so the shipped weights have none;
7. ``cast`` of the picture's mean a/b taken away (gray world): a colour
   cast over the whole picture is more often the network's guess than the
   scene's.

The parameters are fitted on the validation photos for PSNR with a
colourfulness floor (``benchmarks/fit_auto_decoding.py``) and stored in the
weights' metadata (``decoding``); :data:`LEGACY` is the plain annealed mean.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F

from .consensus import POOLS, pool_chroma

__all__ = ["Decoding", "LEGACY", "decode", "hue_gain", "second_view", "merge_view"]


@dataclass(frozen=True)
class Decoding:
    temperature: float = 0.38  # annealed mean of the vivid answer
    spread: float = 0.0  # ab units; 0: no spread term
    agree: float = 0.0  # ab units; 0: one view (no mirrored, scaled second pass)
    view_scale: float = 0.75  # the second view's size, of the working size
    power: float = 1.0  # chroma gain = gain * confidence ** power
    gain: float = 1.0
    keep: float = 0.0  # share of a pixel's own colour and confidence against its region's
    consensus: str = "off"  # off, grid, superpixel, guided (:mod:`.consensus`)
    cell: int = 8  # consensus cell, pixels at stride 4
    lum: float = 8.0  # consensus luminance scale, L units
    shot: float = 0.0  # exponent of a shot's mean confidence (over ``reference``) on its chroma; 0: none
    reference: float = 0.5  # the mean confidence at which the shot factor is 1
    cast: float = 0.0  # share of the picture's mean a/b taken away (gray world); 0: none
    hue: tuple = ()  # chroma gain per hue sector (sector k centred at 360 k / len degrees of a/b); (): none

    @classmethod
    def from_dict(cls, d: dict | None) -> "Decoding":
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in (d or {}).items() if k in names}
        if "hue" in kw:
            kw["hue"] = tuple(float(x) for x in kw["hue"])
        return cls(**kw)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **kw) -> "Decoding":
        return replace(self, **kw)

    def validate(self) -> None:
        if self.temperature <= 0 or self.spread < 0 or self.agree < 0 or self.gain < 0 or self.power < 0 \
                or not 0 <= self.cast <= 1 or len(self.hue) == 1 or any(g < 0 for g in self.hue):
            raise ValueError(f"bad auto decoding {self}")
        if self.consensus != "off" and self.consensus not in POOLS:
            raise ValueError(f"unknown consensus '{self.consensus}'")


#: The plain annealed mean at T 0.38: the decoding before calibration.
LEGACY = Decoding()


def _moments(logits: torch.Tensor, bins: torch.Tensor, T: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(annealed mean at T, plain mean, plain standard deviation (N, 1, h, w))."""
    z = logits.float()
    b = bins.to(z)
    p = torch.softmax(z, dim=1)
    mean = torch.einsum("nqhw,qc->nchw", p, b)
    second = torch.einsum("nqhw,q->nhw", p, b.square().sum(dim=1))[:, None]
    sd = (second - mean.square().sum(dim=1, keepdim=True)).clamp(min=0).sqrt()
    vivid = mean if T == 1 else torch.einsum("nqhw,qc->nchw", torch.softmax(z / T, dim=1), b)
    return vivid, mean, sd


def second_view(Lw: torch.Tensor, scale: float) -> torch.Tensor:
    """The second view of (N, 1, h, w) L: mirrored and resized by ``scale``."""
    L = Lw.flip(-1)
    h, w = L.shape[-2:]
    size = (max(32, round(h * scale / 16) * 16), max(32, round(w * scale / 16) * 16))
    return L if size == (h, w) else F.interpolate(L, size=size, mode="area")


def merge_view(logits2: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The second view's logits brought back onto the first's cells (unmirrored, resized)."""
    z = logits2.flip(-1)
    return z if z.shape[-2:] == like.shape[-2:] else F.interpolate(z, size=like.shape[-2:], mode="bilinear",
                                                                    align_corners=False)


def hue_gain(ab: torch.Tensor, gains: tuple) -> torch.Tensor:
    """(N, 1, h, w): the gain of each a/b's hue, linearly interpolated between the sectors'
    ``gains`` (sector k centred at the angle 2 pi k / len(gains) from +a toward +b)."""
    g = torch.tensor(gains, dtype=ab.dtype, device=ab.device)
    k = len(gains)
    x = torch.atan2(ab[:, 1:2], ab[:, 0:1]).div(2 * torch.pi / k).remainder(k)
    lo = x.floor()
    t = x - lo
    lo = lo.long() % k
    return (1 - t) * g[lo] + t * g[(lo + 1) % k]


def decode(logits: torch.Tensor, bins: torch.Tensor, L4: torch.Tensor, dec: Decoding,
           logits2: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, Q, h, w) logits (and the second view's, on the same cells) -> (a/b (N, 2, h, w),
    confidence (N, 1, h, w) in [0, 1]) as :class:`Decoding` ``dec`` says. ``L4``: L at the
    logits' size, in [0, 100] (the consensus' guide)."""
    vivid, mean, sd = _moments(logits, bins, dec.temperature)
    conf = torch.exp(-(sd / dec.spread).square()) if dec.spread > 0 else torch.ones_like(sd)
    if logits2 is not None and dec.agree > 0:
        vivid2, mean2, sd2 = _moments(logits2, bins, dec.temperature)
        d = (vivid - vivid2).norm(dim=1, keepdim=True)
        if dec.spread > 0:
            conf = 0.5 * (conf + torch.exp(-(sd2 / dec.spread).square()))
        conf = conf * torch.exp(-(d / dec.agree).square())
        vivid, mean = 0.5 * (vivid + vivid2), 0.5 * (mean + mean2)
    ab = conf * vivid + (1 - conf) * mean
    if dec.consensus != "off":
        pooled, pconf = pool_chroma(dec.consensus, ab, conf, L4, dec.cell, dec.lum)
        ab = dec.keep * ab + (1 - dec.keep) * pooled
        conf = (dec.keep * conf + (1 - dec.keep) * pconf).clamp(0, 1)
    if not (dec == LEGACY or (dec.gain == 1 and dec.spread == 0 and dec.agree == 0)):
        ab = (dec.gain * conf.pow(dec.power) * ab).clamp(-110, 110)
    if dec.hue:
        ab = ab * hue_gain(ab, dec.hue)
    if dec.cast > 0:
        ab = ab - dec.cast * ab.mean(dim=(2, 3), keepdim=True)
    return ab, conf
