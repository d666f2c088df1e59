"""Geometric alignment of frames with a colour still: where the still is a view of the frame.

- :class:`GlobalAlign`: an affine map (ORB features, RANSAC) bringing a still framed
  otherwise than the shot onto the frame, where one clearly holds.
- :func:`flow_align`: dense optical flow (OpenCV DIS) from a frame to the still and back,
  checked (forward-backward, luminance under the flow), carrying the still's chroma.
- :func:`luma_of_l8`: the flows' uint8 L as luma, for :func:`~vidcolor.ops.exposure_gain` (how much
  more or less light the frame has than the still where they show the same scene: a print's flicker,
  a vignette): the still's chroma is scaled by it.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import torch

from ..color import l_to_gray
from ..ops import fit_exposure, match_exposure, pixel_grid

#: most exposure ratio between a frame and its still undone in the luminance check, fitted where the flow
#: holds (the pixels in correspondence): a grey print of a clean photograph, twice as dark (the colour
#: follows a darker place further: GAIN_RANGE). Before the flow, fitted on the whole pictures, only a
#: flicker's jump is undone (MAX_EXPOSURE_GAIN): a reframed still's other content would take a larger
#: gain for exposure.
STILL_GAIN = 2.5

#: Gaussian blurs (working pixels) a still may be softened by to look as sharp as a soft print (:class:`Softened`)
SOFT_SIGMAS = (0.0, 0.5, 0.7, 0.85, 1.0, 1.2, 1.4, 1.7, 2.0, 2.4, 2.8, 3.4, 4.0, 5.0, 6.0)
REFINE_EVERY = 4  # flows to the still between two looks at the blur a step either side (Softened.refine)

__all__ = ["GlobalAlign", "Softened", "flow_align", "chain_align", "carried", "luma_of_l8", "sharpness"]


def sharpness(l8: np.ndarray) -> float:
    """A picture's sharpness: its mean gradient magnitude (Sobel) over its mean local contrast (its
    difference from a 16 px Gaussian blur of it, at a quarter of its size: what a soft focus leaves):
    a vignette, an exposure or a contrast scales both alike, so only how fine its detail is counts."""
    y = l8.astype(np.float32)
    grad = cv2.magnitude(cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1))
    h, w = y.shape
    q = cv2.resize(y, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return float(grad.mean()) / (float(np.abs(q - cv2.GaussianBlur(q, (0, 0), 4.0)).mean()) + 1e-3)


class Softened:
    """A still's uint8 L (the flows') blurred to look as sharp as the frames it is flowed to: a soft
    print (out of focus, a duplicate of a duplicate) against a sharp still has every edge in a
    different place to the flow and a different luminance to its check, so the still's colour is
    carried less far than it should. ``at(frame)``: the still softened by one of :data:`SOFT_SIGMAS`
    (each copy made once). Until a flow has said more (:meth:`refine`), the largest under which it
    is still at least as sharp as the frame (:func:`sharpness`; a frame as sharp as the still: the
    still itself); but a grainy print reads as sharp (its grain is fine detail), so once a flow to
    the still holds, :meth:`refine` picks the blur under which the still, carried onto the frame by
    that flow, differs least from it (grain adds alike to every blur's difference), and ``at`` gives
    that from then on, kept up to date a step at a time every :data:`REFINE_EVERY` flows."""

    def __init__(self, l8: np.ndarray):
        self.l8 = l8
        self.level: int | None = None  # index into SOFT_SIGMAS once a flow has chosen it
        self._copies: dict[float, np.ndarray] = {}
        self._sharp: dict[float, float] = {}  # the copies' sharpness, measured only while no flow has said more
        self._flows = 0

    def _copy(self, sigma: float) -> np.ndarray:
        if sigma not in self._copies:
            self._copies[sigma] = self.l8 if sigma == 0 else cv2.GaussianBlur(self.l8, (0, 0), sigma)
        return self._copies[sigma]

    def at(self, frame: np.ndarray) -> np.ndarray:
        if self.level is not None:
            return self._copy(SOFT_SIGMAS[self.level])
        want = sharpness(frame)
        best = self.l8
        for sigma in SOFT_SIGMAS:
            y = self._copy(sigma)
            if sigma not in self._sharp:
                self._sharp[sigma] = sharpness(y)
            if self._sharp[sigma] < want:
                break
            best = y
        return best

    def refine(self, frame: np.ndarray, pos: np.ndarray, conf: np.ndarray) -> None:
        """After a flow of ``frame`` (uint8 L) to the still: ``pos`` (h, w, 2) its pixels' places in
        the still, ``conf`` the flow's confidence. The first time, every blur from none up until the
        difference grows; then the blurs a step either side of the last, every :data:`REFINE_EVERY`
        flows. Where the flow holds on under a tenth of the frame, nothing is learnt."""
        n, self._flows = self._flows, self._flows + 1
        if self.level is not None and n % REFINE_EVERY:
            return
        wt = conf.astype(np.float32)
        if float(wt.mean()) < 0.1:
            return
        mx, my = np.ascontiguousarray(pos[..., 0]), np.ascontiguousarray(pos[..., 1])
        tgt = frame.astype(np.float32)
        levels = range(len(SOFT_SIGMAS)) if self.level is None else \
            range(max(0, self.level - 1), min(len(SOFT_SIGMAS), self.level + 2))
        best: tuple[float, int] | None = None
        for i in levels:
            y = cv2.remap(self._copy(SOFT_SIGMAS[i]), mx, my, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            g, o = fit_exposure(y, frame, wt, max_gain=STILL_GAIN)
            diff = float((wt * np.abs(g * y + np.float32(o) - tgt)).sum()) / float(wt.sum())
            if best is None or diff < best[0]:
                best = (diff, i)
            elif self.level is None and diff > 1.02 * best[0]:
                break  # past the least difference
        self.level = best[1]


@functools.lru_cache(maxsize=1)
def _luma_of_l8() -> np.ndarray:
    """(256,) float32: the gray R'G'B' level (0..1, the luma above black) of each uint8 L (L x 2.55)."""
    return l_to_gray(torch.arange(256, dtype=torch.float32) / 2.55).numpy()


def luma_of_l8(l8: np.ndarray) -> np.ndarray:
    """uint8 L (L x 2.55) -> float32 gray level (0..1): the luma above black, where light scales."""
    return cv2.LUT(l8, _luma_of_l8())


def l8_of_luma(y: np.ndarray) -> np.ndarray:
    """float32 gray level (0..1) -> float32 L x 2.55 (fractional): :func:`luma_of_l8` undone."""
    return np.interp(y, _luma_of_l8(), np.arange(256, dtype=np.float32)).astype(np.float32)


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


def flow_align(tgt: np.ndarray, ref: np.ndarray, ref_ab: np.ndarray, dis, *, fb_sigma: float = 1.0,
               l_sigma: float = 6.0, outside_sigma: float = 0.0, check=None,
               prealign: np.ndarray | None = None, keep: list | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    ``keep``: a list the (positions in the reference, their geometric confidence) are appended to
    (what :func:`chain_align` carries on to the next frame).
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
    back = cv2.remap(bwd, pos, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    fb = np.sqrt(((fwd + back) ** 2).sum(-1))
    if prealign is not None:  # positions in the reference itself
        pos = cv2.perspectiveTransform(pos.reshape(-1, 1, 2), prealign).reshape(h, w, 2)
        fwd = pos - grid
    geo = np.exp(-0.5 * (fb / fb_sigma) ** 2)
    ab, conf = carried(pos, geo, tgt, ref, ref_ab, l_sigma=l_sigma, outside_sigma=outside_sigma)
    if keep is not None:
        keep.append((pos, geo))
    return ab, conf, fwd


def carried(pos: np.ndarray, geo: np.ndarray, tgt: np.ndarray, ref: np.ndarray, ref_ab: np.ndarray, *,
            l_sigma: float, outside_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The reference's a/b at the (h, w, 2) positions ``pos`` (each target pixel's place in the
    reference), and its confidence: ``geo`` (how far the positions hold, 0..1) lowered where they
    leave the reference and where the luminances under them disagree (see :func:`flow_align`)."""
    h, w = tgt.shape
    mx, my = np.ascontiguousarray(pos[..., 0]), np.ascontiguousarray(pos[..., 1])
    ab = cv2.remap(ref_ab, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ref_l = cv2.remap(ref, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    # where the flow leaves the reference (a pan or a zoom shows what the still does not), the
    # reference's edge colour, carried on by the replicated border, is still the best guess near it
    # (sky goes on being sky); trust in it falls off with the distance outside (``outside_sigma`` px)
    rh, rw = ref.shape
    dx = np.maximum(np.maximum(-0.5 - mx, mx - (rw - 0.5)), 0.0)
    dy = np.maximum(np.maximum(-0.5 - my, my - (rh - 0.5)), 0.0)
    out = np.exp(-0.5 * (dx * dx + dy * dy) / outside_sigma ** 2) if outside_sigma > 0 else (dx == 0) & (dy == 0)
    conf = geo * out
    # the luminances compared with the reference's brought to the frame's exposure (gain and offset fitted
    # where the flow holds): a global exposure change (a print's flicker) is no mismatch
    g, o = fit_exposure(ref_l, tgt, conf, max_gain=STILL_GAIN, min_corr=0.8)
    dl = np.abs(g * ref_l + np.float32(o) - tgt.astype(np.float32)) / 2.55
    conf = conf * np.exp(-0.5 * (dl / l_sigma) ** 2)
    return ab, conf.astype(np.float32)


def chain_align(prev: tuple[np.ndarray, np.ndarray], motion: np.ndarray, fb2: np.ndarray, tgt: np.ndarray,
                ref: np.ndarray, ref_ab: np.ndarray, *, fb_sigma: float, l_sigma: float, outside_sigma: float,
                keep: list | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`flow_align`'s answer for a frame from the frame before's, without a flow to the reference.

    ``prev``: the frame before's (positions in the reference, their geometric confidence), as
    ``keep`` collects them; ``motion``: (h, w, 2) the flow from this frame to the frame before
    (the temporal smoother's, at this size) and ``fb2`` its squared forward-backward error (px^2).
    Each pixel's place in the reference is the frame before's place of where the motion takes it;
    its geometric confidence, that one's, lowered by the motion's own check (``fb_sigma``) and
    zero where the motion leaves the frame before (what comes into view); the luminance check
    against the reference is made afresh (:func:`carried`). Returns (ab, confidence, flow).
    """
    h, w = tgt.shape
    grid = pixel_grid(h, w)
    p = grid + motion
    px, py = np.ascontiguousarray(p[..., 0]), np.ascontiguousarray(p[..., 1])
    pos = cv2.remap(prev[0], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (px >= -0.5) & (px <= w - 0.5) & (py >= -0.5) & (py <= h - 0.5)
    geo = cv2.remap(prev[1], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    geo = geo * np.exp(-0.5 * fb2 / fb_sigma ** 2) * inside
    ab, conf = carried(pos, geo, tgt, ref, ref_ab, l_sigma=l_sigma, outside_sigma=outside_sigma)
    if keep is not None:
        keep.append((pos, geo))
    return ab, conf, pos - grid
