"""A grainy print's grain smoothed out of the luma the colour is worked out from; the output keeps it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from test_defects import moving_picture, through_pipeline
from vidcolor.temporal.grain import GRAIN_FLOOR, GrainFilter, grain_level


def grainy(frames: np.ndarray, sd: float, seed: int = 0) -> np.ndarray:
    """The frames with fresh film grain every frame (s.d. ``sd`` codes, ~1.5 px grains), as
    benchmarks/oldfilm.py makes it."""
    rng = np.random.default_rng(seed)
    out = []
    for y in frames.astype(np.float32):
        g = cv2.GaussianBlur(rng.normal(0, 1, y.shape).astype(np.float32), (0, 0), 0.7)
        out.append(y + g * (sd / float(g.std())))
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


def _edges(frame: np.ndarray) -> np.ndarray:
    """The pixels on the picture's hard edges (its rectangles' and pole's)."""
    y = frame.astype(np.float32)
    return cv2.magnitude(cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1)) > 120


def test_a_clean_picture_is_left_as_it_is():
    clean = moving_picture(1, n=4)
    f = GrainFilter()
    assert f(clean) is clean  # nothing done: a clean film's colour is exactly what it was
    assert f.level < GRAIN_FLOOR


@pytest.mark.parametrize("sd", [4.0, 8.0])
def test_grain_is_smoothed_and_edges_are_kept(sd):
    clean = moving_picture(2, n=4)
    noisy = grainy(clean, sd)
    before = noisy.copy()
    out = GrainFilter()(noisy)
    assert np.array_equal(noisy, before)  # the film's own luma is not touched
    assert out.dtype == np.uint8 and out.shape == noisy.shape
    # the fine grain goes (what is left is its coarser part: the grains are ~1.5 px), the picture stays
    assert grain_level(out[0]) < 0.65 * grain_level(noisy[0]), (grain_level(out[0]), grain_level(noisy[0]))
    err = lambda x: float(np.abs(x.astype(np.float32) - clean).mean())
    assert err(out) < 0.9 * err(noisy), (err(out), err(noisy))
    # the picture's hard edges stay where they were: no further from the clean picture than the grain
    # left them, where a Gaussian blur takes them three times as far
    edges = np.stack([_edges(c) for c in clean])
    blur = np.stack([cv2.GaussianBlur(x, (0, 0), 1.5) for x in noisy])
    on = lambda x: float(np.abs(x.astype(np.float32) - clean)[edges].mean())
    assert on(out) < 1.02 * on(noisy) and on(out) < 0.6 * on(blur), (on(out), on(noisy), on(blur))


def test_a_print_whose_grain_is_near_the_floor_is_not_filtered_batch_on_batch_off():
    clean = moving_picture(5, n=1, blur=8.0)  # smooth: its own fine detail well under the floor
    level = lambda sd: grain_level(grainy(clean, sd)[0])
    near = next(sd for sd in np.arange(1.0, 4.0, 0.05) if 0.85 * GRAIN_FLOOR <= level(sd) < 0.95 * GRAIN_FLOOR)
    over = next(sd for sd in np.arange(1.0, 6.0, 0.05) if level(sd) >= 1.1 * GRAIN_FLOOR)
    f = GrainFilter()
    filtered = []
    for sd in (near, over, near, near):
        batch = grainy(clean, sd)
        filtered.append(f(batch) is not batch)
    assert filtered == [False, True, True, True]  # on once over the floor, and held on just under it
    f.reset()
    batch = grainy(clean, near)
    assert f(batch) is batch  # a new shot starts off


def test_ten_bit_luma_is_measured_in_eight_bit_codes_and_filtered_alike():
    clean = moving_picture(3, n=2)
    noisy8 = grainy(clean, 6.0)
    noisy10 = noisy8.astype(np.uint16) * 4
    assert grain_level(noisy10[0], bits=10) == pytest.approx(grain_level(noisy8[0]), rel=1e-3)
    out8, out10 = GrainFilter()(noisy8), GrainFilter(bits=10)(noisy10)
    assert out10.dtype == np.uint16 and int(out10.max()) <= 1023
    assert np.abs(out10.astype(np.float32) / 4 - out8).mean() < 0.6


def test_the_colour_of_a_grainy_print_is_worked_out_from_its_picture_and_its_luma_kept(tmp_path):
    """Through the pipeline, a colorizer whose colour follows luminance: with the grain filter (the
    default) a grainy print's colour is nearer the clean print's than without it; the output's luma is
    the input's, grain and all, bit for bit."""
    from synth import decode_luma

    clean = moving_picture(4, n=12, h=96, w=128, blur=6.0)
    noisy = grainy(clean, 7.0, seed=4)
    chroma = through_pipeline(tmp_path, clean, noisy, "temporal.degrain")
    got, given = decode_luma(tmp_path / "out_on.mp4"), decode_luma(tmp_path / "on.mp4")
    assert len(got) == len(given) == 12 and all(np.array_equal(a, b) for a, b in zip(got, given))
    err = {k: float(np.sqrt(((chroma[k] - chroma["clean"]) ** 2).sum(-1)).mean()) for k in ("off", "on")}
    assert err["on"] < 0.8 * err["off"], err  # 4.3 against 5.8 codes


def test_the_colorizer_is_told_when_a_print_is_grainy(tmp_path, monkeypatch):
    """The pipeline tells the colorizer a shot's print is grainy (``Colorizer.grainy``: the exemplar then
    matches its features on blurred copies) when the grain filter is on, and only then."""
    from synth_shots import write_video
    from vidcolor.config import load_config
    from vidcolor.models.transfer import TransferColorizer
    from vidcolor.pipeline import colorize_video
    from test_defects import _bright_is_yellow

    seen: list[bool] = []
    plain = TransferColorizer.colorize
    monkeypatch.setattr(TransferColorizer, "colorize", lambda self, L: (seen.append(self.grainy), plain(self, L))[1])
    clean = moving_picture(4, n=10, h=96, w=128, blur=6.0)
    ref = _bright_is_yellow(tmp_path)
    told = {}
    for name, frames, degrain in (("clean", clean, True), ("grainy", grainy(clean, 7.0, seed=4), True),
                                  ("unfiltered", grainy(clean, 7.0, seed=4), False)):
        seen.clear()
        src = write_video(tmp_path / f"{name}.mp4", list(frames), crf=0)
        cfg = load_config(overrides={"colorizer": "transfer", "temporal.degrain": degrain, "encode.crf": 0,
                                     "shots.detector": "off"})
        colorize_video(src, tmp_path / f"out_{name}.mp4", reference=ref, config=cfg)
        told[name] = list(seen)
    assert told["clean"] and not any(told["clean"]), told
    assert told["grainy"] and all(told["grainy"]), told
    assert told["unfiltered"] and not any(told["unfiltered"]), told  # no filter, no word of it
