"""A still's colour where the exemplar is sure of it, automatic colour elsewhere.

Automatic reference, as in Deep Exemplar-based Colorization (He et al. 2018,
section 4): a shot with no still of its own gets the best still of a gallery
folder (chosen by :mod:`vidcolor.references.choose`), is coloured both by
``exemplar`` from that still and by ``auto``, and the two are blended per
pixel by the exemplar's confidence::

    w = gate * confidence                     (exemplar's shot gate and confidence)
    out = w * exemplar + (1 - w) * auto

so the exemplar's colour is kept where it is sure of it (the still's colour
carried by a flow that holds) and ``auto``'s elsewhere. A shot whose best
still scores under ``retrieval.threshold`` gets ``auto`` alone (the chooser
gives it no still): an unrelated still paints no colour.

``auto`` answers in Lab a/b on the frame's L, ``exemplar`` in the video's
Cb/Cr; the blend is in Cb/Cr (``chroma = "cbcr"``): ``auto``'s a/b go through
R'G'B' (clipped to the gamut) to Cb/Cr with the video's matrix, exactly the
way the pipeline writes ``auto``'s colour to the file, so a shot coloured by
``auto`` alone reaches the file as it would without a gallery.

The same blend (:class:`BlendColorizer`) colours a shot whose own still (given,
not retrieved) matches it only partly: a score between ``exemplar.gate_low``
and ``gate_high`` weighs the still's colour down by the gate, and automatic
colour, not gray, fills in the rest.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..color import lab_to_rgb, rgb_to_cbcr
from .registry import Colorizer, ShotStats

if TYPE_CHECKING:
    from ..references import ShotChoice

__all__ = ["BlendColorizer", "lab_to_cbcr"]


def lab_to_cbcr(L: torch.Tensor, ab: torch.Tensor, spec) -> torch.Tensor:
    """L (N, 1, H, W) in [0, 100] and a/b (N, 2, H, W) -> (N, 2, H, W) Cb/Cr in [-0.5, 0.5]
    of ``spec``'s matrix, through R'G'B' clipped to the gamut."""
    return rgb_to_cbcr(lab_to_rgb(torch.cat((L, ab.to(L.dtype)), dim=1)), spec)


class BlendColorizer(Colorizer):
    """``exemplar``'s colour where it is sure of it, ``auto``'s elsewhere (see the module docstring).

    The shot's still and its :class:`~vidcolor.references.ShotChoice` (whose
    gate gates the exemplar) are given to :meth:`begin_shot`; per pixel
    ``out = w * exemplar + (1 - w) * auto``, ``w`` from the exemplar's shot gate and confidence.
    ``full``: how a still that matches fully (gate 1) is taken. True (a still
    given for the shot): everywhere, as the exemplar alone would colour the
    shot; under full match ``w = gate * (confidence + gate * (1 - confidence))``,
    so that automatic colour fills in as the match gets poorer, smoothly from
    the exemplar alone (gate 1) to automatic colour alone (gate 0). False (a
    still retrieved for the shot, the gallery): ``w = gate * confidence``, the
    still's colour only where the exemplar is sure of it. The pipeline blends
    a given still this way when it matches its shot only partly (a score
    between ``exemplar.gate_low`` and ``gate_high``), rather than fading its
    colour toward gray. ``auto`` may be any colorizer that takes no still
    (Lab or Cb/Cr).
    """

    needs_reference = True
    chroma = "cbcr"
    full_luma = True  # the exemplar's flow sees the frame's own detail

    def __init__(self, *, device: torch.device, auto: Colorizer, exemplar: Colorizer, full: bool = True,
                 name: str | None = None):
        super().__init__(device)
        self.auto, self.exemplar, self.full = auto, exemplar, full
        self.name = name or f"{exemplar.name}+{auto.name}"  # as the run's report names it
        self.weight: torch.Tensor | None = None  # the last blend weight w, (N, 1, h, w)
        self._still = False  # the exemplar has a still for this shot

    @property
    def temporal(self) -> dict | None:
        """The exemplar's colour, blended, is at each frame's exposure already (``exemplar.follow_exposure``):
        the smoother's memory follows the exposure, and ``--deflicker`` scales the colour with the luma."""
        return {"follow_exposure": True} if self.exemplar.follows_exposure else None

    def set_ycbcr(self, spec) -> None:
        super().set_ycbcr(spec)
        self.auto.set_ycbcr(spec)
        self.exemplar.set_ycbcr(spec)

    def set_precision(self, amp) -> None:
        super().set_precision(amp)
        self.auto.set_precision(amp)
        self.exemplar.set_precision(amp)

    def begin_shot(self, reference: torch.Tensor | None, choice: "ShotChoice | None" = None) -> None:
        self.auto.begin_shot(None)
        self.weight = self.confidence = None
        self._still = reference is not None
        if self._still:
            self.exemplar.begin_shot(reference, choice)

    def end_shot(self) -> ShotStats:
        auto = self.auto.end_shot()
        return self.exemplar.end_shot().merge(auto) if self._still else auto

    @torch.inference_mode()
    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must have a shape of (N, 1, H, W). Got {tuple(L.shape)}")
        L = L.to(self.device, torch.float32)
        # auto sees L at the size the answer is wanted at (as it does alone); the exemplar, full L
        La = L if self.out_size is None else F.adaptive_avg_pool2d(L, tuple(self.out_size))
        out = self.auto.colorize(La)
        if self.auto.chroma == "lab":
            out = lab_to_cbcr(La, out, self.ycbcr)
        self.exemplar.out_size, self.exemplar.motions, self.exemplar.grainy = self.out_size, self.motions, self.grainy
        self.weight = self.confidence = None
        if not self._still:
            return out
        ex = self.exemplar.colorize(L)
        if self.exemplar.exposure is not None:  # the still's colour at each frame's exposure, then blended
            ex = self.exemplar.expose(ex, L, self.exemplar.exposure)
        conf, gate = self.exemplar.confidence, self.exemplar.gate or 0.0
        if conf is None or gate <= 0.0:
            return out
        conf = conf.to(out.dtype).clamp(0, 1)
        self.weight = gate * (conf + gate * (1 - conf)) if self.full else gate * conf
        # the exemplar's colour at full strength (its gate is in w already)
        w = F.interpolate(self.weight, size=out.shape[-2:], mode="bilinear", align_corners=False)
        out = out + w * (ex / gate - out)
        # the mixture's confidence: auto's colour counts as sure as auto alone (1)
        self.confidence = 1.0 - self.weight * (1.0 - conf)
        return out
