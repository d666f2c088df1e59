"""Every registered shot detector against synthetic clips with known transitions.

Each clip is run once per detector, frame by frame through ``push`` (module
cache), and the tests check what came out and when it came out.
"""
from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest

import synth_shots as ss
import vidcolor.shots.histogram  # noqa: F401  registers "histogram"
from synth import decode_luma
from vidcolor.errors import ModelError
from vidcolor.shots import Transition, get_detector, list_detectors

try:  # the neural detector registers itself when its module is there
    import vidcolor.shots.transnet  # noqa: F401
except ImportError:
    pass

DETECTORS = list_detectors()
CLIPS = {
    "cuts": lambda: ss.cuts((30, 25, 40, 30)),
    "fade": lambda: ss.fade(before=30, out=10, into=10, after=30),
    "dissolve": lambda: ss.dissolve(before=30, length=15, after=30),
    "flash": lambda: ss.flash(before=30, after=30)[:2],
}
_RUNS: dict[tuple[str, str], tuple[list[Transition], list[int], int, int]] = {}


def thumbs(frames, size):
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def stream(name: str, clip: str):
    """(transitions, frames pushed when each came out, frame count, lookahead), pushing one frame at a time."""
    key = (name, clip)
    if key not in _RUNS:
        frames, _ = CLIPS[clip]()
        det = get_detector(name)
        out, when = [], []
        for i, t in enumerate(thumbs(frames, det.thumb_size)):
            got = det.push(t)
            out += got
            when += [i] * len(got)
        got = det.flush()
        out += got
        when += [len(frames)] * len(got)
        _RUNS[key] = (out, when, len(frames), det.lookahead)
    return _RUNS[key][0]


@pytest.fixture(params=DETECTORS)
def name(request):
    return request.param


def test_histogram_is_registered():
    assert "histogram" in DETECTORS


def test_hard_cuts_frame_exact(name):
    _, expected = CLIPS["cuts"]()
    got = stream(name, "cuts")
    assert [(t.kind, t.boundary) for t in got] == [("cut", t.boundary) for t in expected]
    assert all(t.start == t.end == t.boundary for t in got)


def test_fade_through_black_is_one_transition(name):
    frames, (fade,) = CLIPS["fade"]()
    darkest = int(np.argmin([f.mean() for f in frames]))
    assert darkest + 1 == fade.boundary  # the clip is what it claims
    got = stream(name, "fade")
    assert len(got) == 1, got
    t = got[0]
    assert t.gradual and t.kind in ("fade", "gradual"), t
    assert t.boundary == darkest + 1
    assert t.start <= darkest < t.end and t.start >= fade.start - 3 and t.end <= fade.end + 3
    if name == "histogram":
        assert (t.kind, t.start, t.end) == ("fade", fade.start, fade.end)


def test_dissolve_is_one_transition_near_its_middle(name):
    _, (dis,) = CLIPS["dissolve"]()
    got = stream(name, "dissolve")
    assert len(got) == 1, got
    t = got[0]
    assert t.gradual and t.kind in ("dissolve", "gradual"), t
    assert abs(t.boundary - (dis.start + dis.end) / 2) <= 3
    if name == "histogram":
        assert t.kind == "dissolve" and abs(t.start - dis.start) <= 3 and abs(t.end - dis.end) <= 3


def test_flash_is_not_a_cut(name):
    assert stream(name, "flash") == []


@pytest.mark.parametrize("clip", list(CLIPS))
def test_streaming_contract(name, clip):
    """After frame n is pushed, every transition with boundary <= n - lookahead has been returned, in order."""
    out = stream(name, clip)
    _, when, n, lookahead = _RUNS[(name, clip)]
    for t, i in zip(out, when):
        assert i <= t.boundary + lookahead, (t, i, lookahead)
    assert [t.boundary for t in out] == sorted(t.boundary for t in out)
    assert len({t.boundary for t in out}) == len(out)
    assert all(0 < t.boundary < n for t in out)


def test_detect_equals_push_and_starts_clean(name):
    """A second instance knows nothing of the first; detect() is push() + flush()."""
    frames, _ = CLIPS["dissolve"]()
    det = get_detector(name)
    assert det.detect(thumbs(frames, det.thumb_size)) == stream(name, "dissolve")


def test_cuts_survive_h264(name, tmp_path):
    """Frame-exact cuts from a real (compressed) video, decoded and shrunk as a pipeline would."""
    frames, expected = ss.cuts((30, 25, 40, 30), seed=5)
    path = ss.write_video(tmp_path / "cuts.mp4", frames)
    det = get_detector(name)
    gray = [np.clip((y.astype(np.float32) - 16) * (255 / 219) + 0.5, 0, 255).astype(np.uint8)
            for y in decode_luma(path)]  # limited-range luma codes to full-range gray
    assert len(gray) == len(frames)
    got = det.detect(thumbs(gray, det.thumb_size))
    assert [(t.kind, t.boundary) for t in got] == [("cut", t.boundary) for t in expected]


def test_unknown_detector_lists_valid_names():
    with pytest.raises(ModelError) as e:
        get_detector("no-such-detector")
    for n in DETECTORS:
        assert n in str(e.value)


def test_histogram_rejects_unknown_options():
    with pytest.raises(TypeError):
        get_detector("histogram", treshold=2.0)
    with pytest.raises(ValueError):
        get_detector("histogram", threshold=0)


def test_histogram_reel_and_bounded_memory():
    """A long reel with cuts, a fade and dissolves: all found, in time, memory flat."""
    frames, expected = ss.random_sequence(7, n_shots=10, gradual=0.5)
    assert any(t.gradual for t in expected) and sum(t.kind == "cut" for t in expected) >= 4
    det = get_detector("histogram")
    tiles = thumbs(frames, det.thumb_size)
    got, peak = [], []
    tracemalloc.start()
    try:
        for rep in range(4):  # the reel again and again: the film goes on, memory must not
            for i, t in enumerate(tiles):
                n = rep * len(tiles) + i
                for tr in det.push(t):
                    assert tr.boundary >= n - det.lookahead
                    got.append(tr)
            peak.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    got += det.flush()
    first = [t for t in got if t.boundary < len(tiles)]
    assert [(t.kind, t.boundary) for t in first if t.kind == "cut"] == \
        [(t.kind, t.boundary) for t in expected if t.kind == "cut"]
    gradual = [t for t in first if t.gradual]
    assert len(gradual) == sum(t.gradual for t in expected)
    for g, e in zip(gradual, [t for t in expected if t.gradual]):
        assert g.kind == e.kind and e.start <= g.boundary <= e.end + 1
    assert peak[-1] - peak[0] < 1 << 20, peak
