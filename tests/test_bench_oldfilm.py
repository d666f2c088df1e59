"""The old-film benchmark's interval on its streak figure (benchmarks/bench_oldfilm.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_oldfilm import streak_interval  # noqa: E402


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
