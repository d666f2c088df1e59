"""Temporal smoothing: steady colour inside a shot, fresh colour where something new appears, none across a cut."""
import cv2
import numpy as np
import pytest
import torch

from synth import make_clip
from synth_shots import chroma_means, write_video
from vidcolor import ConfigError, colorize_video, load_config
from vidcolor.config import TemporalConfig
from vidcolor.models.registry import Colorizer, register_colorizer
from vidcolor.temporal import TemporalSmoother

H, W = 64, 96


def _texture(seed=0):
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.uniform(40, 200, (H * 2, W * 2)).astype(np.float32), (0, 0), 3)
    return np.clip((t - t.mean()) * 3 + 120, 20, 230).astype(np.uint8)


def _scene(n, dx=1, square=True, seed=0):
    """Luma frames of a textured background panning by ``dx`` px a frame, with a bright
    square moving the other way; and each frame's square mask."""
    bg = _texture(seed)
    frames, masks = [], []
    for t in range(n):
        f = bg[10:10 + H, 10 + dx * t:10 + dx * t + W].copy()
        m = np.zeros((H, W), bool)
        if square:
            x = 60 - 2 * t
            f[20:40, x:x + 20] = 235
            m[22:38, x + 2:x + 18] = True  # the square's inside, clear of its edges
        frames.append(f)
        masks.append(m)
    return np.stack(frames), masks


def _smoother(mode="forward", **kw):
    kw.setdefault("detail", 0.0)  # the whole chroma steadied (the config's default keeps detail under 2 px)
    return TemporalSmoother(mode=mode, flow_size=256, threaded=False, **kw)


def _run(sm, luma, chroma, confidence=None, batch=4):
    out = []
    for a in range(0, len(luma), batch):
        m = sm.motion(luma[a:a + batch], chroma.shape[-2:])
        conf = None if confidence is None else confidence[a:a + batch]
        out += sm.push(list(range(a, min(a + batch, len(luma)))), chroma[a:a + batch], m, conf)
    out += sm.end_shot()
    assert [i for i, _ in out] == list(range(len(luma)))  # every frame, once, in order
    return np.stack([c for _, c in out])


def _colour_field(masks, inside=(0.3, -0.2), outside=(-0.1, 0.1)):
    c = np.empty((len(masks), 2, H, W), np.float32)
    for t, m in enumerate(masks):
        c[t, 0], c[t, 1] = outside
        c[t, 0][m], c[t, 1][m] = inside
    return c


@pytest.mark.parametrize("mode", ["forward", "bidirectional"])
def test_flicker_is_steadied_and_moving_colour_stays_put(mode):
    luma, masks = _scene(24)
    truth = _colour_field(masks)
    rng = np.random.default_rng(1)
    flicker = truth + rng.normal(0, 0.05, (len(luma), 2, 1, 1)).astype(np.float32)  # a per-frame colour cast
    out = _run(_smoother(mode), luma, flicker)
    # frame-to-frame change of the colour on the moving square and on the background
    def jitter(c, where):
        return np.mean([np.abs(c[t, :, where[t]].mean(1) - c[t - 1, :, where[t - 1]].mean(1)).mean()
                        for t in range(4, len(c))])
    bg = [~cv2.dilate(m.astype(np.uint8), np.ones((9, 9))).astype(bool) for m in masks]
    assert jitter(out, masks) < 0.5 * jitter(flicker, masks)
    assert jitter(out, bg) < 0.5 * jitter(flicker, bg)
    # and the colour is still the object's: the square keeps its own colour, the background its own
    sq = np.array([out[t, :, masks[t]].mean(0) for t in range(4, len(out))]).mean(0)
    assert np.allclose(sq, (0.3, -0.2), atol=0.04), sq
    assert np.allclose(np.array([out[t, :, bg[t]].mean(0) for t in range(4, len(out))]).mean(0), (-0.1, 0.1), atol=0.04)


