"""The fusion step of the exemplar colorizer: two alignments in, a/b out.

Inputs at the working size, all (N, C, h, w): ``L`` (0..100), ``ab_flow`` and
``conf_flow`` (the reference's a/b carried by optical flow, and where it
holds), ``ab_att`` and ``sim`` (the a/b of semantic attention, and the best
feature similarity).

- :class:`RuleFusion`: flow where it holds, attention elsewhere, attention's
  colour faded where even the best similarity is low. No weights.
- :class:`FusionNet`: a small U-Net (He et al.'s colorization sub-net, sized
  for a CPU) that starts from the rule's blend and predicts a correction,
  trained by ``vidcolor train exemplar``; none ships yet (``exemplar.weights``
  defaults to the rule; :mod:`vidcolor.weights`).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import resolve
from .store import load_net, save_net, strict

__all__ = ["RuleFusion", "FusionNet", "load_fusion", "save_fusion"]


def rule_blend(ab_flow, conf_flow, ab_att, sim, sim_low: float = 0.2, sim_high: float = 0.5) -> torch.Tensor:
    w_att = ((sim - sim_low) / (sim_high - sim_low)).clamp(0, 1)
    return conf_flow * ab_flow + (1 - conf_flow) * w_att * ab_att


class RuleFusion(nn.Module):
    """Confidence-weighted blend of the two alignments (no learned weights)."""

    def __init__(self, sim_low: float = 0.2, sim_high: float = 0.5):
        super().__init__()
        self.sim_low, self.sim_high = sim_low, sim_high

    def forward(self, L, ab_flow, conf_flow, ab_att, sim):
        return rule_blend(ab_flow, conf_flow, ab_att, sim, self.sim_low, self.sim_high)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class FusionNet(nn.Module):
    """U-Net over [L, ab_flow, conf_flow, ab_att, sim, rule blend] -> a/b.

    ``width``: channels of the first level (doubling per level, ``depth``
    levels). The last layer starts at zero, so an untrained net is the rule.
    """

    def __init__(self, width: int = 24, depth: int = 3, sim_low: float = 0.2, sim_high: float = 0.5):
        super().__init__()
        self.config = {"width": width, "depth": depth, "sim_low": sim_low, "sim_high": sim_high}
        self.sim_low, self.sim_high = sim_low, sim_high
        chans = [width * 2 ** i for i in range(depth)]
        self.down = nn.ModuleList()
        cin = 9
        for c in chans:
            self.down.append(_block(cin, c))
            cin = c
        self.up = nn.ModuleList()
        for c in reversed(chans[:-1]):
            self.up.append(_block(cin + c, c))
            cin = c
        self.out = nn.Conv2d(cin, 2, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, L, ab_flow, conf_flow, ab_att, sim):
        base = rule_blend(ab_flow, conf_flow, ab_att, sim, self.sim_low, self.sim_high)
        x = torch.cat((L / 50.0 - 1.0, ab_flow / 64.0, conf_flow, ab_att / 64.0, sim, base / 64.0), dim=1)
        h, w = x.shape[-2:]
        m = 2 ** (len(self.down) - 1)
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = []
        for i, blk in enumerate(self.down):
            if i:
                x = F.avg_pool2d(x, 2)
            x = blk(x)
            skips.append(x)
        for blk, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = blk(torch.cat((x, skip), dim=1))
        delta = self.out(x)[..., :h, :w] * 64.0
        return base + delta


def save_fusion(net: FusionNet, path: str | Path, meta: dict) -> None:
    """Weights as safetensors; ``meta`` (config, data, steps) in its metadata."""
    save_net(net.state_dict(), net.config, path, meta)


def load_fusion(weights: str | None, device: torch.device) -> nn.Module:
    """The fusion step ``exemplar.weights`` names (:func:`vidcolor.weights.resolve`): "rule"
    (the default; None too), "packaged" (a ModelError while none ships), or a safetensors file."""
    w = resolve("exemplar.weights", weights)
    if w.kind == "rule":
        return RuleFusion().to(device)
    return load_net(w.require(), "exemplar", strict(FusionNet), device)
