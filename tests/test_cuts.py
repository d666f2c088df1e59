"""The change score and the hard-cut test shared by the `histogram` detector and TransNet's cross-check."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vidcolor.shots.cuts import CutTest, FeatureExtractor, change_score


def scores(values):
    return lambda j: values[j]


def never_black(j):
    return False


def far(a, b):
    return 100.0  # the frames around the change all differ: nothing undoes it


def test_a_score_that_stands_out_is_a_cut():
    s = [0, 2, 2, 2, 40, 2, 2, 2]
    assert CutTest()(4, 7, scores(s), never_black, far)
    assert not CutTest(ratio=30.0)(4, 7, scores(s), never_black, far)  # 40 < 30 x mean 2
    assert not CutTest(min_score=50.0)(4, 7, scores(s), never_black, far)


def test_the_neighbours_mean_is_taken_over_window_frames_each_side_known():
    s = [0, 60, 2, 2, 30, 2, 2, 2]
    t = CutTest(ratio=3.0, window=2)
    assert t.stands_out(4, 7, scores(s))  # 30 >= 3 x mean(2, 2, 2, 2)
    assert not CutTest(ratio=3.0, window=3).stands_out(4, 7, scores(s))  # frame 1 is a neighbour: mean 11.7
    assert CutTest(ratio=3.0, window=3).stands_out(4, 7, scores(s), first=2)  # ... unless unknown
    assert t.stands_out(7, 7, scores([0, 1, 1, 1, 1, 1, 1, 30]))  # at the end: the frames before only
    assert t.stands_out(1, 1, scores([0, 9]))  # no neighbours: over 3 x 0.5 is enough


def test_black_frames_and_weak_or_unknown_scores_are_no_cut():
    s = [0, 2, 2, 40, 2, 2]
    assert not CutTest()(3, 5, scores(s), lambda j: j == 3, far)
    assert not CutTest()(3, 5, scores(s), lambda j: j == 2, far)  # out of black: a fade's business
    assert not CutTest().strong(3, scores([0, 2, 2, math.nan]), never_black)


def test_a_change_undone_within_two_frames_is_a_flash():
    s = [0, 2, 2, 2, 40, 2, 2, 2]
    t = CutTest()
    for a, b in [(2, 4), (1, 4), (3, 5), (2, 5), (3, 6)]:  # frames just before and after, in that order
        near = {(a, b)}
        distance = lambda x, y: 5.0 if (x, y) in near else 100.0  # noqa: E731
        assert t.undone(4, 7, scores(s), distance), (a, b)
        assert not t(4, 7, scores(s), never_black, distance)
    # frames past the last known, and unknown (nan) distances, undo nothing
    assert not t.undone(4, 4, scores(s), lambda x, y: 5.0 if y > 4 else 100.0)
    assert not t.undone(4, 7, scores(s), lambda x, y: math.nan)
    # the pairs are tried in order, and the first that differs by less than half ends the test
    asked = []
    t.undone(4, 7, scores(s), lambda x, y: asked.append((x, y)) or (5.0 if (x, y) == (3, 5) else 100.0))
    assert asked == [(2, 4), (1, 4), (3, 5)]


def test_change_score_of_a_frame_and_itself_is_zero_and_of_a_new_picture_high():
    rng = np.random.default_rng(0)
    ext = FeatureExtractor((48, 27))
    a = rng.integers(0, 256, (27, 48), dtype=np.uint8)
    b = rng.integers(0, 256, (27, 48), dtype=np.uint8)
    fa, fb = ext(a), ext(b)
    assert change_score(fa, fa) == 0.0
    assert change_score(fa, fb) > 20.0
    brighter = ext(np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8))  # flicker: not a new picture
    assert change_score(fa, brighter) < 0.25 * change_score(fa, fb)
    dark = ext(np.full((27, 48), 10, np.uint8))
    assert dark.black and not fa.black
    assert ext(np.zeros((54, 96), np.uint8)).grid.shape == (18, 32)  # other sizes are resized
    with pytest.raises(ValueError, match="uint8 gray"):
        ext(np.zeros((27, 48, 3), np.uint8))
