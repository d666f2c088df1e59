"""``keyframes``: a shot coloured from several of its own frames, coloured by hand.

A colourist paints a few keyframes of a shot (``--keyframes keys.csv``);
every other frame takes colour from the keyframe before it and the one
after it, as BiSTNet's bidirectional fusion does (Yang et al., "BiSTNet",
2023), with the exemplar's machinery (:mod:`vidcolor.models.exemplar`):

1. **Both sides by flow.** The frame's luminance is flowed (DIS, checked
   forward-backward and by luminance, pre-aligned where a map holds) to the
   keyframe before it and to the one after it, each a still known in advance:
   no frame waits for a later one, and memory holds the stills of the
   keyframes near the frame being coloured, whatever the shot's length.
   The two carried colours are fused per pixel by their confidence times
   their nearness in time (the nearer keyframe weighs ``d_other / (d_prev +
   d_next)``), so a colour that changes between two keyframes (a lamp
   lit, a coat taken off) is followed from both ends.
2. **Attention over the shot's keyframes** where the flows fail: the
   frame's cells attend over the cells of the ``attend`` keyframes nearest
   to it together (one softmax over all of them), as the exemplar attends
   over its one still.
3. The exemplar's fusion and full-size carry, with the fused flow colour
   and the best of the two flows' confidences.
4. **A keyframe's own frame is its still's chroma, exactly** (brought to the
   frame's size), and is marked ``pinned``: the temporal smoother leaves it
   as it is and starts afresh from it; when the still lies on its frame as it
   is (their luminances within ``REGISTERED_L``). A still scanned or exported
   otherwise (shifted, cropped, of another aspect) is carried onto its own
   frame by flow, as onto the frames beside it, with a warning.
5. **An old print's light**, as the exemplar's: each batch is evened by the
   falloff across the picture the frame before it showed against its
   keyframes (the shot's first batch by its first frame's against the first
   keyframe), so flows, attention and luminance checks see a vignetted or
   dimmer print in the stills' light, and the colour is given each frame's
   exposure after (on the old-film benchmark's vignetted montage, keyframes
   at each shot's ends: 47.03 dB of colour against 47.39 clean; matched as
   it came, 44.87). A keyframe's own frame gets its exposure against its
   own still (a flicker jumps frame to frame), and lies on it when the still
   brought to that light does: a clean still of an old print's frame is
   taken exactly.

With one keyframe in a shot this is the exemplar with that still (a
keyframe at the shot's middle frame: ``--reference-map`` with that still),
but for the keyframe's own frame.
"""
from __future__ import annotations

import bisect
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from ..config import ExemplarConfig, KeyframesConfig
from ..errors import ModelError
from ..ops import Exposure, exposure_fit
from .align import l8_of_luma, luma_of_l8
from .exemplar import FRESH_FLOOR, ExemplarColorizer, PreparedStill, _falloff_of, carry, guided_upsample, l8_of, resize
from .registry import ShotStats

if TYPE_CHECKING:
    from ..references import ShotChoice

__all__ = ["KeyframeColorizer", "JointStills", "sides_of", "REGISTERED_L"]

log = logging.getLogger("vidcolor")

Loader = Callable[[], torch.Tensor]  # -> (1, 3, H, W) RGB in [0, 1]

#: mean luminance difference (L units) under which a keyframe's still lies on its frame as it is
#: (an exact colouring: JPEG and rounding give about 1); over it, the still is carried by flow
REGISTERED_L = 3.0


def sides_of(keys: Sequence[int], t: int) -> list[tuple[int, float]]:
    """The keyframes frame ``t`` of a shot takes colour from, with their weights in time:
    [(t, 1.0)] on a keyframe, else the nearest before and after (a weight of
    ``d_other / (d_before + d_after)`` each), or the one on its side."""
    i = bisect.bisect_left(keys, t)
    if i < len(keys) and keys[i] == t:
        return [(t, 1.0)]
    before = keys[i - 1] if i > 0 else None
    after = keys[i] if i < len(keys) else None
    if before is None or after is None:
        return [(before if after is None else after, 1.0)]
    d0, d1 = t - before, after - t
    return [(before, d1 / (d0 + d1)), (after, d0 / (d0 + d1))]


