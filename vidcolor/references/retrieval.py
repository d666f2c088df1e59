"""Choosing a reference still for a shot from a folder of colour stills.

Reference retrieval as in Deep Exemplar-based Colorization (He et al. 2018,
section 4), with the frozen EfficientNet-Lite0 backbone
(:mod:`vidcolor.models.backbone`) in place of VGG-19. Both sides are compared
on luminance only: a shot is black and white, so each still is converted to
its Lab L first and both go through the network as gray images.

1. Global ranking. Every still gets a semantic embedding (the backbone's
   pooled 1280-d head features, centred on the features' expected value, see
   below). A shot is ranked against all stills by the cosine similarity ``g``
   of the embeddings; the ``top_k`` best go on.
2. Local ranking. For each of those candidates:

   - ``c``, semantic correspondence: every cell of the shot's stride-32 head
     map finds its most similar cell (cosine) in the still's map, and ``c`` is
     the mean of those best similarities (the paper's nearest-neighbour
     feature term, on a 7x7 grid at the working size);
   - ``h``, the correlation of 64-bin luminance histograms (L in [0, 100]),
     as OpenCV's ``compareHist(..., HISTCMP_CORREL)`` computes it.

   ``local_score = (max(c, 0) + max(h, 0)) / 2``.

The combined score, in [0, 1] in practice::

    score = (1 - w) * max(g, 0) + w * local_score        w = local_weight = 0.5

and the candidates are returned best first. A shot whose best score is under
``threshold`` (default :data:`DEFAULT_THRESHOLD`) has "no good match":
:meth:`ReferenceIndex.best` returns None for it, and the caller falls back to
automatic colour (or to a still chosen otherwise). Why 0.5: on the
development set a shot scores 0.87-0.99 against its own keyframe, 0.75-0.93
against the same scene mirrored and re-framed, and at most 0.24 against the
other clips' stills; on 98 photographs with jittered gray crops as queries,
true matches score 0.57 or more in 90% of cases, while the best of 60
unrelated stills has a median of 0.39 and a 90th percentile of 0.54 (close
scenes, e.g. two landscape wallpapers, reach 0.6-0.7). Raise it to be
stricter.

Centring: ReLU6 features are all non-negative, so the raw cosine of any two
photographs is well above 0 whatever they show. Subtracting the
features' mean under ImageNet statistics, which the head's BatchNorm gives in
closed form (a ReLU6 of a normal with the BN's shift and scale), makes
unrelated images score near 0 and leaves the same scene near 1 without
needing any data set. (On the project's 98 photographs, gray, with random
crops, flips and luminance changes as queries: unrelated pairs 0.25 raw ->
0.07 centred on average, 99th percentile 0.57 -> 0.48; true pairs 0.85 ->
0.81; top-1 100% either way.)

Grain: a clean colour still given for a grainy print scores low against
it (the backbone's features and the histogram see the grain: a development
shot's own frame, clean, 0.64 against the grainy, vignetted, soft print of it
where the print's own frame scored 0.78), and a partial score blends
automatic colour in. ``grain`` (L units, see :func:`grain_sigma`) adds that
much synthetic film grain (seeded) to the stills' luminance before their
features are computed, so a still is compared with the print as the print
would show it; the caller (``references.choose``) sets it per shot from the
grain the shot has beyond the still's own, and ``grain_scale`` (working
pixels per pixel of the film) makes the grain at the film's pixel size, as
the print's own grain is (see :func:`add_grain`).

Soft focus: a print softer than its still (an old lens, a print a generation
or two from the negative) scores low the same way (a development clip at
twice the old-film benchmark's blur: 0.33 against 0.72 clean). ``blur``
(working pixels) blurs the stills' luminance (before any grain) so that a
still is compared as the print shows it; the caller picks it from
``softened`` (asked for with ``soften``: a folder's or gallery's index has no
use for it): each still's fine detail after each of :data:`BLURS`.

Everything runs at a small working size (short side :data:`WORK_SIZE`
pixels, long side at most twice that); the stills' features are computed once
when the index is built and kept in memory.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ..color import rgb_to_lab
from ..config import RetrievalConfig
from ..errors import InputError
from ..ops import gaussian_blur
from ..models.backbone import EfficientNetLite0, get_backbone, luminance_input

__all__ = [
    "Match",
    "ReferenceIndex",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOP_K",
    "WORK_SIZE",
    "HIST_BINS",
    "working_l",
    "working_shape",
    "l_histogram",
    "hist_correl",
    "grain_sigma",
    "add_grain",
    "BLURS",
]

log = logging.getLogger("vidcolor")

#: Score under which a shot counts as having no good reference in the folder (the config's default).
DEFAULT_THRESHOLD = RetrievalConfig.threshold
#: Candidates kept by the global ranking for the local ranking (the config's default).
DEFAULT_TOP_K = RetrievalConfig.top_k
#: Short side, in pixels, at which frames and stills are compared.
WORK_SIZE = 224
#: Bins of the luminance histograms (over L in [0, 100]).
HIST_BINS = 64
#: Gaussian blurs (sigma, working pixels) a still may be given to look as soft as a print.
BLURS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


@dataclass(frozen=True)
class Match:
    """One candidate still for a shot: ``score`` combines ``global_score``
    (embedding cosine) and ``local_score`` (correspondence and histogram)."""

    path: Path
    score: float
    global_score: float
    local_score: float


@dataclass
class _Entry:
    embed: torch.Tensor  # (N, 1280) centred, unit length
    cells: torch.Tensor  # (N, P, 1280) head cells, centred, unit length
    hist: torch.Tensor  # (N, HIST_BINS) sums to 1


def working_l(L: torch.Tensor, size: int = WORK_SIZE) -> torch.Tensor:
    """(N, 1, H, W) L -> L resized (bilinear, antialiased when shrinking) so the short side is
    ``size`` and the long side at most ``2 * size``."""
    h, w = L.shape[-2:]
    oh, ow = working_shape(h, w, size)
    if (oh, ow) == (h, w):
        return L.float()
    return F.interpolate(L.float(), size=(oh, ow), mode="bilinear", align_corners=False, antialias=oh < h)


def working_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """The (h, w) :func:`working_l` brings an h x w picture to: short side ``size``, long side at most
    ``2 * size`` (unlike :func:`vidcolor.ops.work_shape`, it enlarges and caps the long side)."""
    scale = size / min(h, w)
    if max(h, w) * scale > 2 * size:
        scale = 2 * size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def l_histogram(L: torch.Tensor, bins: int = HIST_BINS) -> torch.Tensor:
    """(N, 1, H, W) L in [0, 100] -> (N, bins) normalised histograms."""
    flat = L.reshape(L.shape[0], -1).float().clamp(0, 100)
    idx = (flat * (bins / 100.0)).long().clamp_(max=bins - 1)
    hist = torch.zeros(L.shape[0], bins, device=L.device).scatter_add_(1, idx, torch.ones_like(flat))
    return hist / hist.sum(dim=1, keepdim=True)


def hist_correl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of histograms along the last dim (OpenCV's
    HISTCMP_CORREL), broadcasting; 1 for equal histograms, 0 when flat."""
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    den = (a.square().sum(-1) * b.square().sum(-1)).sqrt()
    return (a * b).sum(-1) / den.clamp(min=1e-12)