def test_an_object_entering_gets_fresh_colour_not_a_smear():
    luma, _ = _scene(16, square=False)
    luma = luma.copy()
    new = np.zeros((16, H, W), bool)
    for t in range(8, 16):
        luma[t, 16:48, 20:52] = 240  # a bright object appears at frame 8, nothing like the background
        new[t, 20:44, 24:48] = True
    fresh = np.empty((16, 2, H, W), np.float32)
    fresh[:] = np.float32([-0.2, 0.15])[:, None, None]
    for t in range(8, 16):
        fresh[t, 0][new[t]], fresh[t, 1][new[t]] = 0.35, -0.25
    for mode in ("forward", "bidirectional"):
        out = _run(_smoother(mode), luma, fresh)
        got = out[8, :, new[8]].mean(0)  # its very first frame
        assert np.allclose(got, (0.35, -0.25), atol=0.05), (mode, got)


def test_a_confident_keyframe_colour_outweighs_later_guesses():
    luma, _ = _scene(12, square=False)
    fresh = np.empty((12, 2, H, W), np.float32)
    fresh[:] = np.float32([0.0, 0.0])[:, None, None]  # later frames guess gray ...
    fresh[0] = np.float32([0.3, -0.1])[:, None, None]  # ... the keyframe knows
    conf = np.full((12, H, W), 0.05, np.float32)
    conf[0] = 1.0
    out = _run(_smoother("forward"), luma, fresh, conf)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert out[3][inner][0].mean() > 0.15  # the keyframe's colour still dominates three frames on
    plain = _run(_smoother("forward"), luma, fresh)  # without confidences it fades like any frame
    assert plain[3][inner][0].mean() < out[3][inner][0].mean()


def test_end_of_shot_resets_the_state():
    luma, masks = _scene(8)
    a = _colour_field(masks, inside=(0.4, 0.4), outside=(0.4, 0.4))
    b = _colour_field(masks, inside=(-0.4, -0.3), outside=(-0.4, -0.3))
    for mode in ("forward", "bidirectional"):
        sm = _smoother(mode)
        _run(sm, luma, a)  # shot A, ended
        first_b = _run(sm, luma, b)[0]  # shot B, same picture: nothing of A may remain
        assert np.allclose(first_b, b[0], atol=1e-5)  # (the backward pass may carry B's own colour: same value)


def test_bidirectional_holds_a_bounded_window():
    luma, masks = _scene(40)
    sm = _smoother("bidirectional", window=8, overlap=4)
    chroma = _colour_field(masks)
    out = []
    for a in range(0, 40, 4):
        out += sm.push(list(range(a, a + 4)), chroma[a:a + 4], sm.motion(luma[a:a + 4], (H, W)))
        assert len(sm._buffer) < 8 + 4 + 4  # never more than window + overlap + one batch
    out += sm.end_shot()
    assert [i for i, _ in out] == list(range(40))


def test_bidirectional_cuts_the_lag_of_a_causal_filter():
    """A colour that changes mid-shot (every frame equally sure): the causal pass lags behind
    the change; the two-way pass is symmetric about it."""
    luma, _ = _scene(20, square=False)
    fresh = np.zeros((20, 2, H, W), np.float32)
    fresh[10:, 0] = 0.3
    fwd = _run(_smoother("forward"), luma, fresh)[:, 0, 20:-20, 20:-20].mean((1, 2))
    bi = _run(_smoother("bidirectional"), luma, fresh)[:, 0, 20:-20, 20:-20].mean((1, 2))
    assert fwd[10] < 0.15 and bi[10] > fwd[10]  # the causal filter is still mostly before the change
    assert abs((bi[9] + bi[10]) - 0.3) < 0.06  # the two-way one straddles it evenly