class JointStills:
    """Several prepared stills seen as one by the attention: their cells one after the other
    (features and chroma stacked along the height, so their flattened cells follow each other,
    as the tones do). ``weights``: each still's prior weight (its nearness in time): where a
    frame's cell matches cells of two keyframes alike, the nearer keyframe's colour wins in
    proportion, as the flows' colours are fused."""

    def __init__(self, stills: Sequence[PreparedStill], weights: Sequence[float] | None = None):
        self.stills = stills
        self.feat = torch.cat([s.feat for s in stills], dim=-2)
        self.ab_small = torch.cat([s.ab_small for s in stills], dim=-2)
        self.tone = torch.cat([s.tone for s in stills], dim=1)
        self.prior = None
        if weights is not None and len(stills) > 1:
            w = torch.tensor(weights, dtype=torch.float32, device=self.feat.device)
            cells = stills[0].tone.shape[1]
            self.prior = torch.log(w / w.sum()).repeat_interleave(cells)[None]

    def feat_at(self, blur: float) -> torch.Tensor:
        """:meth:`PreparedStill.feat_at` of each still, stacked as :attr:`feat` is."""
        return self.feat if blur <= 0 else torch.cat([s.feat_at(blur) for s in self.stills], dim=-2)


class KeyframeColorizer(ExemplarColorizer):
    """Colour from a shot's keyframes, both ways; see the module docstring.

    Per shot, :meth:`begin_keys` with the keyframes as (offset in the shot,
    loader of the still); then :meth:`colorize` with the shot's frames in
    order (it counts them from the shot's first). ``attend``: keyframes whose
    cells the attention looks over (the nearest to the frame).
    """

    name = "keyframes"

    def __init__(self, *, device: torch.device, config: ExemplarConfig | None = None,
                 attend: int = KeyframesConfig.attend):
        super().__init__(device=device, config=config)
        self.attend = max(1, int(attend))
        self._keys: list[int] = []
        self._loaders: dict[int, Loader] = {}
        self._prepared: dict[int, PreparedStill] = {}
        self._t = self._exact = self._first = 0

    def begin_shot(self, reference: torch.Tensor | None, choice: ShotChoice | None = None) -> None:
        raise ModelError("the keyframe colorizer takes a shot's keyframes (begin_keys), not one still")

    def begin_keys(self, keys: Sequence[tuple[int, Loader]], choice: ShotChoice | None = None) -> None:
        """The shot's keyframes: (frame offset from the shot's first frame, loader of its still)."""
        if not keys:
            raise ModelError("a keyframe shot needs at least one keyframe")
        self._loaders = dict(keys)
        if len(self._loaders) != len(keys):
            raise ModelError("two keyframes of a shot are the same frame")
        self._keys = sorted(self._loaders)
        self._prepared = {}
        self._t = self._exact = 0
        keys_abs = (choice.report.get("keys") if choice is not None else None) or []
        self._first = int(keys_abs[0][0]) - self._keys[0] if keys_abs else 0  # the shot's first frame (messages)
        self._shape = None
        self.gate, self.score = 1.0, None
        self._ref_rgb = None
        self._falloff = None  # the print's light across the picture against the keyframes' stills, last seen

    def _registered(self, key: int, l8: np.ndarray, fit: Exposure | None = None,
                    falloff: np.ndarray | None = None) -> bool:
        """Whether the keyframe's still lies on its frame as it is (its luminance the frame's, within
        ``REGISTERED_L``, the still brought to the frame's light by ``fit``, :meth:`_own_exposure`: a
        clean still of a flickering or vignetted print's frame lies on it): then its chroma is taken
        exactly. A still scanned or exported otherwise (shifted, cropped, of another aspect) is carried
        onto its frame by flow instead, as onto the frames beside it: pasted as it is, its colour would
        sit beside the edges it belongs to (no exposure brings it onto the frame)."""
        still = self._prepared[key]
        ref = still.l8.astype(np.float32)
        if fit is not None:  # the still at the frame's light (``l8`` is evened by ``falloff``)
            y = fit.shift + fit.gain * luma_of_l8(still.l8)
            if falloff is not None:
                y = y / cv2.resize(falloff, y.shape[::-1], interpolation=cv2.INTER_LINEAR)
            ref = l8_of_luma(np.clip(y, 0.0, 1.0))
        diff = float(np.abs(ref - l8.astype(np.float32)).mean()) / 2.55
        if diff <= REGISTERED_L:
            self._exact += 1
            return True
        log.warning("keyframe at frame %d: its still does not lie on the frame as it is (luminance %.1f L apart "
                    "on average): carried onto it by optical flow, not taken exactly", self._first + key, diff)
        return False

    def end_shot(self) -> ShotStats:
        stats = super().end_shot()
        stats.extra["keyframes"] = len(self._keys)
        stats.extra["keyframes_exact"], self._exact = self._exact, 0
        self._prepared = {}
        return stats

    # -- stills ----------------------------------------------------------------------
    def _load_still(self, key: int) -> PreparedStill:
        if key not in self._prepared:
            rgb = self._loaders[key]().to(self.device, torch.float32)
            if rgb.dim() != 4 or rgb.shape[:2] != (1, 3):
                raise ValueError(f"a keyframe still must have a shape of (1, 3, H, W). Got {tuple(rgb.shape)}")
            self._prepared[key] = PreparedStill(rgb, self._shape, self.matcher, self.ycbcr, prealign=self._prealign)
        return self._prepared[key]

    def _nearest(self, t: int) -> list[int]:
        """The ``attend`` keyframes nearest to frame ``t`` (in the shot's order)."""
        return sorted(sorted(self._keys, key=lambda k: (abs(k - t), k))[:self.attend])

    def _ready(self, offsets: Sequence[int]) -> None:
        """Prepare the stills the frames at ``offsets`` need; forget the others (memory stays bounded)."""
        need = set()
        for t in offsets:
            need.update(k for k, _ in sides_of(self._keys, t))
            need.update(self._nearest(t))
        for k in [k for k in self._prepared if k not in need]:
            del self._prepared[k]
        for k in sorted(need):
            self._load_still(k)

    # -- frames ----------------------------------------------------------------------
    def _side_flows(self, l8: np.ndarray, sides: list[tuple[int, float]], t: int | None = None,
                    motion=None, falloff: np.ndarray | None = None) -> list:
        """Each side's flow_align of frame ``t`` (chained on its ``motion`` where it can:
        :meth:`PreparedStill.flow`; ``l8`` evened by ``falloff``): (ab, confidence, flow, time weight,
        still, exposure gain or None)."""
        t0 = time.perf_counter()
        out = []
        for key, tau in sides:
            still = self._prepared[key]
            ab, conf, fl, pre, gain = still.flow(l8, self.cfg, self._dis, self._check, t, motion, falloff)
            self._prealigned += pre
            out.append((ab, conf, fl, tau, still, gain))
        self.flow_seconds += time.perf_counter() - t0
        return out

    @torch.inference_mode()
    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        if not self._keys:
            raise ModelError("colorize() called before begin_keys()")
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"L must have a shape of (N, 1, H, W). Got {tuple(L.shape)}")
        L = L.to(self.device, torch.float32)
        L, falloff = self._evened(L)  # as the exemplar's: the print's light as last seen taken out
        Lw = self._working(L)
        self._sized(Lw)
        n = L.shape[0]
        offsets = list(range(self._t, self._t + n))
        self._t += n
        self._ready(offsets)
        plans = [sides_of(self._keys, t) for t in offsets]
        l8 = l8_of(Lw)
        own = {i: self._own_exposure(t, l8[i], falloff) for i, (p, t) in enumerate(zip(plans, offsets))
               if len(p) == 1 and p[0][0] == t}  # keyframes' own frames: their light against their stills
        pinned = [i in own and self._registered(offsets[i], l8[i], own[i], falloff) for i in range(n)]
        ahead: list = [None] * n
        if self.cfg.flow:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="vidcolor-keyframe-flow")
            motions = self.motions if self.motions is not None else [None] * n
            ahead = [None if pin else self._pool.submit(self._side_flows, l8[i], plans[i], offsets[i], motions[i],
                                                        falloff) for i, pin in enumerate(pinned)]
        out, conf, fits = [], [], []
        try:
            for i, t in enumerate(offsets):
                if pinned[i]:
                    out.append(self._pinned(t, self._guide(L[:1]).shape[-2:]))
                    conf.append(torch.ones_like(Lw[i:i + 1]))
                    fits.append(own[i])
                    self._frame_conf.append(1.0)
                    continue
                sides = ahead[i].result() if ahead[i] is not None else []
                ab, fit = self._colorize_frame(L[i:i + 1], Lw[i:i + 1], sides, t)
                out.append(ab)
                fits.append(fit)
                conf.append(self.confidence)
        finally:
            for a in ahead:
                if a is not None:
                    a.cancel()
        self.confidence = torch.cat(conf)
        self.pinned = pinned
        self._follow(fits, falloff)
        return torch.cat(out)

    def _first_falloff(self, L: torch.Tensor) -> np.ndarray | None:
        """The print's light across the shot's first frame (``L``: (1, 1, H, W)) against the shot's first
        keyframe (the nearest to it), for the shot's first batch to be evened by (the exemplar's, with
        that keyframe's still)."""
        Lw = self._working(L)
        self._sized(Lw)
        still = self._load_still(self._keys[0])  # kept for the batch: frame 0 takes colour from it
        start = time.perf_counter()
        fit = still.exposure_of(l8_of(Lw)[0], self.cfg, self._dis, self._check)
        self.flow_seconds += time.perf_counter() - start
        return _falloff_of(fit)

    def _sized(self, Lw: torch.Tensor) -> None:
        """The stills prepared for ``Lw``'s working size (those of another size forgotten)."""
        if self._shape != tuple(Lw.shape[-2:]):
            self._shape, self._prepared = tuple(Lw.shape[-2:]), {}

    def _own_exposure(self, key: int, l8: np.ndarray, falloff: np.ndarray | None) -> Exposure | None:
        """A keyframe's own frame's exposure against its still, which lies on it (every pixel matched;
        ``l8``: the frame evened by ``falloff``, put back for the fit): a flickering print's keyframe
        is as bright or as dim as its own frame, not as the frame before it. Where the two are of one
        light, a gain of 1 (not None, which would stand for the falloff). None when the colour does not
        follow the exposure (``follow_exposure`` off)."""
        if not self.cfg.follow_exposure:
            return None
        still = self._prepared[key].l8
        fit = exposure_fit(luma_of_l8(l8), luma_of_l8(still), np.ones(l8.shape, np.float32), light=falloff)
        return fit if fit is not None else Exposure(np.ones(l8.shape, np.float32), 0.0)

    def _pinned(self, key: int, size) -> torch.Tensor:
        """A keyframe's own frame: its still's chroma at the frame's size, exactly."""
        full = self._prepared[key].full(tuple(size))
        return torch.from_numpy(full).permute(2, 0, 1)[None].to(self.device) / 255.0

    def _colorize_frame(self, L: torch.Tensor, Lw: torch.Tensor, sides: list, t: int) -> tuple[torch.Tensor, Exposure | None]:
        """One frame's chroma from its sides' flows and the attention over its nearest keyframes,
        at ``out_size`` (None: L's), at the stills' exposure; and its exposure against them."""
        full = tuple(L.shape[-2:])
        L = self._guide(L)
        H, W = L.shape[-2:]
        h, w = Lw.shape[-2:]
        if sides:
            weights = [tau * (c + 1e-3) for _, c, _, tau, _, _ in sides]
            total = sum(weights)
            ab_np = sum(wt[..., None] * ab for wt, (ab, *_) in zip(weights, sides)) / total[..., None]
            conf_np = np.maximum.reduce([c for _, c, *_ in sides])
            fits = [g for *_, g in sides]
            gain = (None if all(f is None for f in fits) else
                    Exposure(sum(wt * (1.0 if f is None else f.gain) for wt, f in zip(weights, fits)) / total,
                             float(np.mean(sum(wt * (0.0 if f is None else f.shift) for wt, f in zip(weights, fits))
                                           / total))))
            ab_flow = torch.from_numpy(np.ascontiguousarray(ab_np, dtype=np.float32)).permute(2, 0, 1)[None]
            conf_flow = torch.from_numpy(np.ascontiguousarray(conf_np, dtype=np.float32))[None, None]
            ab_flow, conf_flow = ab_flow.to(self.device), conf_flow.to(self.device)
        else:
            ab_flow, conf_flow, gain = Lw.new_zeros(1, 2, h, w), Lw.new_zeros(1, 1, h, w), None
        near = self._nearest(t)
        ab_att, sim = self.attention(Lw, JointStills([self._prepared[k] for k in near],
                                                     [1.0 / (abs(k - t) + 1) for k in near]))
        x = {"L": Lw, "ab_flow": ab_flow, "conf_flow": conf_flow, "ab_att": ab_att, "sim": sim}
        self.confidence = FRESH_FLOOR + (1 - FRESH_FLOOR) * conf_flow
        self._frame_conf.append(float(conf_flow.mean()))
        ab = self.fusion(**x)
        if sides and (H, W) != (h, w):
            ab = guided_upsample(ab - conf_flow * ab_flow, Lw, L, self.cfg.guide_radius, self.cfg.guide_eps)
            carried = self._carry_sides(sides, weights, (H, W), (h, w), full)
            ab = ab + resize(conf_flow, (H, W)) * carried
        else:
            ab = guided_upsample(ab, Lw, L, self.cfg.guide_radius, self.cfg.guide_eps)
        return ab * (self.cfg.saturation / 255.0), gain

    def _carry_sides(self, sides: list, weights: list, size, work, full=None) -> torch.Tensor:
        """(1, 2, H, W) the sides' stills' full-size chroma carried by their flows, fused by their weights."""
        H, W = size
        acc = np.zeros((H, W, 2), np.float32)
        total = np.zeros((H, W), np.float32)
        for wt, (_, _, fl, _, still, _) in zip(weights, sides):
            up = cv2.resize(wt.astype(np.float32), (W, H), interpolation=cv2.INTER_AREA if H < work[0] else cv2.INTER_LINEAR)
            acc += up[..., None] * carry(still, fl, size, work, full)
            total += up
        return torch.from_numpy(acc / np.maximum(total, 1e-6)[..., None]).permute(2, 0, 1)[None].to(self.device)