def grain_sigma(L: torch.Tensor) -> torch.Tensor:
    """(N, 1, h, w) L -> (N,) robust s.d. of its fine detail (L units): 1.4826 x the median absolute
    difference from a 5-tap Gaussian blur (sigma 1, mirrored border). Picture detail counts too; grain raises it."""
    r = L.float() - gaussian_blur(L.float(), 1.0, truncate=2.0, padding="reflect")
    r = r.flatten(1)
    return 1.4826 * (r - r.median(dim=1, keepdim=True).values).abs().median(dim=1).values


def add_grain(L: torch.Tensor, amount: float, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    """(N, 1, h, w) L in [0, 100] with film grain added (white noise blurred by 0.7 px, scaled so that
    its own :func:`grain_sigma` is ``amount``; seeded, the same for the same shape).

    ``scale``: ``L``'s pixels per pixel of the film the grain is to look like. Grain lives at the
    film's pixel size: it is made at that size and resized to ``L``'s as the film's frames are (a
    176x144 film's grain, brought up to a 224-pixel working size, is coarser than the working
    pixel; a 1080p film's, brought down, is finer)."""
    if amount <= 0:
        return L
    gen = torch.Generator().manual_seed(seed)
    h, w = L.shape[-2:]
    nh, nw = max(1, round(h / scale)), max(1, round(w / scale))
    n = gaussian_blur(torch.randn((1, 1, nh, nw), generator=gen), 0.7, truncate=2.0, padding="reflect")
    if (nh, nw) != (h, w):
        n = F.interpolate(n, size=(h, w), mode="bilinear", align_corners=False, antialias=nh > h)
    n = n * (amount / grain_sigma(n).clamp(min=1e-6)).view(-1, 1, 1, 1)
    return (L + n.to(L.device, L.dtype)).clamp(0, 100)


def _soft(L: torch.Tensor, sigma: float) -> torch.Tensor:
    """``L`` blurred by a Gaussian of ``sigma`` pixels (mirrored border); itself for 0."""
    return gaussian_blur(L.float(), sigma, padding="reflect") if sigma > 0 else L


def _head_mean(model: EfficientNetLite0) -> torch.Tensor:
    """E[relu6(z)], z ~ N(beta, gamma^2): the head features' expected value per
    channel under the statistics the head's BatchNorm was trained on."""
    bn = model._bn1
    mu, sd = bn.bias.detach().double(), bn.weight.detach().double().abs().clamp(min=1e-6)

    def pdf(t):
        return torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)

    def cdf(t):
        return 0.5 * (1 + torch.erf(t / math.sqrt(2)))

    a, b = (0 - mu) / sd, (6 - mu) / sd
    # E[z; 0 < z < 6] + 6 P(z >= 6)
    mean = mu * (cdf(b) - cdf(a)) + sd * (pdf(a) - pdf(b)) + 6 * (1 - cdf(b))
    return mean.float()


