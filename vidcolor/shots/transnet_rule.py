"""TransNetV2's decision rule: per-frame probabilities to transitions.

See :class:`~vidcolor.shots.transnet.TransNetDetector` for the rule; this
module holds what it looks at (the network's two heads, each frame's mean
luminance, the classical cross-check's change scores) for a bounded run of
frames, and decides a transition once every frame its rule looks at is
known, so the answer is the same streamed or not.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from .base import Transition
from .cuts import CutTest, FeatureExtractor, change_score
from .transnet_net import HEIGHT, WIDTH

__all__ = ["TransNetRule"]

_FLAT = 2.0  # luminance steps (of 255) that grain makes on a frame that is not getting brighter


class TransNetRule:
    """The decision rule's state and steps. Feed it :meth:`add_frame` (each
    frame's mean luminance and gray thumbnail) and :meth:`add_probs` (the
    probabilities as they come, in frame order); :meth:`scan` returns the
    transitions now decided (all of them at the ``end``)."""

    def __init__(self, *, threshold: float, span_threshold: float, fade_level: float, max_span: int,
                 cross_check: bool, low_threshold: float, cut: CutTest):
        self.threshold, self.span_threshold = threshold, span_threshold
        self.fade_level, self.max_span = fade_level, max_span
        self.cross_check, self.low_threshold, self.cut = cross_check, low_threshold, cut
        # the `histogram` detector's features, on TransNetV2's thumbnails, with its defaults
        self._features = FeatureExtractor((WIDTH, HEIGHT))
        self.reset()

    def reset(self) -> None:
        self._n = 0  # frames known (their luminance and cross-check scores)
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

    @property
    def held(self) -> int:
        """The most values held for a frame kind: what memory the rule takes grows with this."""
        return max(len(self._p1), len(self._pm), len(self._lum), len(self._black), *map(len, self._d))

    def add_frame(self, lum: float, gray: np.ndarray | None) -> None:
        """The next frame: its mean luminance (0..255) and, for the cross-check, its
        (27, 48) uint8 gray thumbnail (None: its scores are unknown, nan)."""
        self._lum.append(lum)
        if gray is None:
            for d in self._d:
                d.append(math.nan)
            self._black.append(False)
        else:
            f = self._features(np.asarray(gray))
            recent = self._recent
            for k, d in enumerate(self._d, 1):
                d.append(change_score(recent[-k], f) if len(recent) >= k else math.nan)
            self._black.append(f.black)
            recent.append(f)
        self._n += 1

    def add_probs(self, p1: list[float], pm: list[float]) -> None:
        """The next frames' probabilities, single-frame head and all-frames head."""
        self._p1 += p1
        self._pm += pm

    def probs(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self._p1, np.float32), np.array(self._pm, np.float32)

    def scan(self, end: bool) -> list[Transition]:
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
        keep = self._cursor - max(self.max_span, 2 + self.cut.window) - 1 - self._off  # what a span may grow back over
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
        The `histogram` detector's cut test (:class:`CutTest`), on the scores :meth:`add_frame` kept."""
        if not self.cross_check or not 1 <= c < self._n:
            return False
        if not end and c + max(2, self.cut.window) >= self._n:  # (features run 25 frames or more ahead of p1)
            raise _Wait
        off, d1, black = self._off, self._d[0], self._black
        return self.cut(c, self._n - 1, lambda j: d1[j - off], lambda j: black[j - off], self._distance, off)

    def _undone(self, c: int, end: bool) -> bool:
        """Is the change into frame ``c`` (a score of ``min_score`` or more, neither frame black)
        undone within two frames, as a flash's is (:meth:`CutTest.undone`)? Needs the
        cross-check's scores up to frame ``c + 2``."""
        if not self.cross_check or not 1 <= c < self._n:
            return False
        if not end and c + 2 >= self._n:
            raise _Wait
        off, d1, black = self._off, self._d[0], self._black
        score = lambda j: d1[j - off]  # noqa: E731
        return self.cut.strong(c, score, lambda j: black[j - off]) and \
            self.cut.undone(c, self._n - 1, score, self._distance)

    def _distance(self, a: int, b: int) -> float:
        """The change score between frames ``a`` and ``b``, 1 to 3 apart (nan before the film)."""
        return self._d[b - a - 1][b - self._off]

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


class _Wait(Exception):
    """A transition needs frames not predicted yet."""
