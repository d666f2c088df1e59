"""One object, one colour: chroma pooled within regions of even luminance.

The ``auto`` colorizer's per-pixel answer can change hue inside a sky, a wall
or a uniform, where the luminance gives the network nothing to tell the
parts apart. Each pooling here replaces a pixel's a/b by the
confidence-weighted mean a/b of the pixels near it in both place and
luminance, at the working size (stride 4 of the network), before the
edge-aware upsampling. Three ways, measured against each other on the
validation photos by ``benchmarks/fit_auto_decoding.py``:

- ``grid``: a bilateral grid (Chen et al. 2007): a/b times weight splatted
  into cells of ``cell`` pixels by ``lum`` L units, blurred along all three
  axes, sliced back trilinearly. Regions of one luminance share one colour
  over several cells; a luminance edge stops the pooling.
- ``superpixel``: SLIC (Achanta et al. 2012) from a grid of seeds every
  ``cell`` pixels, k-means in (L, x, y) over each seed's 3 x 3 neighbourhood;
  a pixel takes its superpixel's weighted mean.
- ``guided``: normalised convolution through a guided filter (He et al.
  2013) of radius ``cell``: guided(w * ab) / guided(w), guided by L.

Each returns the pooled a/b and the pooled weight (the region's mean
confidence), both (N, C, h, w).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["POOLS", "pool_chroma", "grid_pool", "superpixel_pool", "guided_pool"]

_EPS = 1e-6


def pool_chroma(kind: str, ab: torch.Tensor, w: torch.Tensor, L: torch.Tensor, cell: int = 8,
                lum: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``ab`` (N, 2, h, w), weights ``w`` (N, 1, h, w) in [0, 1], ``L`` (N, 1, h, w) in
    [0, 100] -> (pooled ab, pooled weight) by the ``kind`` of pooling (:data:`POOLS`);
    ``off`` returns them as they are."""
    if kind == "off":
        return ab, w
    if kind not in POOLS:
        raise ValueError(f"unknown consensus '{kind}' (valid: off, {', '.join(POOLS)})")
    return POOLS[kind](ab.float(), w.float(), L.float(), cell, lum)