def test_off_passes_colour_through():
    luma, masks = _scene(6)
    c = _colour_field(masks)
    sm = TemporalSmoother(mode="off")
    assert sm.motion(luma, (H, W)) == []
    out = sm.push(list(range(6)), c, [])
    assert all(np.array_equal(x, y) for (_, x), y in zip(out, c))


# -- through the pipeline: a colorizer that flickers ---------------------------------------------------------------------

@register_colorizer("test-flicker")
class _Flicker(Colorizer):
    """Cb/Cr tied to the luma (bright = reddish), plus a random colour cast per frame."""

    needs_reference = True
    chroma = "cbcr"

    def __init__(self, *, device):
        super().__init__(device)
        self.rng = np.random.default_rng(0)
        self.ref = None

    def begin_shot(self, reference, choice=None):
        self.ref = reference.mean((2, 3))[0]  # the shot's colour: the still's mean

    def colorize(self, L):
        n = L.shape[0]
        base = torch.stack([self.ref[2] - self.ref[1], self.ref[0] - self.ref[1]]) * 0.4  # (2,)
        cast = torch.from_numpy(self.rng.normal(0, 0.04, (n, 2)).astype(np.float32))
        return (base[None, :, None, None] + cast[:, :, None, None]).expand(n, 2, *L.shape[-2:]).clone()


def test_pipeline_steadies_flicker_and_resets_at_the_cut(tmp_path):
    from synth_shots import cuts

    frames, _ = cuts(lengths=(20, 20), seed=4, means=(90, 160))  # two panning shots, a hard cut at 20
    src = write_video(tmp_path / "two.mp4", frames)
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    cv2.imwrite(str(red), np.full((16, 16, 3), (40, 40, 200), np.uint8))
    cv2.imwrite(str(blue), np.full((16, 16, 3), (200, 60, 40), np.uint8))
    m = tmp_path / "map.csv"
    m.write_text(f"start,reference\n0,{red}\n20,{blue}\n")
    got = {}
    for mode in ("off", "forward"):
        cfg = load_config(overrides={"colorizer": "test-flicker", "temporal.mode": mode, "shots.detector": "histogram"})
        out = tmp_path / f"{mode}.mp4"
        colorize_video(src, out, reference_map=m, config=cfg)
        got[mode] = chroma_means(out)
    jitter = {k: np.abs(np.diff(v[:20], axis=0)).mean() + np.abs(np.diff(v[20:], axis=0)).mean() for k, v in got.items()}
    assert jitter["forward"] < 0.5 * jitter["off"], jitter
    # shot B's first frame is coloured as fresh as without smoothing: red does not carry over the cut
    assert np.allclose(got["forward"][20], got["off"][20], atol=1.0), (got["forward"][20], got["off"][20])
    assert got["forward"][19, 1] > 128 + 10 and got["forward"][20, 0] > 128 + 10  # red Cr before, blue Cb after


def test_an_unknown_flow_preset_is_refused_naming_the_valid_ones():
    with pytest.raises(ConfigError, match="temporal.flow_preset must be one of ultrafast, fast, medium, fine"):
        TemporalSmoother(flow_preset="bogus")


def test_settings_are_checked_as_a_config_files_are():
    with pytest.raises(ConfigError, match=r"^temporal.mode must be one of off, forward, bidirectional, got 'both'$"):
        TemporalSmoother(mode="both")
    with pytest.raises(ConfigError, match=r"temporal.strength must be in \[0, 1\), got 1.5"):
        TemporalSmoother(strength=1.5)
    with pytest.raises(TypeError):
        TemporalSmoother(strenght=0.5)
    sm = TemporalSmoother(threaded=False)  # the defaults are the config's, spelled once
    t = TemporalConfig()
    assert (sm.mode, sm.strength, sm.fb_sigma, sm.l_sigma, sm.window, sm.overlap, sm.detail, sm.flow_size) == \
        (t.mode, t.strength, t.fb_sigma, t.l_sigma_8bit, t.window, t.overlap, t.detail, t.flow_size)
