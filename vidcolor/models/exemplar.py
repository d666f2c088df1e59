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
   the flow corrects what remains. A soft print (out of focus, a duplicate
   of a duplicate) is flowed to the still blurred as much
   (:class:`~vidcolor.models.align.Softened`): a sharp still's edges lie
   elsewhere to the flow and differ in luminance to its check.
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..color import gray_to_l, rgb_to_cbcr, rgb_to_luma
from ..config import ExemplarConfig
from ..settings import check_section
from ..errors import ModelError
from .exposure import evened, exposed
from ..ops import (Exposure, area_resize, exposure_fit, box_filter, dis_flow, gaussian_blur, pixel_grid, resize_flow,
                   work_shape)
from .align import GlobalAlign, Softened, chain_align, flow_align, luma_of_l8
from .matcher import FeatureMatcher, load_matcher
from .registry import Colorizer, ShotStats, register_colorizer

if TYPE_CHECKING:
    from ..references import ShotChoice

__all__ = ["ExemplarColorizer", "PreparedStill", "still_view", "resize", "still_at", "l8_of", "working_l", "guided_upsample", "flow_align", "GlobalAlign", "FeatureMatcher"]

log = logging.getLogger("vidcolor")

FRESH_FLOOR = 0.2  # confidence of colour that the flow to the reference does not carry
#: a chained flow to the still is kept while its mean confidence is at least this x the last fresh one's
CHAIN_KEEP = 0.9
FALLOFF_MIN = 0.01  # a print's light within 1% of the still's everywhere is not evened out


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
    A, B = resize(A, L_hi.shape[-2:]), resize(B, L_hi.shape[-2:])
    return A * (L_hi / 100.0) + B


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, *size), bilinear; averaging (antialiased) where it shrinks, so that an
    answer at a size under the working one (the chroma planes of a small film) is not aliased."""
    size = tuple(size)
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


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


def blurred(L: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, 1, h, w) L blurred by a Gaussian of ``sigma`` pixels (the border mirrored), for the
    attention's features of a grainy print (``ExemplarConfig.grain_blur``)."""
    return gaussian_blur(L, sigma, padding="reflect")


