"""Old film: flicker (global exposure jumps frame to frame) is not a cut, and
the luminance checks that trust flow and the past allow a global exposure change."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import synth_shots as ss
from vidcolor.shots import get_detector, list_detectors

try:  # the neural detector registers itself when its module is there
    import vidcolor.shots.transnet  # noqa: F401
except ImportError:
    pass


def flickering_shots(seed: int, jump: float, n: tuple[int, int] = (36, 36)) -> tuple[list[np.ndarray], int]:
    """Two shots joined by a hard cut, every frame's exposure jumping by up to +-``jump`` (and an
    offset of a few levels), the way a scanned print flickers; the frames and the cut's index."""
    rng = np.random.default_rng(seed)
    a = ss.random_shot(rng, mean=float(rng.uniform(80, 120)), sd=35.0)
    b = ss.random_shot(rng, mean=float(rng.uniform(120, 160)), sd=35.0)
    frames = ss.render_shot(a, n[0]) + ss.render_shot(b, n[1])
    gains = 1 + rng.choice([-jump, -jump / 2, 0.0, jump / 2, jump], len(frames))
    drift = 1 + 0.08 * np.sin(np.arange(len(frames)) / 9.0)
    out = [np.clip(f * g * d + rng.normal(0, 3) + 0.5, 0, 255).astype(np.uint8)
           for f, g, d in zip(frames, gains, drift)]
    return out, n[0]


@pytest.mark.parametrize("name", sorted(set(list_detectors()) & {"histogram", "transnet"}))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flicker_is_not_a_cut_and_the_real_cut_is_found(name, seed):
    frames, cut = flickering_shots(seed, 0.2)
    det = get_detector(name)
    got = det.detect([cv2.resize(f, det.thumb_size, interpolation=cv2.INTER_AREA) for f in frames])
    assert [(t.kind, t.boundary) for t in got] == [("cut", cut)], got


def test_default_detector_on_a_cpu_is_not_fooled_by_flicker():
    """``auto`` on a CPU (the default): the histogram detector, which a flickering shot must not fool."""
    import torch

    from vidcolor.config import load_config
    from vidcolor.shots import detector_from_config

    det = detector_from_config(load_config().shots, torch.device("cpu"))
    frames, cut = flickering_shots(3, 0.2)
    got = det.detect([cv2.resize(f, det.thumb_size, interpolation=cv2.INTER_AREA) for f in frames])
    assert [t.boundary for t in got] == [cut], got


def darkening_shot(seed: int, n: int = 72, low: float = 0.5, width: int = 14) -> list[np.ndarray]:
    """One panning shot whose print's light falls to ``low`` over ``width`` frames in its middle (a
    flicker's slow drift), with grain: the picture across the drift differs in exposure, not content."""
    import dataclasses

    rng = np.random.default_rng(seed)
    shot = dataclasses.replace(ss.random_shot(rng, mean=float(rng.uniform(100, 150)), sd=40.0), vx=1.0, vy=0.3)
    t = np.arange(n)
    gain = 1 - (1 - low) * np.clip((t - (n - width) / 2) / width, 0, 1)
    return [np.clip(16 + (f - 16) * g + rng.normal(0, 4, f.shape), 0, 255).astype(np.uint8)
            for f, g in zip(ss.render_shot(shot, n), gain)]


def test_a_drift_of_the_prints_light_is_no_dissolve():
    """The dissolve test compares the pictures across its window for content, exposure aside: a shot
    darkening by half over 14 frames is one shot (before, 5 of these 20 shots were cut by a "dissolve")."""
    found = {}
    for seed in range(20):
        det = get_detector("histogram")
        got = det.detect([cv2.resize(f, det.thumb_size, interpolation=cv2.INTER_AREA) for f in darkening_shot(seed)])
        if got:
            found[seed] = [(t.kind, t.boundary) for t in got]
    assert found == {}


# -- luminance checks that allow a global exposure change ------------------------------------------------------------

def texture(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.5)
    return np.clip(110 + 40 * tex / tex.std(), 0, 255).astype(np.float32)


def _moved(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def to_u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def test_fit_exposure_recovers_gain_and_offset_despite_what_moved():
    from vidcolor.ops import fit_exposure, match_exposure

    ref = texture(0)
    img = ref * 1.25 + 6
    img[20:50, 30:70] = 240  # an object that is not in the reference
    g, o = fit_exposure(ref, img)
    assert abs(g - 1.25) < 0.04 and abs(o - 6) < 5, (g, o)
    back = match_exposure(to_u8(img), to_u8(ref)).astype(np.float32)
    assert np.abs(back - ref)[60:, :].mean() < 1.5
    assert fit_exposure(ref, ref * 3.0) == (1.0, 0.0)  # a jump no flicker makes is a new picture
    g, o = fit_exposure(ref, ref * 1.2 + 3, min_corr=0.8)  # in correspondence
    assert abs(g - 1.2) < 0.01 and abs(o - 3) < 1
    assert fit_exposure(ref, np.roll(ref * 1.2, 40, axis=1), min_corr=0.8) == (1.0, 0.0)  # pixels that do not correspond


@pytest.mark.parametrize("gain,offset", [(1.2, 4.0), (0.8, -5.0)])
def test_exemplar_flow_check_allows_a_flicker_but_not_a_new_object(gain, offset):
    from vidcolor.models.exemplar import flow_align
    from vidcolor.ops import dis_flow

    ref = texture(1)
    ab = np.dstack([ref - 110, 110 - ref]).astype(np.float32) * 0.3
    tgt = _moved(ref, 1.5, -1.0)
    tgt[30:60, 40:80] = texture(2)[30:60, 40:80]  # something the reference does not show
    new = np.zeros(ref.shape, bool)
    new[34:56, 44:76] = True
    old = ~new & np.pad(np.ones((80, 112), bool), 8)
    steady = flow_align(to_u8(tgt), to_u8(ref), ab, dis_flow("medium"))[1]
    flicker = flow_align(to_u8(tgt * gain + offset), to_u8(ref), ab, dis_flow("medium"))[1]
    assert steady[old].mean() > 0.6
    assert flicker[old].mean() > 0.9 * steady[old].mean(), (flicker[old].mean(), steady[old].mean())
    assert flicker[new].mean() < 0.5 * flicker[old].mean()


@pytest.mark.parametrize("gain,offset", [(1.2, 4.0), (0.8, -5.0)])
def test_temporal_smoother_trusts_the_past_through_a_flicker(gain, offset):
    from vidcolor.ops import dis_flow
    from vidcolor.temporal.smooth import frame_motion

    prev = texture(3)
    cur = _moved(prev, -1.0, 0.5)
    old = np.zeros(prev.shape, bool)
    old[8:-8, 8:-8] = True
    steady = frame_motion(to_u8(cur), to_u8(prev), dis_flow("fast"), prev.shape)
    flicker = frame_motion(to_u8(cur * gain + offset), to_u8(prev), dis_flow("fast"), prev.shape)
    assert steady.conf[old].mean() > 0.6
    assert flicker.conf[old].mean() > 0.9 * steady.conf[old].mean()
    assert flicker.bconf[old].mean() > 0.9 * steady.bconf[old].mean()
