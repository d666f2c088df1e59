"""The shot splitter: frames out in order, at most `lookahead` held, shots where the detector and the map say."""
from fractions import Fraction

import numpy as np
import pytest

from vidcolor.color import YCbCrSpec
from vidcolor.io.decode import LumaFrame
from vidcolor.shots.base import ShotDetector, Transition
from vidcolor.shots.split import ShotSplitter, thumbnail, gray8_lut


class ScriptedDetector(ShotDetector):
    """Reports the given transitions as late as its lookahead allows."""

    thumb_size = (8, 6)

    def __init__(self, transitions, lookahead):
        self.pending = sorted(transitions, key=lambda t: t.boundary)
        self.lookahead = lookahead
        self.n = 0
        self.sizes = []

    def push(self, thumb):
        self.sizes.append(thumb.shape)
        self.n += 1
        ready = [t for t in self.pending if t.boundary <= self.n - 1 - self.lookahead]
        self.pending = [t for t in self.pending if t not in ready]
        return ready

    def flush(self):
        out, self.pending = self.pending, []
        return out


def frames(n, h=12, w=16):
    return [LumaFrame(np.full((h, w), 16 + i % 200, np.uint8), pts=i * 2, time_base=Fraction(1, 48), index=i)
            for i in range(n)]


def shots_with_ahead(sp, film):
    """(first frame, indices of its frames ahead) of each shot, read as each is released
    (as the pipeline does: every release is consumed before the next frame is fed)."""
    def released():
        for f in film:
            yield from sp.feed(f)
        yield from sp.finish()

    return [(shot.first_frame, [a.index for a in shot.ahead]) for _, shot in released() if shot is not None]


@pytest.mark.parametrize("lookahead", [0, 1, 7, 50])
def test_frames_in_order_and_shots_at_boundaries(lookahead):
    cuts = [Transition(10, 10, 10, "cut"), Transition(20, 29, 25, "fade"), Transition(40, 40, 40, "cut")]
    det = ScriptedDetector(cuts, lookahead)
    sp = ShotSplitter(det, YCbCrSpec(6, False, 8))
    out, held = [], []
    for f in frames(45):
        out += list(sp.feed(f))
        held.append(len(sp._buffer))
    out += list(sp.finish())
    assert [f.index for f, _ in out] == list(range(45))
    assert max(held) <= lookahead + 1
    starts = [(f.index, s.transition.kind if s.transition else None) for f, s in out if s is not None]
    assert starts == [(0, None), (10, "cut"), (25, "fade"), (40, "cut")]
    assert [s.frames for s in sp.shots] == [10, 15, 15, 5]
    assert sp.lookahead == lookahead
    assert det.sizes[0] == (6, 8)


def test_forced_boundaries_and_frames_ahead():
    det = ScriptedDetector([Transition(30, 30, 30, "cut")], lookahead=12)
    sp = ShotSplitter(det, YCbCrSpec(6, False, 8), forced=lambda f: f.index == 20, context=12)
    released = shots_with_ahead(sp, frames(40))
    assert [r[0] for r in released] == [0, 20, 30]
    # a shot sees up to `context` of its frames, and none of the next shot's
    assert released[0][1] == list(range(0, 13))
    assert released[1][1] == list(range(20, 30)) and released[2][1] == list(range(30, 40))
    assert all(s.ahead == [] for s in sp.shots[:-1])  # finished shots hold no frames


def test_no_detector_splits_only_where_forced():
    sp = ShotSplitter(None, YCbCrSpec(6, False, 8), forced=lambda f: f.index in (5, 9))
    out = [s.first_frame for f in frames(12) for _, s in sp.feed(f) if s is not None]
    assert out == [0, 5, 9] and sp.lookahead == 0


def test_thumbnail_is_full_range_gray():
    lut = gray8_lut(YCbCrSpec(6, False, 8))
    y = np.full((20, 30), 16, np.uint8)
    y[:, 15:] = 235
    t = thumbnail(y, (6, 4), lut)
    assert t.shape == (4, 6) and t[0, 0] == 0 and t[0, -1] == 255
    ten = gray8_lut(YCbCrSpec(6, False, 10))
    assert ten[64] == 0 and ten[940] == 255


def test_every_shot_has_its_frames_ahead_when_one_call_releases_several():
    # a long lookahead holds several short shots until the end of the film; each must still
    # arrive with its own frames ahead (only those of its own shot) for choosing its still
    cuts = [Transition(c, c, c, "cut") for c in (10, 20, 30)]
    sp = ShotSplitter(ScriptedDetector(cuts, lookahead=100), YCbCrSpec(6, False, 8), context=4)
    seen = shots_with_ahead(sp, frames(40))
    assert seen == [(0, [0, 1, 2, 3, 4]), (10, [10, 11, 12, 13, 14]), (20, [20, 21, 22, 23, 24]),
                    (30, [30, 31, 32, 33, 34])]
