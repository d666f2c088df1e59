"""The old-film benchmark's interval on its streak figure and its encoder floor (benchmarks/bench_oldfilm.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_oldfilm import encoded_truth, streak_interval  # noqa: E402


def stretches(n: int, seed: int, excess: float = 0.05, spread: float = 0.2) -> np.ndarray:
    """``n`` stretches of two clips (alternating): rows (clip, scratch error sum, scratch pixels, ring
    error sum, ring pixels), each stretch's scratch error ``excess`` over its ring's on average."""
    rng = np.random.default_rng(seed)
    n_on = rng.integers(200, 800, n).astype(float)
    n_ring = 3 * n_on
    ring = rng.uniform(0.8, 1.6, n)
    on = ring + excess + rng.normal(0, spread, n)
    return np.stack([np.arange(n) % 2, on * n_on, n_on, ring * n_ring, n_ring], axis=1)


def test_the_streak_figure_is_the_rows_own_and_its_interval_holds_it():
    """The figure is each clip's scratch error less its ring's (ring pixels pooled within a clip), the
    clips pooled by their scratch pixels, as the benchmark's rows give it; the interval holds it."""
    b = stretches(60, 0)
    clip = b[:, 0] == 0
    per = [(b[c, 1].sum() / b[c, 2].sum() - b[c, 3].sum() / b[c, 4].sum(), b[c, 2].sum()) for c in (clip, ~clip)]
    want = sum(d * n for d, n in per) / sum(n for _, n in per)
    got, lo, hi = streak_interval(b)
    assert got == pytest.approx(want, abs=1e-12)
    assert lo < got < hi


def test_the_interval_narrows_with_more_stretches_and_is_none_where_they_agree():
    """Four times the stretches, about half the width (the spread of a mean); stretches all alike,
    no width at all."""
    width = {}
    for n in (40, 160):
        _, lo, hi = streak_interval(stretches(n, 1))
        width[n] = hi - lo
    assert 0.35 < width[160] / width[40] < 0.7, width
    same = np.tile(stretches(1, 2), (30, 1))
    got, lo, hi = streak_interval(same)
    assert lo == pytest.approx(got) and hi == pytest.approx(got)


def test_a_paired_figure_is_the_difference_of_the_two_and_none_against_itself():
    """``minus``: this video's figure less another's over the same stretches, resampled together, so a
    video against itself is exactly none; stretches that do not match are refused."""
    b, m = stretches(60, 3), stretches(60, 4, excess=0.2)
    got, lo, hi = streak_interval(b, minus=m)
    assert got == pytest.approx(streak_interval(b)[0] - streak_interval(m)[0], abs=1e-12)
    assert lo < got < hi < 0
    assert streak_interval(b, minus=b) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same stretches"):
        streak_interval(b, minus=m[1:])


def planes(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="yuv420p") for f in c.decode(video=0)])


def test_the_truth_through_the_tools_encoder_is_lossless_at_crf_0_and_loses_at_a_lossy_crf(tmp_path):
    """The floor under the tool's figure at a crf: the set's truth through vidcolor's own encoder at
    that crf and the ``--preset`` given to the tool; crf 0 gives it back bit for bit, crf 40 does not,
    each encoder setting in its own cached file."""
    (tmp_path / "src").mkdir()
    rng = np.random.default_rng(0)
    with av.open(str(tmp_path / "src" / "clip.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"crf": "0"}
        for i in range(6):
            a = rng.integers(16, 236, (72, 64), dtype=np.uint8)
            f = av.VideoFrame.from_ndarray(a, format="yuv420p")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    truth = planes(tmp_path / "src" / "clip.mp4")
    lossless = encoded_truth(tmp_path, "clip.mp4", "0")
    assert np.array_equal(planes(lossless), truth)
    lossy = encoded_truth(tmp_path, "clip.mp4", "40")
    assert lossy.parent != lossless.parent
    got = planes(lossy)
    assert got.shape == truth.shape and not np.array_equal(got, truth)
    assert encoded_truth(tmp_path, "clip.mp4", "40") == lossy  # cached
    fast = encoded_truth(tmp_path, "clip.mp4", "40", "--preset ultrafast -q")
    assert fast.parent not in (lossy.parent, lossless.parent)
