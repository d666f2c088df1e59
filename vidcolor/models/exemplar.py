"""``exemplar``: colour from a reference still where it matches the frame.

After He et al., "Deep Exemplar-based Colorization" (SIGGRAPH 2018), adapted
to a CPU budget. Per shot, the reference is brought to the working size and
described once (Lab, luminance features). Per frame, at the working size:

1. Geometric alignment: dense optical flow (OpenCV DIS) from the frame's
   luminance to the reference's and back. Where the two agree (forward-
   backward check) and the luminances under the flow match, the reference's
   a/b are carried over pixel for pixel: the most precise correspondence
   there is when the still is a coloured keyframe of the shot. A still framed
   otherwise (a publicity photo of the scene, the keyframe of a shot that
   zooms or pans) lies further from the frame than the flow reaches: an
   affine map fitted to ORB feature matches by RANSAC (:class:`GlobalAlign`)
   brings the still onto the frame first, where it clearly aligns them, and
   the flow corrects what remains.
2. Semantic alignment: both luminances through the frozen EfficientNet-Lite0
   (stride-8 and stride-16 maps, centred, unit length, then the learned
   projection of the similarity sub-net, :mod:`vidcolor.models.matcher`), cosine
   similarity between every frame cell and every reference cell, softmax
   attention with temperature ``temperature``, a reference cell of another
   mean luminance weighing less (``tone_weight``: the low-level luminance
   term): the warped reference a/b, made to follow the frame's edges by a
   guided filter (``attention_radius``), and, per cell, the best similarity
   (the confidence).
3. Fusion: the fusion network (:mod:`vidcolor.models.fusion`) takes L, both
   warped a/b and both confidences and predicts a/b; without trained weights
   a fixed rule blends the two by their confidences.
4. Shot gate: the shot's :class:`~vidcolor.references.ShotChoice` says how
   much of the still's colour to give (its ``gate``, from the still's match
   with the shot, scored by :mod:`vidcolor.references.choose`): a still that
   matches only partly gives faded colour rather than wrong colour.
5. Full size: where the flow holds, the reference's chroma is carried at
   full size by the flow brought up from the working size; elsewhere the
   fused chroma is brought up by a fast guided filter guided by the
   full-size L, so colour edges follow the film's edges.

Colour is carried as the video's own Cb/Cr (``chroma = "cbcr"``), scaled by
255 inside (about -128..127, like a/b): a black-and-white film is the luma Y'
of its colour original, so the reference's Cb/Cr on the frame's own Y' is
its colour exactly, where Lab a/b on an L derived from Y' are not.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..color import gray_to_l, rgb_to_cbcr, rgb_to_luma
from ..config import ExemplarConfig
from ..errors import ModelError
from ..ops import DIS_PRESETS, box_filter, dis_flow, fit_exposure, match_exposure, pixel_grid, work_shape
from .matcher import FeatureMatcher, load_matcher
from .registry import Colorizer, ShotStats, register_colorizer

if TYPE_CHECKING:
    from ..references import ShotChoice

__all__ = ["ExemplarColorizer", "PreparedStill", "still_at", "l8_of", "working_l", "guided_upsample", "flow_align", "GlobalAlign", "FeatureMatcher"]

log = logging.getLogger("vidcolor")

FRESH_FLOOR = 0.2  # confidence of colour that the flow to the reference does not carry


def guided_upsample(ab: torch.Tensor, L_lo: torch.Tensor, L_hi: torch.Tensor, radius: int = 2,
                    eps: float = 1e-3) -> torch.Tensor:
    """a/b at low size -> a/b at ``L_hi``'s size, following ``L_hi``'s edges.

    Fast guided filter (He et al. 2010/2015): the local linear model
    ab = A * L + B is fitted at the low size over (2 * radius + 1)^2 windows
    and applied to the full-size L. ``ab``, ``L_lo``: (N, C, h, w), (N, 1, h, w);
    ``L_hi``: (N, 1, H, W), L in [0, 100]. ``eps`` is on L / 100 squared.
    """
    if ab.shape[-2:] != L_lo.shape[-2:]:
        raise ValueError(f"ab and L_lo must share a size, got {tuple(ab.shape)} and {tuple(L_lo.shape)}")
    size = 2 * radius + 1
    I = L_lo / 100.0
    mean_I = box_filter(I, size)
    var_I = box_filter(I * I, size) - mean_I * mean_I
    mean_p = box_filter(ab, size)
    cov = box_filter(I * ab, size) - mean_I * mean_p
    A = cov / (var_I + eps)
    B = mean_p - A * mean_I
    A, B = box_filter(A, size), box_filter(B, size)
    if L_hi.shape[-2:] == L_lo.shape[-2:]:
        return A * (L_hi / 100.0) + B
    A = F.interpolate(A, size=L_hi.shape[-2:], mode="bilinear", align_corners=False)
    B = F.interpolate(B, size=L_hi.shape[-2:], mode="bilinear", align_corners=False)
    return A * (L_hi / 100.0) + B


class GlobalAlign:
    """An affine map from frames to one still, where one holds (ORB features, RANSAC).

    Dense flow follows motions of some tens of pixels; a still framed
    otherwise than the shot (zoomed out, shifted, a keyframe of a shot that
    pushes in) is further away than that. Called with a frame's (h, w) uint8
    luminance at the still's size, returns the (3, 3) map from frame pixels
    to still pixels, or None where no map clearly holds: too few feature
    matches agree with one (``min_inliers``), the still so mapped covers too
    little of the frame (``min_overlap``), or its luminance does not match
    the frame's clearly better than the still as it is (mean absolute
    difference over the overlap at most ``gain`` x the unmapped one), or the
    map is not a re-framing (:meth:`plausible`): a keyframe of a still shot,
    another view (a mirrored photo: no map holds), a scene that no single map
    moves (a face before a passing window).
    The fit and the check run at a short side of ``size`` pixels at most (at
    the default working size, half of it; the flow then corrects the map's
    last pixel or two), on every ``refit``-th frame of the
    calls (a shot's frames, in order); the frames between take the last
    answer, as a camera moves a few pixels a frame, which the flow corrects.
    The still's features are computed once.
    """

    def __init__(self, ref: np.ndarray, *, size: int = 128, features: int = 500, min_inliers: int = 8,
                 gain: float = 0.7, min_overlap: float = 0.3, refit: int = 4):
        self.refit, self.calls, self.last = refit, 0, None
        self.scale = min(1.0, size / min(ref.shape))
        self.ref = self._small(ref)
        self.orb = cv2.ORB_create(features, fastThreshold=10, edgeThreshold=15, patchSize=15)
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self.keys, self.desc = self.orb.detectAndCompute(self.ref, None)
        self.min_inliers, self.gain, self.min_overlap = min_inliers, gain, min_overlap

    def _small(self, img: np.ndarray) -> np.ndarray:
        if self.scale == 1.0:
            return img
        h, w = img.shape
        return cv2.resize(img, (max(16, round(w * self.scale)), max(16, round(h * self.scale))),
                          interpolation=cv2.INTER_AREA)

    def __call__(self, tgt: np.ndarray) -> np.ndarray | None:
        if self.calls % self.refit == 0:
            self.last = self.fit(tgt)
        self.calls += 1
        return self.last

    @staticmethod
    def plausible(a: np.ndarray) -> bool:
        """Whether the linear part ``a`` (2, 2) of a map is a re-framing: a zoom of 1/5..5x, the
        two axes scaled within 3x of each other (a still of another aspect ratio is stretched to
        the frame's), little rotation or shear, no mirroring. Degenerate fits on flat regions
        (a road, a sky) can match the luminance better than the still as it is; these they are not."""
        sx, sy = a[0, 0], a[1, 1]
        return (0.2 < sx < 5 and 0.2 < sy < 5 and 1 / 3 < sx / sy < 3
                and abs(a[0, 1]) < 0.25 * min(sx, sy) and abs(a[1, 0]) < 0.25 * min(sx, sy))

    def fit(self, tgt: np.ndarray) -> np.ndarray | None:
        """The map for ``tgt``, or None (see the class docstring)."""
        if self.desc is None or len(self.keys) < self.min_inliers:
            return None
        full = tgt.shape
        tgt = self._small(tgt)
        keys, desc = self.orb.detectAndCompute(tgt, None)
        if desc is None or len(keys) < self.min_inliers:
            return None
        pairs = self.matcher.knnMatch(desc, self.desc, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]  # Lowe's ratio test
        if len(good) < self.min_inliers:
            return None
        src = np.float32([keys[m.queryIdx].pt for m in good])
        dst = np.float32([self.keys[m.trainIdx].pt for m in good])
        affine, inliers = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        if affine is None or int(inliers.sum()) < self.min_inliers or not self.plausible(affine[:, :2]):
            return None
        h, w = tgt.shape
        mapped = cv2.warpAffine(self.ref, affine, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        inside = cv2.warpAffine(np.ones_like(self.ref), affine, (w, h),
                                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP).astype(bool)
        if inside.mean() < self.min_overlap:
            return None
        t = tgt.astype(np.float32)
        before = np.abs(t - self.ref).mean()
        after = np.abs(t - mapped)[inside].mean()
        if after > self.gain * before:
            return None
        sx, sy = tgt.shape[1] / full[1], tgt.shape[0] / full[0]  # back to the full size: S^-1 A S
        to_small = np.diag([sx, sy, 1.0])
        return np.diag([1 / sx, 1 / sy, 1.0]) @ np.vstack([affine, [0.0, 0.0, 1.0]]) @ to_small


def working_l(L: torch.Tensor, cfg: ExemplarConfig) -> torch.Tensor:
    """(N, 1, H, W) L at the exemplar's working size (``work_size``; a small film enlarged when
    ``enlarge``): what its flows and features see."""
    H, W = L.shape[-2:]
    h, w = work_shape(H, W, cfg.work_size, enlarge=cfg.enlarge)
    if (h, w) == (H, W):
        return L
    if h < H:
        return F.interpolate(L, size=(h, w), mode="area")
    # a small film, enlarged for the flows and the features
    return F.interpolate(L, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 100)


def l8_of(Lw: torch.Tensor) -> np.ndarray:
    """(N, 1, h, w) L in [0, 100] -> (N, h, w) uint8 (L x 2.55), what the flows work on."""
    return (Lw[:, 0].cpu().numpy() * 2.55).round().clip(0, 255).astype(np.uint8)


def flow_align(tgt: np.ndarray, ref: np.ndarray, ref_ab: np.ndarray, dis, *, fb_sigma: float = 1.0,
               l_sigma: float = 6.0, outside_sigma: float = 0.0, check=None,
               prealign: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference a/b carried to the target by optical flow, and its confidence.

    ``tgt``, ``ref``: (h, w) uint8 luminance (L * 2.55) at the same size;
    ``ref_ab``: (h, w, 2) float32. Returns (h, w, 2) a/b and (h, w) confidence
    in [0, 1]: high where the forward-backward check holds (error in pixels,
    ``fb_sigma``), the luminances under the flow agree (L units, ``l_sigma``, once the
    reference's is brought to the target's exposure: flicker is no disagreement)
    and the flow stays inside the reference (``outside_sigma`` > 0: falling off
    with the distance outside, in pixels, as the reference's replicated edge
    colour goes on; 0: none outside); and the (h, w, 2) flow itself. ``check``: the DIS
    flow for the backward pass, which only checks the forward one (None: ``dis``).
    ``prealign``: a (3, 3) map from target pixels to reference pixels (:class:`GlobalAlign`)
    that brings the reference onto the target before the flow; the flow returned includes it.
    """
    h, w = tgt.shape
    grid = pixel_grid(h, w)
    if prealign is not None:  # the flow between the target and the reference mapped onto it
        ref_on = cv2.warpPerspective(ref, prealign, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REPLICATE)
    else:
        ref_on = ref
    tgt_x = match_exposure(tgt, ref_on)  # a flicker's exposure change undone before the flow
    fwd = dis.calc(tgt_x, ref_on, None)  # target pixel x is at x + fwd(x) in ref_on
    bwd = (dis if check is None else check).calc(ref_on, tgt_x, None)
    pos = grid + fwd
    back = cv2.remap(bwd, pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    fb = np.sqrt(((fwd + back) ** 2).sum(-1))
    if prealign is not None:  # positions in the reference itself
        pos = cv2.perspectiveTransform(pos.reshape(-1, 1, 2), prealign).reshape(h, w, 2)
        fwd = pos - grid
    mx, my = np.ascontiguousarray(pos[..., 0]), np.ascontiguousarray(pos[..., 1])
    ab = cv2.remap(ref_ab, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ref_l = cv2.remap(ref, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    # where the flow leaves the reference (a pan or a zoom shows what the still does not), the
    # reference's edge colour, carried on by the replicated border, is still the best guess near it
    # (sky goes on being sky); trust in it falls off with the distance outside (``outside_sigma`` px)
    dx = np.maximum(np.maximum(-0.5 - mx, mx - (w - 0.5)), 0.0)
    dy = np.maximum(np.maximum(-0.5 - my, my - (h - 0.5)), 0.0)
    out = np.exp(-0.5 * (dx * dx + dy * dy) / outside_sigma ** 2) if outside_sigma > 0 else (dx == 0) & (dy == 0)
    conf = np.exp(-0.5 * (fb / fb_sigma) ** 2) * out
    # the luminances compared with the reference's brought to the frame's exposure (gain and offset fitted
    # where the flow holds): a global exposure change (a print's flicker) is no mismatch
    g, o = fit_exposure(ref_l, tgt, conf, min_corr=0.8)
    dl = np.abs(g * ref_l + np.float32(o) - tgt.astype(np.float32)) / 2.55
    conf = conf * np.exp(-0.5 * (dl / l_sigma) ** 2)
    return ab, conf.astype(np.float32), fwd


def still_at(rgb: torch.Tensor, shape: tuple[int, int], ycbcr) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, H, W) RGB resized to ``shape``: its L (of its luma, as the frames' L is of theirs) and its
    Cb/Cr x 255."""
    h, w = shape
    ref = F.interpolate(rgb, size=(h, w), mode="bilinear", align_corners=False,
                        antialias=h < rgb.shape[-2]).clamp(0, 1)
    return gray_to_l(rgb_to_luma(ref, ycbcr)), rgb_to_cbcr(ref, ycbcr) * 255.0


class PreparedStill:
    """A colour still made ready for frames of one working size ``shape``: its L,
    chroma, uint8 L (the flows'), features and cell tones (the attention's), its
    :class:`GlobalAlign` (``prealign``), and its full-size chroma, made once when
    first asked for (:meth:`full`)."""

    def __init__(self, rgb: torch.Tensor, shape: tuple[int, int], matcher: FeatureMatcher | None, ycbcr, *,
                 prealign: bool):
        self.rgb, self.shape, self.ycbcr = rgb, shape, ycbcr
        self.L, self.ab = still_at(rgb, shape, ycbcr)
        self.l8 = (self.L[0, 0].cpu().numpy() * 2.55).round().clip(0, 255).astype(np.uint8)
        self.aligner = GlobalAlign(self.l8) if prealign else None
        self.ab_np = np.ascontiguousarray(self.ab[0].permute(1, 2, 0).cpu().numpy())
        if matcher is not None:  # None: for the flows alone
            self.feat = matcher.features(self.L)
            self.ab_small = F.adaptive_avg_pool2d(self.ab, self.feat.shape[-2:])
            self.tone = matcher.tones(self.L, self.feat.shape[-2:])
        self._full: tuple[tuple[int, int], np.ndarray] | None = None

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W, 2) the still's chroma (x 255) at the output size ``shape``, made once."""
        if self._full is None or self._full[0] != shape:
            self._full = (shape, np.ascontiguousarray(still_at(self.rgb, shape, self.ycbcr)[1][0].permute(1, 2, 0)
                                                      .cpu().numpy()))
        return self._full[1]

    def flow(self, l8: np.ndarray, cfg: ExemplarConfig, dis, check) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """:func:`flow_align` of one frame's (h, w) uint8 L to this still (pre-aligned where a map holds):
        (ab, confidence, flow, pre-aligned)."""
        m = self.aligner(l8) if self.aligner is not None else None
        ab, conf, fl = flow_align(l8, self.l8, self.ab_np, dis, fb_sigma=cfg.fb_sigma, l_sigma=cfg.l_sigma_lab,
                                  outside_sigma=cfg.outside_sigma, check=check, prealign=m)
        return ab, conf, fl, m is not None


@register_colorizer("exemplar", config=ExemplarConfig)
class ExemplarColorizer(Colorizer):
    """Exemplar-based colorization: flow where the still is a view of the frame,
    semantic attention where it is not, fused; see the module docstring."""

    needs_reference = True
    chroma = "cbcr"
    full_luma = True  # flow and features see the frame's own detail, even on a small film
    #: frames per forward pass inside a batch; None: 1 on a CPU, the whole batch on a GPU
    micro_batch: int | None = None

    def __init__(self, *, device: torch.device, config: ExemplarConfig | None = None):
        super().__init__(device)
        self.cfg = config or ExemplarConfig()
        for preset in (self.cfg.flow_preset, self.cfg.check_preset):
            if preset not in DIS_PRESETS:
                raise ModelError(f"exemplar: unknown flow preset '{preset}' (valid: {', '.join(DIS_PRESETS)})")
        self.matcher = FeatureMatcher(device, self.cfg.temperature, self.cfg.tone_weight,
                                      load_matcher(self.cfg.matcher, device))
        self.matcher.autocast = self.autocast
        self._dis = dis_flow(self.cfg.flow_preset)
        self._check = dis_flow(self.cfg.check_preset) if self.cfg.check_preset != self.cfg.flow_preset else None
        from .fusion import load_fusion

        self.fusion = load_fusion(self.cfg.weights, device)
        self._ref_rgb: torch.Tensor | None = None
        self._still: PreparedStill | None = None
        self._shape: tuple[int, int] | None = None  # working size the reference is prepared for
        self._pool: ThreadPoolExecutor | None = None  # flows to the reference, beside the backbone
        self.flow_seconds = 0.0  # spent in flows to the reference (mostly on the worker thread)
        self.gate = 1.0  # the shot's gate: the share of the still's colour it gives (ShotChoice.gate)
        self.score: float | None = None  # the still's match with the shot, as chosen
        self._shot_flow_start = 0.0
        self._prealign = self.cfg.prealign and self.cfg.flow  # GlobalAlign before the flow to the still
        self._frame_conf: list[float] = []  # each frame's share reached by the flow to the still (the report's)
        self._prealigned = 0  # frames whose flow started from the still mapped onto them, since last asked

    # -- per shot ------------------------------------------------------------------------------
    def begin_shot(self, reference: torch.Tensor | None, choice: ShotChoice | None = None) -> None:
        """The shot's still, at ``choice.gate`` of its colour (no choice: all of it)."""
        if reference is None:
            raise ModelError("the exemplar colorizer needs a reference still for every shot")
        if reference.dim() != 4 or reference.shape[:2] != (1, 3):
            raise ValueError(f"reference must have a shape of (1, 3, H, W). Got {tuple(reference.shape)}")
        self._ref_rgb = reference.to(self.device, torch.float32)
        self._shape = None
        self.gate = 1.0 if choice is None else float(choice.gate)
        self.score = None if choice is None else choice.score
        if self.gate < 1.0:
            log.log(logging.INFO if self.gate > 0 else logging.DEBUG,
                    "exemplar: the reference matches this shot only partly (score %s, gate %.2f)", self.score, self.gate)

    def _prepare(self, shape: tuple[int, int]) -> None:
        """The reference at the working size ``shape`` (:class:`PreparedStill`)."""
        self._still = PreparedStill(self._ref_rgb, shape, self.matcher, self.ycbcr, prealign=self._prealign)
        self._shape = shape

    def end_shot(self) -> ShotStats:
        """Frames the still was pre-aligned onto (None when ``prealign`` is off), the flows' time, and
        per frame the share of it the flow to the still reaches (``extra["confidence"]``, 0..1)."""
        n, self._prealigned = self._prealigned, 0
        spent, self._shot_flow_start = self.flow_seconds - self._shot_flow_start, self.flow_seconds
        conf, self._frame_conf = self._frame_conf, []
        extra = {"confidence": [round(c, 3) for c in conf]} if conf and self.cfg.flow else {}
        return ShotStats(n if self._prealign else None, spent, extra)

    # -- per batch -----------------------------------------------------------------------------
    def _flow_batch(self, Lw: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """flow_align of every frame of (N, 1, h, w) ``Lw`` to the reference (OpenCV: no GIL held)."""
        t = time.perf_counter()
        out = []
        for f in l8_of(Lw):
            ab, conf, fl, pre = self._still.flow(f, self.cfg, self._dis, self._check)
            self._prealigned += pre
            out.append((ab, conf, fl))
        self.flow_seconds += time.perf_counter() - t
        return out

    def _flows_ahead(self, Lw: torch.Tensor) -> list:
        """Futures of each frame's flow to the reference, queued on a worker thread: frame i+1's
        flow runs while the backbone works on frame i."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="vidcolor-exemplar-flow")
        return [self._pool.submit(self._flow_batch, Lw[i:i + 1]) for i in range(Lw.shape[0])]

    @torch.inference_mode()
    def align(self, Lw: torch.Tensor, flows: list | None = None, q: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Both alignments of (N, 1, h, w) L at the working size; the fusion's inputs.
        ``flows``, ``q``: the frames' :meth:`_flow_batch` and features, when already computed."""
        n, _, h, w = Lw.shape
        if self._shape != (h, w):
            self._prepare((h, w))
        self._flows = []
        if self.cfg.flow:
            flows = self._flow_batch(Lw) if flows is None else flows
            ab_flow = torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a, _, _ in flows]).to(self.device)
            conf_flow = torch.stack([torch.from_numpy(c)[None] for _, c, _ in flows]).to(self.device)
            self._flows = [fl for _, _, fl in flows]
        else:
            ab_flow = Lw.new_zeros(n, 2, h, w)
            conf_flow = Lw.new_zeros(n, 1, h, w)
        ab_att, sim = self.attention(Lw, self._still, q)
        return {"L": Lw, "ab_flow": ab_flow, "conf_flow": conf_flow, "ab_att": ab_att, "sim": sim}

    def attention(self, Lw: torch.Tensor, still, q: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The semantic alignment of (N, 1, h, w) ``Lw`` with ``still`` (its ``feat``, ``ab_small``,
        ``tone``): (N, 2, h, w) warped chroma, following the frame's edges, and (N, 1, h, w) best
        similarity. ``q``: the frames' features, when already computed."""
        h, w = Lw.shape[-2:]
        if q is None:
            q = self.matcher.features(Lw)
        ab_att, sim = self.matcher.attend(q, still.feat, still.ab_small, self.matcher.tones(Lw, q.shape[-2:]),
                                          still.tone, getattr(still, "prior", None))
        ab_att = F.interpolate(ab_att, size=(h, w), mode="bilinear", align_corners=False)
        if self.cfg.attention_radius:  # the attention's cells are 8 px: its colour follows the frame's edges
            ab_att = guided_upsample(ab_att, Lw, Lw, self.cfg.attention_radius, self.cfg.guide_eps)
        return ab_att, F.interpolate(sim, size=(h, w), mode="bilinear", align_corners=False)

    @torch.inference_mode()
    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        if self._ref_rgb is None:
            raise ModelError("colorize() called before begin_shot()")
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must have a shape of (N, 1, H, W). Got {tuple(L.shape)}")
        L = L.to(self.device, torch.float32)
        H, W = L.shape[-2:]
        Lw = self._working(L)
        if self.gate == 0.0:
            self.confidence = None
            return L.new_zeros(L.shape[0], 2, H, W)
        # On a CPU one frame at a time: the backbone's and the attention's intermediate maps of a
        # whole batch spill out of the caches (8 frames at 256 x 455: 4x slower than one by one)
        step = self.micro_batch or (1 if self.device.type == "cpu" else L.shape[0])
        if self._shape != Lw.shape[-2:]:
            self._prepare(tuple(Lw.shape[-2:]))
        ahead = self._flows_ahead(Lw) if self.cfg.flow else None
        out, conf = [], []
        try:
            for i in range(0, L.shape[0], step):
                if i == 0:  # the first frame's features start at once; its flow is not ready yet
                    q0 = self.matcher.features(Lw[:step])
                flows = [f for a in ahead[i:i + step] for f in a.result()] if ahead is not None else None
                out.append(self._colorize_at(L[i:i + step], Lw[i:i + step], flows, q0 if i == 0 else None))
                conf.append(self.confidence)
        finally:
            for a in ahead or ():
                a.cancel()
        self.confidence = torch.cat(conf) if len(conf) > 1 else conf[0]
        return torch.cat(out) if len(out) > 1 else out[0]

    def _working(self, L: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) L at the working size (:func:`working_l` with this config)."""
        return working_l(L, self.cfg)

    def _colorize_at(self, L: torch.Tensor, Lw: torch.Tensor, flows: list | None,
                     q: torch.Tensor | None) -> torch.Tensor:
        """Chroma of frames ``L`` (full size) from ``Lw`` (working size); sets ``confidence``."""
        H, W = L.shape[-2:]
        h, w = Lw.shape[-2:]
        x = self.align(Lw, flows, q)
        # the reference's colour carried by a flow that holds is exact; the attention's is a guess
        self.confidence = FRESH_FLOOR + (1 - FRESH_FLOOR) * x["conf_flow"]
        self._frame_conf += x["conf_flow"].mean(dim=(1, 2, 3)).tolist()
        ab = self.fusion(**x)
        if self.cfg.flow and (H, W) != (h, w):
            # where the flow holds, carry the reference's chroma at full size; the rest comes up guided
            conf = x["conf_flow"]
            ab = guided_upsample(ab - conf * x["ab_flow"], Lw, L, self.cfg.guide_radius, self.cfg.guide_eps)
            ab = ab + F.interpolate(conf, size=(H, W), mode="bilinear", align_corners=False) * self._carry((H, W), (h, w))
        else:
            ab = guided_upsample(ab, Lw, L, self.cfg.guide_radius, self.cfg.guide_eps)
        return ab * (self.gate * self.cfg.saturation / 255.0)

    def _carry(self, size: tuple[int, int], work: tuple[int, int]) -> torch.Tensor:
        """(N, 2, H, W) the reference's full-size chroma moved by the last batch's flows, brought up to ``size``."""
        return torch.from_numpy(np.stack([carry(self._still, fl, size, work) for fl in self._flows])
                                ).permute(0, 3, 1, 2).to(self.device)


def carry(still: PreparedStill, flow: np.ndarray, size: tuple[int, int], work: tuple[int, int]) -> np.ndarray:
    """(H, W, 2) ``still``'s full-size chroma moved by one frame's working-size ``flow`` brought up to ``size``."""
    H, W = size
    h, w = work
    up = cv2.resize(flow, (W, H), interpolation=cv2.INTER_LINEAR) * np.float32([W / w, H / h])
    pos = pixel_grid(H, W) + up
    return cv2.remap(still.full(size), pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