def still_at(rgb: torch.Tensor, shape: tuple[int, int], ycbcr) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, H, W) RGB resized to ``shape``: its L (of its luma, as the frames' L is of theirs) and its
    Cb/Cr x 255."""
    h, w = shape
    ref = F.interpolate(rgb, size=(h, w), mode="bilinear", align_corners=False,
                        antialias=h < rgb.shape[-2]).clamp(0, 1)
    return gray_to_l(rgb_to_luma(ref, ycbcr)), rgb_to_cbcr(ref, ycbcr) * 255.0


def still_view(rgb: torch.Tensor, L: torch.Tensor, cfg: ExemplarConfig, ycbcr) -> float:
    """How far the still ``rgb`` ((1, 3, H, W)) is a view of frames ``L`` ((N, 1, h, w) L of a shot's
    first frames): the mean confidence of the flow from each frame to the still, as the colorizer
    finds it (pre-aligned where a map holds, checked both ways and on the luminances, the exposure
    undone). Near 1 for a keyframe or a still of the shot's own framing, however grainy, dark or
    soft the print (on the development clips' old-film copies at twice the benchmark's strengths,
    0.55-0.78); under 0.2 for another picture or another view of the scene."""
    Lw = working_l(L.float(), cfg)
    still = PreparedStill(rgb.float(), tuple(Lw.shape[-2:]), None, ycbcr, prealign=cfg.prealign)
    dis = dis_flow(cfg.flow_preset)
    check = dis_flow(cfg.check_preset) if cfg.check_preset != cfg.flow_preset else None
    return float(np.mean([still.flow(l8, cfg, dis, check)[1].mean() for l8 in l8_of(Lw)]))


def _flow_options(cfg: ExemplarConfig) -> dict:
    """The flow to the still's checks (:func:`flow_align`, :func:`chain_align`) as the config sets them."""
    return dict(fb_sigma=cfg.fb_sigma, l_sigma=cfg.l_sigma_lab, outside_sigma=cfg.outside_sigma)


def _falloff_of(fit: Exposure | None) -> np.ndarray | None:
    """A frame's gain across the picture, its level included (the light a frame is evened by), or None
    where it is the still's within :data:`FALLOFF_MIN`. Its level too: the flow to the still undoes
    on its own only a flicker's jump (``MAX_EXPOSURE_GAIN``), and a print darker than that against
    its still showed DIS a dimmer picture, whose flat, grainy parts it matched at random (montage's
    flower shot at twice the benchmark's strengths: the forward-backward check 0.04-0.93 frame to
    frame on its blurred background; 43.26 dB evened by the shape alone, 44.47 by the whole gain)."""
    if fit is None:
        return None
    return fit.gain.astype(np.float32) if float(np.abs(fit.gain - 1).max()) > FALLOFF_MIN else None


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
        self.soft = Softened(self.l8)  # the flows' still, as sharp as the frames (a soft print's: softened)
        self.ab_np = np.ascontiguousarray(self.ab[0].permute(1, 2, 0).cpu().numpy())
        self.matcher = matcher
        self._feat: dict[float, torch.Tensor] = {}
        if matcher is not None:  # None: for the flows alone
            self.feat = matcher.features(self.L)
            self.ab_small = F.adaptive_avg_pool2d(self.ab, self.feat.shape[-2:])
            self.tone = matcher.tones(self.L, self.feat.shape[-2:])
        self._full: tuple[tuple[int, int], np.ndarray] | None = None
        self._chain: _Chain | None = None  # the last frame's answer, for the next one to chain on
        self._ref = self.l8  # the still as the last flow to it saw it (softened): the chained frames' too

    def feat_at(self, blur: float) -> torch.Tensor:
        """The attention's features of the still's L blurred by a Gaussian of ``blur`` working pixels
        (0: :attr:`feat`), made once per blur (:func:`blurred`)."""
        if blur <= 0:
            return self.feat
        if blur not in self._feat:
            self._feat[blur] = self.matcher.features(blurred(self.L, blur))
        return self._feat[blur]

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W, 2) the still's chroma (x 255) at the output size ``shape``, made once."""
        if self._full is None or self._full[0] != shape:
            self._full = (shape, np.ascontiguousarray(still_at(self.rgb, shape, self.ycbcr)[1][0].permute(1, 2, 0)
                                                      .cpu().numpy()))
        return self._full[1]

    def flow(self, l8: np.ndarray, cfg: ExemplarConfig, dis, check, t: int | None = None, motion=None,
             falloff: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, np.ndarray | None]:
        """:func:`flow_align` of one frame's (h, w) uint8 L to this still (pre-aligned where a map holds):
        (ab, confidence, flow, pre-aligned, the frame's :func:`exposure_fit` against the still or None
        where it is the still's; ab not yet scaled by it). ``t``: the frame's index in the shot; ``motion``: its
        :class:`~vidcolor.temporal.Motion` to frame ``t - 1`` (or a Future of it; None: none). Given
        both, and an answer for frame ``t - 1`` less than ``cfg.reference_flow_every`` frames after
        the last flow to the still, the answer is chained on from it (:func:`chain_align`), unless
        its mean confidence falls under :data:`CHAIN_KEEP` x that flow's. ``falloff``: the (any size)
        gain across the picture ``l8`` was evened by (:func:`~vidcolor.models.exposure.evened`), put
        back for the exposure fit: the fit is of the print's whole light (see :meth:`_gain`)."""
        every, last = cfg.reference_flow_every, self._chain
        kw = _flow_options(cfg)
        keep: list = []
        if every > 1 and t is not None and last is not None and last.t == t - 1 and t - last.fresh < every:
            m = motion.result() if isinstance(motion, Future) else motion
            if m is not None and m.flow is not None:
                fl, fb2 = _at_size(m.flow, m.fb2, l8.shape)
                ab, conf, fl = chain_align((last.pos, last.geo), fl, fb2, l8, self._ref, self.ab_np, keep=keep, **kw)
                if float(conf.mean()) >= CHAIN_KEEP * last.conf:
                    self._chain = _Chain(t, *keep[0], last.fresh, last.conf, last.pre)
                    return ab, conf, fl, last.pre, self._gain(l8, keep[0][0], conf, cfg, self._ref, falloff)
                keep.clear()
        if self.aligner is None:
            m = None
        else:  # chained, the map is fitted afresh at every flow to the still (every few frames already)
            m = self.aligner(l8) if every == 1 or t is None else self.aligner.fit(l8)
        self._ref = ref = self.soft.at(l8)
        ab, conf, fl = flow_align(l8, ref, self.ab_np, dis, check=check, prealign=m, keep=keep, **kw)
        self.soft.refine(l8, keep[0][0], conf)  # the blur the next flows use
        if t is not None:
            self._chain = _Chain(t, *keep[0], t, float(conf.mean()), m is not None)
        return ab, conf, fl, m is not None, self._gain(l8, keep[0][0], conf, cfg, ref, falloff)

    def exposure_of(self, l8: np.ndarray, cfg: ExemplarConfig, dis, check) -> Exposure | None:
        """One frame's :func:`exposure_fit` against this still, from a flow to it of its own (the
        pre-alignment fitted afresh): nothing the frames' own flows carry on is touched."""
        m = None if self.aligner is None else self.aligner.fit(l8)
        keep: list = []
        ref = self.soft.at(l8)
        _, conf, _ = flow_align(l8, ref, self.ab_np, dis, check=check, prealign=m, keep=keep, **_flow_options(cfg))
        return self._gain(l8, keep[0][0], conf, cfg, ref)

    def _gain(self, l8: np.ndarray, pos: np.ndarray, conf: np.ndarray, cfg: ExemplarConfig,
              still: np.ndarray, falloff: np.ndarray | None = None) -> Exposure | None:
        """:func:`exposure_fit` of a frame's uint8 L against the still's (``still``: its uint8 L as the
        flow saw it) carried to the (h, w, 2) positions ``pos`` (None where ``cfg.follow_exposure`` is off).
        ``falloff``: the gain ``l8`` was evened by, put back: a vignette's falloff is a quadratic across
        the print, which the fit's model is, and what is left of it over an estimate of it is not (fitted
        on the evened frame, the corners of the development clips' flower shot at twice the benchmark's
        vignette kept 10-30% of their darkening, the flow failed there and the attention gave them the
        still's green: 43.92 dB, the whole print's light 44.21, with :data:`~vidcolor.ops.GAIN_RANGE`'s
        floor at 0.1 45.95)."""
        if not cfg.follow_exposure:
            return None
        ref = cv2.remap(luma_of_l8(still), np.ascontiguousarray(pos[..., 0]), np.ascontiguousarray(pos[..., 1]),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return exposure_fit(luma_of_l8(l8), ref, conf, light=falloff)


@dataclass
class _Chain:
    """A frame's answer to chain the next on: its index, positions in the still and their geometric
    confidence; the last flow to the still: its frame, mean confidence, whether pre-aligned."""

    t: int
    pos: np.ndarray
    geo: np.ndarray
    fresh: int
    conf: float
    pre: bool


def _at_size(flow: np.ndarray, fb2: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A flow (and its squared forward-backward error) brought to ``shape``, in that size's pixels."""
    h, w = flow.shape[:2]
    H, W = shape
    if (h, w) == (H, W):
        return flow, fb2
    return resize_flow(flow, shape), cv2.resize(fb2, (W, H), interpolation=cv2.INTER_LINEAR) * np.float32((W / w) * (H / h))


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
        check_section(self.cfg, "exemplar.")  # built directly, not from a checked config: the same ranges
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
        self._t = 0  # the next frame's index in the shot

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
        self._t = 0  # the next frame's index in the shot
        self._falloff: np.ndarray | None = None  # the print's light across the picture, last seen
        if self.gate < 1.0:
            log.log(logging.INFO if self.gate > 0 else logging.DEBUG,
                    "exemplar: the reference matches this shot only partly (score %s, gate %.2f)", self.score, self.gate)

    def _prepare(self, shape: tuple[int, int]) -> None:
        """The reference at the working size ``shape`` (:class:`PreparedStill`)."""
        self._still = PreparedStill(self._ref_rgb, shape, self.matcher, self.ycbcr, prealign=self._prealign)
        self._shape = shape

    def _prepared_for(self, Lw: torch.Tensor) -> None:
        """The reference made ready at ``Lw``'s working size, unless it is already."""
        if self._shape != tuple(Lw.shape[-2:]):
            self._prepare(tuple(Lw.shape[-2:]))

    def end_shot(self) -> ShotStats:
        """Frames the still was pre-aligned onto (None when ``prealign`` is off), the flows' time, and
        per frame the share of it the flow to the still reaches (``extra["confidence"]``, 0..1)."""
        n, self._prealigned = self._prealigned, 0
        spent, self._shot_flow_start = self.flow_seconds - self._shot_flow_start, self.flow_seconds
        conf, self._frame_conf = self._frame_conf, []
        extra = {"confidence": [round(c, 3) for c in conf]} if conf and self.cfg.flow else {}
        return ShotStats(n if self._prealign else None, spent, extra)

    # -- per batch -----------------------------------------------------------------------------
    def _flow_batch(self, Lw: torch.Tensor, t: int | None = None, motions: list | None = None,
                    falloff: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """flow_align of every frame of (N, 1, h, w) ``Lw`` to the reference (OpenCV: no GIL held);
        ``t``: the first one's index in the shot, ``motions``: theirs, ``falloff``: the gain they were
        evened by (:meth:`PreparedStill.flow`)."""
        start = time.perf_counter()
        out = []
        for i, f in enumerate(l8_of(Lw)):
            m = motions[i] if motions is not None and i < len(motions) else None
            ab, conf, fl, pre, gain = self._still.flow(f, self.cfg, self._dis, self._check,
                                                       None if t is None else t + i, m, falloff)
            self._prealigned += pre
            out.append((ab, conf, fl, gain))
        self.flow_seconds += time.perf_counter() - start
        return out

    def _flows_ahead(self, Lw: torch.Tensor, falloff: np.ndarray | None = None) -> list:
        """Futures of each frame's flow to the reference, queued on a worker thread: frame i+1's
        flow runs while the backbone works on frame i (chained on the smoother's ``motions``
        where given; ``Lw`` evened by ``falloff``)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="vidcolor-exemplar-flow")
        t0, motions = self._t, self.motions
        self._t += Lw.shape[0]
        return [self._pool.submit(self._flow_batch, Lw[i:i + 1], t0 + i, None if motions is None else motions[i:i + 1],
                                  falloff) for i in range(Lw.shape[0])]

    @torch.inference_mode()
    def align(self, Lw: torch.Tensor, flows: list | None = None, q: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Both alignments of (N, 1, h, w) L at the working size; the fusion's inputs.
        ``flows``, ``q``: the frames' :meth:`_flow_batch` and features, when already computed."""
        n, _, h, w = Lw.shape
        self._prepared_for(Lw)
        self._flows, self._gains = [], []
        if self.cfg.flow:
            flows = self._flow_batch(Lw) if flows is None else flows
            ab_flow = torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a, _, _, _ in flows]).to(self.device)
            conf_flow = torch.stack([torch.from_numpy(c)[None] for _, c, _, _ in flows]).to(self.device)
            self._flows = [fl for _, _, fl, _ in flows]
            self._gains = [g for _, _, _, g in flows]
        else:
            ab_flow = Lw.new_zeros(n, 2, h, w)
            conf_flow = Lw.new_zeros(n, 1, h, w)
        ab_att, sim = self.attention(Lw, self._still, q)
        return {"L": Lw, "ab_flow": ab_flow, "conf_flow": conf_flow, "ab_att": ab_att, "sim": sim}

    @property
    def _blur(self) -> float:
        """The blur (working pixels) the attention's features are taken at: ``grain_blur`` on a grainy print."""
        return float(self.cfg.grain_blur) if self.grainy else 0.0

    def _features(self, Lw: torch.Tensor) -> torch.Tensor:
        """The attention's features of frames ``Lw`` (working size), at :attr:`_blur`."""
        return self.matcher.features(blurred(Lw, self._blur) if self._blur > 0 else Lw)

    def attention(self, Lw: torch.Tensor, still, q: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The semantic alignment of (N, 1, h, w) ``Lw`` with ``still`` (its ``feat``, ``ab_small``,
        ``tone``): (N, 2, h, w) warped chroma, following the frame's edges, and (N, 1, h, w) best
        similarity. ``q``: the frames' features, when already computed."""
        h, w = Lw.shape[-2:]
        if q is None:
            q = self._features(Lw)
        ab_att, sim = self.matcher.attend(q, still.feat_at(self._blur), still.ab_small,
                                          self.matcher.tones(Lw, q.shape[-2:]), still.tone, getattr(still, "prior", None))
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
        L, falloff = self._evened(L)  # the colour side sees the frame as the still's light falls: see _follow
        Lw = self._working(L)
        self.exposure = None
        if self.gate == 0.0:
            self.confidence = None
            return L.new_zeros(L.shape[0], 2, *self._guide(L[:1]).shape[-2:])
        # On a CPU one frame at a time: the backbone's and the attention's intermediate maps of a
        # whole batch spill out of the caches (8 frames at 256 x 455: 4x slower than one by one)
        step = self.micro_batch or (1 if self.device.type == "cpu" else L.shape[0])
        self._prepared_for(Lw)
        ahead = self._flows_ahead(Lw, falloff) if self.cfg.flow else None
        out, conf, fits = [], [], []
        try:
            for i in range(0, L.shape[0], step):
                if i == 0:  # the first frame's features start at once; its flow is not ready yet
                    q0 = self._features(Lw[:step])
                flows = [f for a in ahead[i:i + step] for f in a.result()] if ahead is not None else None
                out.append(self._colorize_at(L[i:i + step], Lw[i:i + step], flows, q0 if i == 0 else None))
                conf.append(self.confidence)
                fits += self._gains or [None] * len(out[-1])
        finally:
            for a in ahead or ():
                a.cancel()
        self.confidence = torch.cat(conf) if len(conf) > 1 else conf[0]
        self._follow(fits, falloff)
        return torch.cat(out) if len(out) > 1 else out[0]

    def _evened(self, L: torch.Tensor) -> tuple[torch.Tensor, np.ndarray | None]:
        """A batch's L evened by the print's light as last seen (:meth:`_follow`; a shot's first batch by
        its first frame's, :meth:`_first_falloff`), and that falloff (None: L as it is)."""
        falloff = self._falloff
        if falloff is None and self._t == 0 and self.gate > 0 and self.cfg.flow and self.cfg.follow_exposure:
            falloff = self._first_falloff(L[:1])
        return (L, None) if falloff is None else (evened(L, falloff), falloff)

    def _first_falloff(self, L: torch.Tensor) -> np.ndarray | None:
        """The print's light across the shot's first frame (``L``: (1, 1, H, W)), for its first batch
        to be evened by (see :meth:`_follow`); None where it falls as the still's does. A shot's first
        frames have no earlier falloff to be evened by: matched as they come, a deep vignette's dark
        corners took the colour of the still's dark petals (the flower shot of the development clips'
        copy at twice the benchmark's vignette: its first 8 frames 33 dB of chroma, the rest 40-42)."""
        Lw = self._working(L)
        self._prepared_for(Lw)
        start = time.perf_counter()
        fit = self._still.exposure_of(l8_of(Lw)[0], self.cfg, self._dis, self._check)
        self.flow_seconds += time.perf_counter() - start
        return _falloff_of(fit)

    def _follow(self, fits: list, falloff: np.ndarray | None) -> None:
        """The batch's exposures against the still (``fits``: of the print's whole light, its frames'
        flows made on them evened by ``falloff``, which stands for a frame too little matched to fit),
        and the falloff the next batch is evened by: the last frame's gain across the picture.
        A vignette darkens a print's corners: matched against the still as it comes, the flow, the
        attention and the luminance checks see a darker picture there than the still shows (on the
        development clips' vignetted copies: 36.8 dB of chroma against the clean run's output on the
        flower shot); evened by the falloff the previous frames showed, they see the still's light."""
        if falloff is not None:
            fits = [Exposure(falloff, 0.0) if f is None else f for f in fits]
        self.exposure = fits if any(f is not None for f in fits) else None
        last = fits[-1] if fits else None
        if last is not None:
            self._falloff = _falloff_of(last)

    @property
    def follows_exposure(self) -> bool:
        """``exemplar.follow_exposure``: each frame's chroma is the still's at that frame's exposure
        (given by :meth:`expose`, after the smoother: its memory holds the still's exposure)."""
        return bool(self.cfg.follow_exposure)

    def expose(self, chroma: torch.Tensor, L: torch.Tensor, fits: list) -> torch.Tensor:
        if all(f is None for f in fits):
            return chroma
        return exposed(chroma * 255.0, fits, L.to(chroma.device, torch.float32), self.ycbcr) / 255.0

    def _guide(self, L: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) full-size L brought (area) to the size the answer is wanted at (``out_size``):
        the guided filters' guide there."""
        size = self.out_size
        if size is None or tuple(size) == tuple(L.shape[-2:]):
            return L
        return area_resize(L, tuple(size))

    def _working(self, L: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) L at the working size (:func:`working_l` with this config)."""
        return working_l(L, self.cfg)

    def _colorize_at(self, L: torch.Tensor, Lw: torch.Tensor, flows: list | None,
                     q: torch.Tensor | None) -> torch.Tensor:
        """Chroma of frames ``L`` (full size) from ``Lw`` (working size), at ``out_size`` (None: L's);
        sets ``confidence``."""
        full = tuple(L.shape[-2:])
        L = self._guide(L)
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
            ab = ab + resize(conf, (H, W)) * self._carry((H, W), (h, w), full)
        else:
            ab = guided_upsample(ab, Lw, L, self.cfg.guide_radius, self.cfg.guide_eps)
        return ab * (self.gate * self.cfg.saturation / 255.0)  # at the still's exposure: see expose()

    def _carry(self, size: tuple[int, int], work: tuple[int, int], full: tuple[int, int] | None = None) -> torch.Tensor:
        """(N, 2, H, W) the reference's chroma moved by the last batch's flows, at ``size`` (:func:`carry`)."""
        return torch.from_numpy(np.stack([carry(self._still, fl, size, work, full) for fl in self._flows])
                                ).permute(0, 3, 1, 2).to(self.device)


def carry(still: PreparedStill, flow: np.ndarray, size: tuple[int, int], work: tuple[int, int],
          full: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 2) ``still``'s chroma moved by one frame's working-size ``flow``, at ``size``. ``full``:
    the frame's own size, when larger: the still's chroma is moved at that size, then averaged down
    to ``size`` (moved at the smaller size, the still's colour edges are resampled twice: 0.3 dB on
    the development clips' 4:2:0 chroma)."""
    H, W = size if full is None or full[0] < size[0] else full
    pos = pixel_grid(H, W) + resize_flow(flow, (H, W), cv2.INTER_AREA if H < work[0] else cv2.INTER_LINEAR)
    out = cv2.remap(still.full((H, W)), pos, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if (H, W) != tuple(size):
        out = cv2.resize(out, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return out