class ReferenceIndex:
    """Colour stills ready to be ranked against shots.

    ``stills``: (path, (1, 3, H, W) RGB in [0, 1]) pairs, as
    :class:`vidcolor.references.ReferenceStore` loads them. Their features
    are computed once, here, on ``device``.
    """

    def __init__(
        self,
        stills: Sequence[tuple[Path, torch.Tensor]],
        device: torch.device | str = "cpu",
        *,
        top_k: int = DEFAULT_TOP_K,
        threshold: float = DEFAULT_THRESHOLD,
        local_weight: float = 0.5,
        size: int = WORK_SIZE,
        grain: float = 0.0,
        grain_scale: float = 1.0,
        blur: float = 0.0,
        soften: bool = False,
    ):
        if not stills:
            raise InputError("no reference stills to choose from")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if not 0.0 <= local_weight <= 1.0:
            raise ValueError(f"local_weight must be in [0, 1], got {local_weight}")
        self.device = torch.device(device)
        self.top_k = top_k
        self.threshold = threshold
        self.local_weight = local_weight
        self.size = size
        self.grain = float(grain)
        self.grain_scale = float(grain_scale)
        self.blur = float(blur)
        self._model = get_backbone(self.device)
        self._centre = _head_mean(self._model).to(self.device)
        self.paths: list[Path] = []
        self.grains: list[float] = []  # each still's own grain_sigma at the working size, before ``grain``
        self.softened: list[tuple[float, ...]] = []  # ... and after each of BLURS (``soften``: 60 ms a still)
        entries = []
        for path, rgb in stills:
            if rgb.dim() == 3:
                rgb = rgb[None]
            if rgb.dim() != 4 or rgb.shape[:2] != (1, 3):
                raise InputError(f"expected a (1, 3, H, W) RGB still, got {tuple(rgb.shape)}", path)
            rgb = rgb.to(self.device, torch.float32)
            L = rgb_to_lab(self._resize_rgb(rgb))[:, :1]
            self.grains.append(float(grain_sigma(L.float()).item()))
            if soften:
                self.softened.append(tuple(float(grain_sigma(_soft(L, b)).item()) for b in BLURS))
            entries.append(self._describe(add_grain(_soft(L, self.blur), self.grain, scale=self.grain_scale)))
            self.paths.append(Path(path))
        self._embeds = torch.cat([e.embed for e in entries])  # (S, 1280)
        self._entries = entries

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, store, device: torch.device | str | None = None, **kwargs
    ) -> "ReferenceIndex":
        """Index every image in ``folder`` (natural order), loaded through
        ``store`` (a :class:`vidcolor.references.ReferenceStore`)."""

        from .stills import list_images

        folder = Path(folder)
        if not folder.is_dir():
            raise InputError("reference folder not found" if not folder.exists() else "not a folder", folder)
        paths = list_images(folder)
        if not paths:
            raise InputError("reference folder has no images", folder)
        device = store.device if device is None else device
        return cls([(p, store.get(p)) for p in paths], device, **kwargs)

    def __len__(self) -> int:
        return len(self.paths)

    # -- features --------------------------------------------------------------------
    def _resize_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        h, w = rgb.shape[-2:]
        oh, ow = working_shape(h, w, self.size)
        if (oh, ow) == (h, w):
            return rgb
        return F.interpolate(rgb, size=(oh, ow), mode="bilinear", align_corners=False, antialias=oh < h).clamp(0, 1)

    @torch.inference_mode()
    def _describe(self, L: torch.Tensor) -> _Entry:
        """Features of (N, 1, h, w) L already at the working size."""
        feats = self._model.features(luminance_input(L), upto=32)
        head = feats.head - self._centre.view(1, -1, 1, 1)
        embed = F.normalize(feats.pooled - self._centre, dim=1)
        cells = F.normalize(head.flatten(2).transpose(1, 2), dim=2)
        return _Entry(embed, cells, l_histogram(L))

    def describe_query(self, L: torch.Tensor) -> _Entry:
        """Features of a shot given as (N, 1, H, W) L in [0, 100] (N frames)."""
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"expected (N, 1, H, W) L in [0, 100], got {tuple(L.shape)}")
        return self._describe(working_l(L.to(self.device), self.size))

    # -- ranking ---------------------------------------------------------------------
    @torch.inference_mode()
    def rank(self, L: torch.Tensor, k: int | None = None) -> list[Match]:
        """Candidates for a shot, best first: the ``k`` (default ``top_k``) stills
        with the highest global score, ordered by the combined score.

        ``L``: (N, 1, H, W) luminance in [0, 100] of one or a few frames of the
        shot; each term is averaged over the frames.
        """
        q = self.describe_query(L)
        k = min(self.top_k if k is None else k, len(self.paths))
        g_all = (q.embed @ self._embeds.T).mean(0)  # (S,)
        cand = torch.topk(g_all, k).indices.tolist()
        w = self.local_weight
        out = []
        for i in cand:
            e = self._entries[i]
            # (N, P, 1280) x (1, Q, 1280) -> (N, P, Q): best cell per query cell
            c = torch.einsum("npd,qd->npq", q.cells, e.cells[0]).amax(dim=2).mean().item()
            h = hist_correl(q.hist, e.hist).mean().item()
            g = g_all[i].item()
            local = (max(c, 0.0) + max(h, 0.0)) / 2
            score = (1 - w) * max(g, 0.0) + w * local
            out.append(Match(self.paths[i], score, g, local))
        out.sort(key=lambda m: -m.score)
        return out

    def best(self, L: torch.Tensor) -> Match | None:
        """The best match for a shot, or None when it scores under ``threshold``."""
        ranked = self.rank(L)
        if not ranked or ranked[0].score < self.threshold:
            if ranked:
                log.debug("best reference %s scores %.3f < %.3f: no good match", ranked[0].path, ranked[0].score, self.threshold)
            return None
        return ranked[0]
