"""The exemplar colorizer's similarity sub-net: dense semantic correspondence
between a frame and its reference still, on luminance features of the frozen
backbone (both sides gray, as He et al.'s gray VGG).

- :class:`MatcherHead`: a learned projection of the backbone's features
  (a 1x1 convolution and optionally a 3x3 one, a residual on the raw features, zero at start:
  an untrained head *is* the raw features), trained by
  ``vidcolor train matcher`` so that softmax attention over its features
  carries the reference's colour to the right places (chrominance loss on
  pairs where the reference is a transformed copy of the target: a keyframe,
  moving objects, a mirrored and re-framed view). Shipped with the package as
  safetensors; its metadata says what produced it.
- :class:`FeatureMatcher`: features (through the head), and attention.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ExemplarConfig
from ..weights import resolve
from .store import load_net, save_net, strict

__all__ = ["FeatureMatcher", "MatcherHead", "attend", "matching_features", "load_matcher", "save_matcher", "raw_features"]
#: Channels of the raw features: the backbone's stride-8 map (40) and stride-16 map (112).
SPLIT = (40, 112)


def raw_features(net, L: torch.Tensor) -> torch.Tensor:
    """(N, 1, h, w) L -> (N, 152, ceil(h/8), ceil(w/8)): the backbone's stride-8 map and its
    stride-16 map brought to stride 8, each centred per image (what the head sees)."""
    from .backbone import luminance_input

    maps = net.features(luminance_input(L), upto=16).maps
    f8, f16 = maps[2].float(), maps[3].float()
    f16 = F.interpolate(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False)
    return torch.cat([f8 - f8.mean(dim=(2, 3), keepdim=True), f16 - f16.mean(dim=(2, 3), keepdim=True)], dim=1)


class MatcherHead(nn.Module):
    """Raw features -> unit-length matching features (N, 152, h, w).

    Each backbone map is scaled to unit length per cell, the two are
    concatenated (``x``) and ``normalize(x + proj(x) + context(x))`` is
    returned: ``proj`` a 1x1 convolution, ``context`` a 3x3 one (a cell's
    neighbours), both zero at start, so an untrained head gives ``x`` scaled
    to unit length: the raw features' matching exactly.
    """

    def __init__(self, context: bool = True):
        super().__init__()
        c = sum(SPLIT)
        self.proj = nn.Conv2d(c, c, 1, bias=False)
        self.context = nn.Conv2d(c, c, 3, padding=1, bias=False) if context else None
        nn.init.zeros_(self.proj.weight)
        if self.context is not None:
            nn.init.zeros_(self.context.weight)

    @property
    def config(self) -> dict:
        return {"context": self.context is not None}

    @staticmethod
    def base(f: torch.Tensor) -> torch.Tensor:
        a, b = f.split(SPLIT, dim=1)
        return torch.cat([F.normalize(a, dim=1), F.normalize(b, dim=1)], dim=1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = self.base(f)
        y = x + self.proj(x)
        if self.context is not None:
            y = y + self.context(x)
        return F.normalize(y, dim=1)


def matching_features(f: torch.Tensor, head: MatcherHead | None) -> torch.Tensor:
    """Raw features (:func:`raw_features`) -> unit-length features to match on: through ``head``,
    or (None) each map scaled to unit length per cell, concatenated and scaled to unit length again."""
    return head(f) if head is not None else F.normalize(MatcherHead.base(f), dim=1)


def save_matcher(head: MatcherHead, path: str | Path, meta: dict) -> None:
    """Weights as safetensors; ``meta`` (config, data, steps, figures) in its metadata."""
    save_net(head.state_dict(), head.config, path, meta)


def load_matcher(weights: str | None, device: torch.device) -> MatcherHead | None:
    """The head ``exemplar.matcher`` names (:func:`vidcolor.weights.resolve`): None or "packaged"
    (the packaged file; a ModelError saying how to get it when missing), "none" (raw features:
    returns None), or a safetensors file."""
    w = resolve("exemplar.matcher", weights)
    if w.kind == "raw":
        return None
    return load_net(w.require(), "matcher", strict(MatcherHead), device)


class FeatureMatcher:
    """Dense semantic correspondence on luminance features of the frozen backbone.

    Features: the raw stride-8 and stride-16 maps (:func:`raw_features`)
    through the head (``head`` None: each map scaled to unit length per cell,
    concatenated and scaled to unit length again). ``attend`` returns, per
    target cell, the softmax(similarity / temperature)-weighted reference a/b
    and the best similarity.
    """

    def __init__(self, device: torch.device, temperature: float = ExemplarConfig.temperature,
                 tone_weight: float = ExemplarConfig.tone_weight, head: MatcherHead | None = None):
        from .backbone import get_backbone

        self.net = get_backbone(device)
        self.head = head
        self.temperature = temperature
        self.tone_weight = tone_weight
        self.autocast = contextlib.nullcontext  # the colorizer's mixed precision (GPU)

    @torch.inference_mode()
    def features(self, L: torch.Tensor) -> torch.Tensor:
        """(N, 1, h, w) L -> (N, C, ceil(h/8), ceil(w/8)) unit-length features."""
        with self.autocast():
            f = raw_features(self.net, L)
        return matching_features(f, self.head)

    @staticmethod
    def tones(L: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(N, 1, h, w) L -> (N, P) mean L / 100 of each feature cell (``size``: the features' size)."""
        return F.adaptive_avg_pool2d(L, size).flatten(1) / 100.0

    def attend(self, q: torch.Tensor, k: torch.Tensor, ab: torch.Tensor, q_tone: torch.Tensor | None = None,
               k_tone: torch.Tensor | None = None, prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`attend` with this matcher's temperature, tone weight and mixed precision."""
        return attend(q, k, ab, q_tone, k_tone, temperature=self.temperature, tone_weight=self.tone_weight,
                      autocast=self.autocast, prior=prior)


def attend(q: torch.Tensor, k: torch.Tensor, ab: torch.Tensor, q_tone: torch.Tensor | None = None,
           k_tone: torch.Tensor | None = None, *, temperature: float, tone_weight: float,
           autocast=contextlib.nullcontext, prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention of frame cells over reference cells.

    ``q``: (N, C, hq, wq) frame features; ``k``: (1 or N, C, hk, wk) reference
    features; ``ab``: (1 or N, 2, hk, wk) reference a/b at the features' size;
    ``q_tone``, ``k_tone``: (N, P), (1 or N, Q) the cells' mean L / 100
    (:meth:`FeatureMatcher.tones`): with ``tone_weight``, a reference cell of
    another tone weighs less (the low-level luminance term beside the features:
    semantics alone match a red coat to a green one). ``prior``: (1, Q) log-weights
    added to the reference cells' logits (several stills attended together: the
    nearer in time weighs more where their cells match alike). Returns (N, 2, hq, wq)
    a/b and (N, 1, hq, wq) best feature similarity. Differentiable where an input needs a
    gradient (training); otherwise :func:`_attend_inference`, in place.
    """
    n, c, hq, wq = q.shape
    qf = q.flatten(2).transpose(1, 2)  # (N, P, C)
    kf = k.flatten(2)  # (1 or N, C, Q)
    if not (torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or ab.requires_grad)):
        return _attend_inference(qf, kf, ab, q_tone, k_tone, temperature, tone_weight, autocast, prior, (hq, wq))
    with autocast():
        sim = (qf @ kf).float()  # (N, P, Q)
    best = sim.amax(dim=2)
    if tone_weight > 0 and q_tone is not None and k_tone is not None:
        sim = sim - tone_weight * (q_tone[:, :, None] - k_tone[:, None, :]).abs()
    sim = sim / temperature
    if prior is not None:
        sim = sim + prior[:, None, :]
    attn = torch.softmax(sim, dim=2)
    out = attn @ ab.flatten(2).transpose(1, 2)  # (N, P, 2)
    return out.transpose(1, 2).reshape(n, 2, hq, wq), best.view(n, 1, hq, wq)


def _attend_inference(qf, kf, ab, q_tone, k_tone, temperature, tone_weight, autocast, prior, size):
    """:func:`attend` when nothing needs a gradient, in fewer passes over the (P, Q) map (the same
    answer to float rounding): the temperature folded into the frame's features, each row shifted by
    its best similarity (an upper bound of its logits: the tone term only lowers them) and
    exponentiated in place, the weighted sum normalised once per cell instead of per weight."""
    n = qf.shape[0]
    with autocast():
        sim = (qf * (1.0 / temperature)) @ kf
    sim = sim.float()  # (N, P, Q) logits before the tone term
    best = sim.amax(dim=2, keepdim=True)
    if tone_weight > 0 and q_tone is not None and k_tone is not None:
        gap = (q_tone[:, :, None] - k_tone[:, None, :]).abs_()  # (N, P, Q) |tone difference| (cdist: 10x slower)
        sim.sub_(gap, alpha=tone_weight / temperature)
    if prior is not None:
        sim.add_(prior[:, None, :])
        shift = sim.amax(dim=2, keepdim=True)
    else:
        shift = best
    e = sim.sub_(shift).exp_()
    out = (e @ ab.flatten(2).transpose(1, 2).to(e.dtype)) / e.sum(dim=2, keepdim=True)  # (N, P, 2)
    return out.transpose(1, 2).reshape(n, 2, *size), (best * temperature).view(n, 1, *size)
