"""Flow-guided temporal smoothing of chroma inside a shot.

Per-frame colorizers flicker: the same object gets slightly different colour
from one frame to the next. Here each frame's fresh chroma (whatever two
channels the colorizer answers in: Lab a/b or Cb/Cr) is blended with the
previous *output* carried forward by optical flow:

    out_t = fresh_t + strength * conf_t * (warp(out_{t-1}, flow_t) - fresh_t)

``flow_t`` is dense optical flow (OpenCV DIS) from frame t's luminance to
frame t-1's, at a working size; ``conf_t`` is high where the flow holds:
the forward-backward check agrees (``fb_sigma`` pixels) and the luminance
under the flow matches (``l_sigma`` 8-bit codes), frame t's luminance first
brought to frame t-1's exposure (a gain and offset: film flicker is no mismatch). Occluded or newly visible
regions, and anything the flow cannot follow, get fresh colour rather than a
smear; colour that stays put on a moving object stays put in the output.
The luminance is never touched: only chroma passes through here.

State lives inside a shot: :meth:`TemporalSmoother.end_shot` drops it, so no
colour is carried across a cut.

A colorizer may ask for other settings for its shots (its ``temporal``
hint, given to :meth:`TemporalSmoother.begin_shot`): ``auto`` guesses the
same colour afresh every frame, so its answer's frame-to-frame changes are
noise, not news; it asks for its colour to be held along the flow much more
stiffly, along a flow trusted more loosely, over both directions.

``bidirectional`` (offline renders) adds a backward pass over each shot,
in windows of ``window`` frames that look ``overlap`` frames past their end
(bounded memory whatever the shot's length), and averages the two passes,
so neither direction's lag shows.

Flow for a batch is computed on a worker thread (OpenCV releases the GIL)
while the colorizer runs on the same batch: :meth:`motion` starts it,
:meth:`push` collects it.

Two backends do the arithmetic at the chroma size: numpy and OpenCV
(:class:`NumpyOps`, on the CPU, where it is the faster) and torch
(:class:`~vidcolor.temporal.smooth_torch.TorchOps`, on any other device, so
the colorizer's chroma stays there until it becomes codes); the smoother
picks by its ``device``. The flows are OpenCV's on the CPU either way.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..config import TEMPORAL_MODES as MODES
from ..config import TemporalConfig
from ..ops import dis_flow, exposure_gain, match_exposure, pixel_grid, resize_flow
from ..settings import configure

__all__ = ["TemporalSmoother", "Motion", "NumpyOps", "warp", "frame_motion", "MODES", "BACKENDS"]

# fresh colour's confidence is taken in [MIN_CONFIDENCE, MAX_CONFIDENCE] before it becomes a weight (its odds):
MIN_CONFIDENCE = 0.05  # fresh colour always counts for something: a new object is never painted from memory alone
MAX_CONFIDENCE = 0.99  # a confidence of 1 would be infinite precision: memory would never count
#: what a colorizer's hint may set for its shots (:meth:`TemporalSmoother.begin_shot`; ``l_sigma``: 8-bit luma codes)
HINTS = ("mode", "strength", "fb_sigma", "l_sigma", "window", "overlap", "follow_exposure")
_KEYS = {"l_sigma": "l_sigma_8bit"}  # a hint's names that are not the config's
BACKENDS = ("numpy", "torch")  # the smoother's arithmetic: numpy/OpenCV (the CPU's), torch (the device's)


@dataclass
class Motion:
    """How frame t relates to frame t-1, at the chroma size.

    ``fwd``: (h, w, 2) for each pixel of t, its offset into t-1;
    ``conf``: (h, w) confidence of ``fwd``; ``bwd``/``bconf``: the same from
    t-1 into t (for the backward pass), all numpy, at the chroma size for the numpy backend, at the
    flow size for the torch backend (it resizes them on the device). ``flow``/``fb2``: ``fwd`` at the size it was
    computed at (the flow size) and its squared forward-backward error there (pixels^2),
    for a colorizer that builds on it (the exemplar's flows to its still, chained). ``gain``: the
    exposure of frame t-1 against frame t's (``g`` of ``g * y_t + o ~ y_{t-1}``: a flicker's gain;
    an offset moves the black level, not the chroma).
    """

    fwd: np.ndarray
    conf: np.ndarray
    bwd: np.ndarray | None
    bconf: np.ndarray | None
    flow: np.ndarray | None = None
    fb2: np.ndarray | None = None
    gain: float = 1.0


def warp(img: np.ndarray, flow: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """``img`` sampled at ``x + flow(x)`` (bilinear, borders replicated)."""
    pos = (grid if grid is not None else pixel_grid(*flow.shape[:2])) + flow
    return cv2.remap(img, pos, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _confidence(flow: np.ndarray, back: np.ndarray, src: np.ndarray, dst: np.ndarray, grid: np.ndarray,
                fb_sigma: float, l_sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidence of ``flow`` (src -> dst): forward-backward agreement, luminance match, inside the
    frame; the squared forward-backward error; and ``dst`` carried onto ``src`` (float32)."""
    h, w = src.shape
    pos = grid + flow
    mx, my = pos[..., 0], pos[..., 1]
    b = cv2.remap(back, pos, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # the map whole: faster
    fb2 = ((flow + b) ** 2).sum(-1)
    d = cv2.remap(dst, pos, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    dl = d - src.astype(np.float32)
    inside = (mx >= -0.5) & (mx <= w - 0.5) & (my >= -0.5) & (my <= h - 0.5)
    conf = np.exp(-0.5 * fb2 / fb_sigma ** 2 - 0.5 * (dl / l_sigma) ** 2) * inside
    return conf.astype(np.float32), fb2, d


def frame_motion(cur: np.ndarray, prev: np.ndarray, dis, size: tuple[int, int], *, fb_sigma: float = 1.0,
                 l_sigma: float = 8.0, backward: bool = True, exposure: bool = False) -> Motion:
    """Flow both ways between two (h, w) uint8 luminance images, checked, brought to ``size`` = (H, W).
    ``backward`` False: the backward flow only checks the forward one (``bwd``/``bconf`` are None:
    a forward pass needs no more). ``exposure``: also the gain of frame t-1's light against t's
    where the flow holds (:func:`~vidcolor.ops.exposure_gain`'s, over the picture; else 1)."""
    h, w = cur.shape
    given = cur
    cur = match_exposure(cur, prev)  # flicker (an exposure jump from the frame before) undone: no mismatch
    fwd = dis.calc(cur, prev, None)
    bwd = dis.calc(prev, cur, None)
    grid = pixel_grid(h, w)
    conf, fb2, was = _confidence(fwd, bwd, cur, prev, grid, fb_sigma, l_sigma)
    gain = 1.0
    if exposure:  # the luma codes are linear in R'G'B' (their black level is the fit's shift)
        g = exposure_gain(was / 255, given.astype(np.float32) / 255, conf)
        gain = 1.0 if g is None else float(np.median(g))
    bconf = _confidence(bwd, fwd, prev, cur, grid, fb_sigma, l_sigma)[0] if backward else None
    small = fwd
    H, W = size
    if (H, W) != (h, w):
        up = lambda a: cv2.resize(a, (W, H), interpolation=cv2.INTER_LINEAR)
        fwd, conf = resize_flow(fwd, size), up(conf)
        if backward:
            bwd, bconf = resize_flow(bwd, size), up(bconf)
    return Motion(fwd, conf, bwd if backward else None, bconf, small, fb2, gain)


class NumpyOps:
    """The smoother's arithmetic on numpy arrays with OpenCV, on the CPU: chroma (h, w, 2),
    precision and confidence (h, w); a frame's motion as :func:`frame_motion` gives it."""

    name = "numpy"

    def __init__(self):
        self._grid: np.ndarray | None = None

    def take(self, batch):
        """A batch (chroma (N, 2, h, w) or confidence (N, h, w)) as numpy (a tensor is copied off its device)."""
        return batch if batch is None or isinstance(batch, np.ndarray) else batch.cpu().numpy()

    def fresh(self, chroma: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(chroma.transpose(1, 2, 0), dtype=np.float32)

    def out(self, chroma: np.ndarray) -> np.ndarray:
        return chroma.transpose(2, 0, 1)

    def blur(self, x: np.ndarray, sigma: float) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), sigma)

    def weight(self, confidence: np.ndarray | None, fresh: np.ndarray) -> np.ndarray:
        """The fresh colour's precision: its confidence's odds (1 without one)."""
        if confidence is None:
            return np.ones(fresh.shape[:2], np.float32)
        c = np.clip(np.asarray(confidence, np.float32), MIN_CONFIDENCE, MAX_CONFIDENCE)
        return c / (1.0 - c)

    def motion(self, m: Motion, fresh: np.ndarray) -> tuple:
        """(forward flow, confidence, backward flow, confidence): already at the chroma size."""
        return m.fwd, m.conf, m.bwd, m.bconf

    def step(self, state: tuple[np.ndarray, np.ndarray], fresh: np.ndarray, weight: np.ndarray,
             flow: np.ndarray, conf: np.ndarray, strength: float):
        """The state (colour, precision) carried along ``flow`` and fused with the fresh colour by
        precision. Returns (new state, carried state)."""
        if self._grid is None or self._grid.shape[:2] != flow.shape[:2]:
            self._grid = pixel_grid(*flow.shape[:2])
        colour = warp(state[0], flow, self._grid)
        prec = warp(state[1], flow, self._grid) * conf * strength
        total = weight + prec
        return (_toward(fresh, colour, prec / np.maximum(total, 1e-6)), total), (colour, prec)

    def fuse(self, mix: np.ndarray, f_prec: np.ndarray, b_col: np.ndarray, b_prec: np.ndarray) -> np.ndarray:
        """The forward pass's colour and the backward pass's, by their precisions."""
        return _toward(mix, b_col, b_prec / np.maximum(f_prec + b_prec, 1e-6))


def _toward(a: np.ndarray, b: np.ndarray, share: np.ndarray) -> np.ndarray:
    """(h, w, C) ``a + share * (b - a)``, ``share`` (h, w): one channel at a time (numpy's broadcast
    over a last axis of 2 is twice as slow; the same floats)."""
    out = b - a
    for c in range(out.shape[-1]):
        out[..., c] *= share
    out += a
    return out


class TemporalSmoother:
    """Steadies a shot's chroma frame to frame; see the module docstring.

    Use per shot: for each batch, ``m = motion(luma)`` (starts the flow on a
    worker thread), then ``push(items, chroma, m)`` returns the frames that
    are final, as ``(item, chroma)`` pairs in order (``item`` is whatever
    the caller attached: the frame to write). ``end_shot()`` returns the
    rest and forgets the shot. ``chroma``: (N, 2, h, w) float32, numpy or a tensor;
    the chroma given back is the backend's: numpy arrays or tensors on ``device``.

    Settings: a config's ``temporal`` section (default: the defaults), with keyword
    ``settings`` (its keys: ``strength=0.5``) over it, checked as a config file's
    (:class:`~vidcolor.errors.ConfigError`); ``bits``: the film's luma bit depth.
    ``device``: where the colorizer's chroma is (None: the CPU); ``backend`` (one of
    :data:`BACKENDS`; None: numpy on the CPU, torch elsewhere) the arithmetic's.
    """

    def __init__(self, config: TemporalConfig | None = None, *, bits: int = 8, threaded: bool = True,
                 device=None, backend: str | None = None, **settings):
        on_cpu = device is None or str(device).split(":")[0] == "cpu"
        self.backend = backend or ("numpy" if on_cpu else "torch")
        if self.backend not in BACKENDS:
            raise ValueError(f"temporal smoother: unknown backend {backend!r} (valid: {', '.join(BACKENDS)})")
        if self.backend == "numpy":
            self._ops = NumpyOps()
        else:
            from .smooth_torch import TorchOps  # torch only where it is used

            self._ops = TorchOps("cpu" if device is None else device)
        t = configure(config or TemporalConfig(), settings, "temporal.")
        self.mode = t.mode
        self.strength = float(t.strength)
        self.flow_size = t.flow_size
        self.fb_sigma, self.l_sigma = t.fb_sigma, t.l_sigma_8bit  # pixels; 8-bit luma codes
        self.window, self.overlap = t.window, t.overlap
        self.detail = float(t.detail)  # Gaussian sigma (chroma pixels) splitting off the detail kept as is; 0 = none
        self.follow_exposure = bool(t.follow_exposure)
        self.shift = max(0, bits - 8)
        self._dis = dis_flow(t.flow_preset)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vidcolor-flow") if threaded else None
        self.flow_seconds = 0.0  # spent computing frame-to-frame flow (on the worker thread)
        self._base = {k: getattr(self, k) for k in HINTS}  # the config's settings, between hinted shots
        self.end_shot()

    @classmethod
    def from_config(cls, t: TemporalConfig, bits: int = 8, device=None) -> "TemporalSmoother":
        """The smoother of a config's ``temporal`` section, for a film of ``bits``-bit luma whose
        chroma the colorizer gives on ``device``."""
        return cls(t, bits=bits, device=device)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- motion --------------------------------------------------------------------------------
    def _small(self, luma: np.ndarray) -> np.ndarray:
        """(H, W) luma codes -> uint8 at the flow size."""
        y = luma if self.shift == 0 else (luma >> self.shift).astype(np.uint8)
        h, w = y.shape
        s = min(1.0, self.flow_size / min(h, w))
        if s < 1.0:
            y = cv2.resize(y, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(y, dtype=np.uint8)

    def motion(self, luma: np.ndarray, size: tuple[int, int]) -> list:
        """Start computing the motion of each frame of (N, H, W) ``luma`` relative to the
        frame before it (None for a shot's first frame), at chroma size ``size``: a
        :class:`Motion` (or None) per frame, or on a worker thread a Future of one, each frame's
        own (the frames' other users take each as soon as it is ready)."""
        if not self.enabled:
            return []
        smalls = [self._small(f) for f in luma]
        pairs = [(s, p) for s, p in zip(smalls, [self._prev_y] + smalls[:-1])]
        self._prev_y = smalls[-1]

        fb_sigma, l_sigma = self.fb_sigma, self.l_sigma  # this shot's
        backward, exposure = self.mode == "bidirectional", self.follow_exposure
        host = self.backend == "numpy"  # the torch backend brings the motion to the chroma size on its device

        def work(s: np.ndarray, p: np.ndarray | None) -> Motion | None:
            if p is None:
                return None
            t = time.perf_counter()
            m = frame_motion(s, p, self._dis, size if host else s.shape, fb_sigma=fb_sigma, l_sigma=l_sigma,
                             backward=backward, exposure=exposure)
            self.flow_seconds += time.perf_counter() - t
            return m

        if self._pool is None:
            return [work(s, p) for s, p in pairs]
        return [self._pool.submit(work, s, p) for s, p in pairs]

    # -- smoothing -----------------------------------------------------------------------------
    def _step(self, state, fresh, weight, flow, conf, gain: float = 1.0):
        """One filter step: the state (colour, precision) carried along ``flow`` (its colour times
        ``gain`` where the colour follows the exposure) and fused with the fresh colour by precision.
        Returns (new state, carried state or None)."""
        if state is None or flow is None:
            return (fresh, weight), None
        if self.follow_exposure and gain != 1.0:
            state = (state[0] * float(gain), state[1])
        return self._ops.step(state, fresh, weight, flow, conf, self.strength)

    def push(self, items: list[Any], chroma, motion: list, confidence=None,
             pinned: list[bool] | None = None) -> list[tuple[Any, Any]]:
        """``confidence``: (N, h, w) how far each fresh colour can be trusted, in (0, 1]
        (None: equally everywhere); fresh colour that is sure of itself (an exemplar's
        keyframe, where its flow holds) outweighs colour carried from frames that were not.
        ``pinned``: per frame, True where the fresh colour is given (a keyframe's own frame):
        it is output as it is, and the memory starts afresh from it, both ways."""
        if not self.enabled:
            return list(zip(items, chroma))
        ops = self._ops
        motions = [m.result() if isinstance(m, Future) else m for m in motion]
        for m in motions:  # the flow-size copies served the colorizer, done by now: not kept in the buffer
            if m is not None:
                m.flow = m.fb2 = None
        chroma, confidence = ops.take(chroma), ops.take(confidence)
        ready: list[tuple[Any, Any]] = []
        for i, (item, fresh_c, m) in enumerate(zip(items, chroma, motions)):
            fresh = ops.fresh(fresh_c)
            detail = None
            if self.detail > 0:  # only the smooth part is steadied: edges come from the frame itself, unblurred
                base = ops.blur(fresh, self.detail)
                detail, fresh = fresh - base, base
            # the odds that the fresh colour is right, as its precision: colour an exemplar carries
            # exactly from its keyframe (confidence near 1) is not diluted by what the shot's earlier
            # frames accumulated; a guess (confidence 0.2) weighs a quarter of one frame's memory
            weight = ops.weight(None if confidence is None else confidence[i], fresh)
            pin = bool(pinned[i]) if pinned is not None else False
            # the motion as the backend takes it: (fwd, conf, bwd, bconf); nothing carried into a given colour
            gain = 1.0 if m is None else m.gain
            m = None if m is None or pin else ops.motion(m, fresh)
            # frame t-1's colour at frame t's exposure: divided by t-1's gain against t
            self._state, _ = self._step(self._state, fresh, weight, None if m is None else m[0],
                                        None if m is None else m[1], 1.0 / gain)
            if self.mode == "forward":
                out = self._state[0] if detail is None else self._state[0] + detail
                ready.append((item, ops.out(out)))
            else:
                self._buffer.append((item, fresh, weight, self._state, m, detail, pin, gain))
        if self.mode == "bidirectional" and len(self._buffer) >= self.window + self.overlap:
            ready += self._backward(keep=self.overlap)
        return ready

    def _backward(self, keep: int) -> list[tuple[Any, Any]]:
        """Backward pass over the buffer; emit all but its last ``keep`` frames, each the
        forward pass fused with what the backward pass carries to it from later frames."""
        buf = self._buffer
        n = len(buf) - keep
        out = []
        state = None
        carried: list = [None] * len(buf)
        for t in range(len(buf) - 1, -1, -1):
            _, fresh, weight, _, _, _, pin, _ = buf[t]
            # t+1 relative to t: bwd maps t's pixels into t+1 (nothing is carried into a pinned frame);
            # frame t+1's colour at frame t's exposure: times t's gain against t+1
            m = buf[t + 1][4] if t + 1 < len(buf) and not pin else None
            state, carried[t] = self._step(state, fresh, weight, None if m is None else m[2],
                                           None if m is None else m[3], buf[t + 1][7] if m is not None else 1.0)
        for t in range(n):
            item, _, _, (mix, f_prec), _, detail, pin, _ = buf[t]
            if carried[t] is not None and not pin:
                mix = self._ops.fuse(mix, f_prec, *carried[t])
            if detail is not None:
                mix = mix + detail
            out.append((item, self._ops.out(mix)))
        self._buffer = buf[n:]
        return out

    def begin_shot(self, hint: dict | None = None) -> None:
        """The next shot's settings: the config's, with a colorizer's ``hint`` over them (None:
        none). A hint sets any of :data:`HINTS`; its ``mode`` replaces ``forward`` only (with
        smoothing off it stays off). Call between shots (after :meth:`end_shot`)."""
        if self._buffer or self._state is not None:
            raise RuntimeError("TemporalSmoother.begin_shot inside a shot: call end_shot first")
        settings = dict(self._base)
        for k, v in (hint or {}).items():
            if k not in HINTS:
                raise ValueError(f"temporal hint: unknown setting {k!r} (valid: {', '.join(HINTS)})")
            settings[k] = v
        if self._base["mode"] != "forward":
            settings["mode"] = self._base["mode"]
        # checked by the config's own ranges (ConfigError), under the config's names
        configure(TemporalConfig(), {_KEYS.get(k, k): v for k, v in settings.items()}, "temporal hint: ")
        for k, v in settings.items():
            setattr(self, k, v)

    def end_shot(self) -> list[tuple[Any, Any]]:
        """The frames still held (bidirectional), final; then forget the shot (and its
        hinted settings: the next shot has the config's unless :meth:`begin_shot` says otherwise)."""
        out = self._backward(keep=0) if getattr(self, "_buffer", None) else []
        self._prev_y: np.ndarray | None = None
        self._state: np.ndarray | None = None
        self._buffer: list = []
        for k, v in self._base.items():
            setattr(self, k, v)
        return out