def grid_pool(ab, w, L, cell: int = 8, lum: float = 8.0, passes: int = 2):
    n, _, h, wd = ab.shape
    gh, gw, gd = -(-h // cell) + 1, -(-wd // cell) + 1, int(100 // lum) + 2
    dev = ab.device
    iy = torch.round(torch.arange(h, device=dev, dtype=torch.float32) / cell).long()
    ix = torch.round(torch.arange(wd, device=dev, dtype=torch.float32) / cell).long()
    il = torch.round(L.clamp(0, 100) / lum).long().clamp(0, gd - 1)[:, 0]  # (N, h, w)
    idx = (il * gh + iy[None, :, None]) * gw + ix[None, None, :]
    vals = torch.cat((ab * w, w, torch.ones_like(w)), dim=1).flatten(2)  # (N, 4, h*w)
    grid = torch.zeros(n, 4, gd * gh * gw, device=dev, dtype=torch.float32)
    grid.scatter_add_(2, idx.flatten(1)[:, None].expand(-1, 4, -1), vals)
    grid = grid.view(n * 4, 1, gd, gh, gw)
    k = torch.tensor([0.25, 0.5, 0.25], device=dev)
    for _ in range(passes):
        for shape, pad in (((3, 1, 1), (0, 0, 0, 0, 1, 1)), ((1, 3, 1), (0, 0, 1, 1, 0, 0)),
                           ((1, 1, 3), (1, 1, 0, 0, 0, 0))):
            grid = F.conv3d(F.pad(grid, pad, mode="replicate"), k.view(1, 1, *shape))
    grid = grid.view(n, 4, gd, gh, gw)
    gx = torch.arange(wd, device=dev, dtype=torch.float32) / cell / (gw - 1) * 2 - 1
    gy = torch.arange(h, device=dev, dtype=torch.float32) / cell / (gh - 1) * 2 - 1
    gz = (L.clamp(0, 100) / lum)[:, 0] / (gd - 1) * 2 - 1  # (N, h, w)
    coords = torch.stack((gx[None, None].expand(n, h, wd), gy[None, :, None].expand(n, h, wd), gz), dim=-1)
    s = F.grid_sample(grid, coords[:, None], mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]
    return s[:, :2] / s[:, 2:3].clamp(min=_EPS), s[:, 2:3] / s[:, 3:4].clamp(min=_EPS)


def superpixel_pool(ab, w, L, cell: int = 8, lum: float = 8.0, iters: int = 4):
    n, _, h, wd = ab.shape
    dev = ab.device
    sh, sw = max(1, round(h / cell)), max(1, round(wd / cell))
    # seeds: the mean L and position of each grid cell
    ys = torch.arange(h, device=dev, dtype=torch.float32)[:, None].expand(h, wd)
    xs = torch.arange(wd, device=dev, dtype=torch.float32)[None].expand(h, wd)
    home_y = (ys * sh / h).long().clamp(max=sh - 1)
    home_x = (xs * sw / wd).long().clamp(max=sw - 1)
    feats = torch.cat((L / lum, ys[None, None].expand(n, 1, h, wd) / cell, xs[None, None].expand(n, 1, h, wd) / cell),
                      dim=1).flatten(2)  # (N, 3, P)
    offs = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    cand = torch.stack([((home_y + dy).clamp(0, sh - 1) * sw + (home_x + dx).clamp(0, sw - 1)).flatten()
                        for dy, dx in offs])  # (9, P)
    label = (home_y * sw + home_x).flatten()[None].expand(n, -1)  # (N, P)
    k = sh * sw
    for it in range(iters + 1):
        sums = torch.zeros(n, 4, k, device=dev).scatter_add_(
            2, label[:, None].expand(-1, 4, -1), torch.cat((feats, torch.ones_like(feats[:, :1])), dim=1))
        centres = sums[:, :3] / sums[:, 3:].clamp(min=1)  # (N, 3, K)
        if it == iters:
            break
        c = centres[:, :, cand]  # (N, 3, 9, P)
        d = (c - feats[:, :, None]).square().sum(dim=1)  # (N, 9, P)
        label = torch.gather(cand[None].expand(n, -1, -1), 1, d.argmin(dim=1, keepdim=True))[:, 0]
    vals = torch.cat((ab * w, w), dim=1).flatten(2)
    sums = torch.zeros(n, 3, k, device=dev).scatter_add_(2, label[:, None].expand(-1, 3, -1), vals)
    count = torch.zeros(n, 1, k, device=dev).scatter_add_(2, label[:, None], torch.ones_like(vals[:, :1]))
    got = torch.gather(torch.cat((sums, count), dim=1), 2, label[:, None].expand(-1, 4, -1)).view(n, 4, h, wd)
    return got[:, :2] / got[:, 2:3].clamp(min=_EPS), got[:, 2:3] / got[:, 3:4].clamp(min=1)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1, stride=1)


def guided_pool(ab, w, L, cell: int = 8, lum: float = 8.0):
    r = max(1, cell)
    eps = (lum / 100.0) ** 2
    I = L / 100.0
    mean_I = _box(I, r)
    var_I = _box(I * I, r) - mean_I * mean_I
    p = torch.cat((ab * w, w), dim=1)
    mean_p = _box(p, r)
    A = (_box(I * p, r) - mean_I * mean_p) / (var_I + eps)
    B = mean_p - A * mean_I
    q = _box(A, r) * I + _box(B, r)
    return q[:, :2] / q[:, 2:3].clamp(min=_EPS), q[:, 2:3].clamp(0, 1)


POOLS = {"grid": grid_pool, "superpixel": superpixel_pool, "guided": guided_pool}
