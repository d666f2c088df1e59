"""``transfer``: luminance-conditioned colour transfer from a reference still.

After Welsh et al. 2002 ("Transferring color to greyscale images"), with the
luminance remapping of Reinhard et al. 2001: the reference's L is remapped to
the shot's L mean and spread, then every target pixel takes the mean chroma of
the reference pixels with the same luminance and texture (local standard
deviation of L). Welsh et al. search jittered samples for the best match; here
the reference is summarised once per shot as a smoothed (L, texture) -> ab
table, so a frame costs one table lookup, batched on the device, and the
colours cannot flicker within a shot. Thin table cells are pulled towards the
reference's mean chroma.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..color import rgb_to_lab
from ..config import TransferConfig
from ..errors import ModelError
from ..ops import box_filter, gaussian_blur
from .registry import Colorizer, register_colorizer

__all__ = ["TransferColorizer", "local_std"]


def local_std(L: torch.Tensor, window: int) -> torch.Tensor:
    """(N, 1, H, W) -> standard deviation of L over a window x window box."""
    mean = box_filter(L, window)
    return (box_filter(L * L, window) - mean * mean).clamp_min(0).sqrt()


@register_colorizer("transfer", config=TransferConfig)
class TransferColorizer(Colorizer):
    needs_reference = True

    def __init__(self, *, device: torch.device, config: TransferConfig | None = None):
        super().__init__(device)
        self.cfg = config or TransferConfig()
        self._ref_lab: torch.Tensor | None = None
        self._table: torch.Tensor | None = None

    def begin_shot(self, reference: torch.Tensor | None, choice=None) -> None:
        if reference is None:
            raise ModelError("the transfer colorizer needs a reference still for every shot")
        if reference.dim() != 4 or reference.shape[:2] != (1, 3):
            raise ValueError(f"reference must have a shape of (1, 3, H, W). Got {tuple(reference.shape)}")
        ref = reference.to(self.device, torch.float32)
        h, w = ref.shape[-2:]
        scale = self.cfg.max_side / max(h, w)
        if scale < 1:
            ref = F.interpolate(ref, scale_factor=scale, mode="area")
        self._ref_lab = rgb_to_lab(ref)
        self._table = None  # fitted on the shot's first batch

    def _coords(self, L: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) L -> (N, H, W, 2) grid_sample coordinates in [-1, 1]."""
        tex = local_std(L, self.cfg.window)
        u = (L / 100.0).clamp(0, 1) * 2 - 1
        v = (tex / self.cfg.texture_max).clamp(0, 1) * 2 - 1
        return torch.cat((u, v), dim=1).permute(0, 2, 3, 1)

    def _fit(self, L: torch.Tensor) -> None:
        c = self.cfg
        lab = self._ref_lab
        # bring the reference to the shot's pixel scale, so texture means the same on both sides
        area = L.shape[-1] * L.shape[-2]
        s = math.sqrt(area / (lab.shape[-1] * lab.shape[-2]))
        if abs(s - 1) > 0.05:
            size = (max(8, round(lab.shape[-2] * s)), max(8, round(lab.shape[-1] * s)))
            lab = F.interpolate(lab, size=size, mode="area" if s < 1 else "bilinear", align_corners=None if s < 1 else False)
        ref_L, ref_ab = lab[:, :1], lab[:, 1:]
        if c.remap_luminance:
            mu_t, sd_t = L.mean(), L.std().clamp_min(1e-3)
            mu_r, sd_r = ref_L.mean(), ref_L.std().clamp_min(1e-3)
            ref_L = ((ref_L - mu_r) * (sd_t / sd_r) + mu_t).clamp(0, 100)
        grid = self._coords(ref_L).reshape(-1, 2)
        # splat every reference pixel bilinearly into the (texture, L) table
        nl, nt = c.l_bins, c.texture_bins
        x = (grid[:, 0] + 1) / 2 * (nl - 1)
        y = (grid[:, 1] + 1) / 2 * (nt - 1)
        x0, y0 = x.floor().clamp(0, nl - 1), y.floor().clamp(0, nt - 1)
        fx, fy = x - x0, y - y0
        ab = ref_ab.reshape(2, -1)
        sums = torch.zeros(3, nt * nl, device=L.device)
        vals = torch.cat((ab, torch.ones_like(ab[:1])), dim=0)
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            wx = fx if dx else 1 - fx
            wy = fy if dy else 1 - fy
            xi = (x0 + dx).clamp(max=nl - 1).long()
            yi = (y0 + dy).clamp(max=nt - 1).long()
            sums.index_add_(1, yi * nl + xi, vals * (wx * wy))
        sums = gaussian_blur(sums.view(1, 3, nt, nl), c.smooth)
        count = sums[:, 2:]
        prior = c.prior * count.sum() / (nl * nt)
        mean_ab = ab.mean(dim=1).view(1, 2, 1, 1)
        self._table = (sums[:, :2] + prior * mean_ab) / (count + prior).clamp_min(1e-6)

    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        if self._ref_lab is None:
            raise ModelError("colorize() called before begin_shot()")
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must have a shape of (N, 1, H, W). Got {tuple(L.shape)}")
        if self._table is None:
            self._fit(L)
        table = self._table.expand(L.shape[0], -1, -1, -1)
        return F.grid_sample(table, self._coords(L), mode="bilinear", padding_mode="border", align_corners=True)
