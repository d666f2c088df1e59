"""Chained flows to the still: a flow to the still every few frames, the frames between reached
through the temporal smoother's frame-to-frame flow (vidcolor.models.align.chain_align)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vidcolor.models.exemplar as exemplar
from vidcolor.color import BT709, YCbCrSpec, rgb_to_cbcr
from vidcolor.config import ExemplarConfig
from vidcolor.models.exemplar import PreparedStill
from vidcolor.ops import dis_flow
from vidcolor.temporal.smooth import frame_motion

from test_exemplar import L_of, colorizer, red_square_scene, to_t

SPEC = YCbCrSpec(BT709, True, 8)


def frames(n=8):
    """A scene moving 1 px right and down a frame: RGB frames, their uint8 L and true Cb/Cr x 255."""
    rgb = [red_square_scene(dx=i, dy=i // 2) for i in range(n)]
    l8 = [(L_of(f)[0, 0].numpy() * 2.55).round().astype(np.uint8) for f in rgb]
    truth = [rgb_to_cbcr(to_t(f), SPEC)[0].permute(1, 2, 0).numpy() * 255 for f in rgb]
    return rgb, l8, truth


def motions(l8, shape):
    dis = dis_flow("fast")
    return [None] + [frame_motion(l8[i], l8[i - 1], dis, shape) for i in range(1, len(l8))]


@pytest.fixture
def fresh_calls(monkeypatch):
    calls = []
    real = exemplar.flow_align

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(exemplar, "flow_align", counted)
    return calls


def run(cfg, l8, ms, still_rgb):
    still = PreparedStill(to_t(still_rgb), l8[0].shape, None, SPEC, prealign=False)
    dis, check = dis_flow(cfg.flow_preset), dis_flow(cfg.check_preset)
    return [still.flow(f, cfg, dis, check, t, m) for t, (f, m) in enumerate(zip(l8, ms))]


def test_frames_between_flows_to_the_still_are_chained_and_carry_its_colour(fresh_calls):
    rgb, l8, truth = frames(8)
    out = run(ExemplarConfig(reference_flow_every=4), l8, motions(l8, l8[0].shape), rgb[0])
    assert len(fresh_calls) == 2  # frames 0 and 4
    for t in (2, 3, 6, 7):  # chained: the square's colour lands where it has moved to
        ab, conf, fl, _, _ = out[t]
        assert np.median(conf) > 0.5
        err = np.abs(ab - truth[t]).mean(-1)
        assert err[conf > 0.5].mean() < 4, t
        y, x = 40 + t // 2, 50 + t  # the square, moved (t, t // 2), and its edges: the colour moved with it
        assert np.abs(ab - truth[t])[y - 4:y + 55, x - 4:x + 55].mean() < 4, t  # (positions kept still: 4.7-7.1)


def test_every_frame_gets_its_own_flow_with_no_motion_or_every_1(fresh_calls):
    rgb, l8, _ = frames(6)
    run(ExemplarConfig(reference_flow_every=4), l8, [None] * 6, rgb[0])
    assert len(fresh_calls) == 6
    fresh_calls.clear()
    run(ExemplarConfig(reference_flow_every=1), l8, motions(l8, l8[0].shape), rgb[0])
    assert len(fresh_calls) == 6


def test_a_chain_whose_confidence_falls_is_replaced_by_a_flow_to_the_still(fresh_calls):
    rgb, l8, _ = frames(6)
    ms = motions(l8, l8[0].shape)
    rng = np.random.default_rng(0)
    for m in ms[1:]:  # a motion that is wrong everywhere: the chained colour would not match the frame
        m.flow = rng.uniform(-20, 20, m.flow.shape).astype(np.float32)
        m.fb2 = np.zeros_like(m.fb2)
    run(ExemplarConfig(reference_flow_every=4), l8, ms, rgb[0])
    assert len(fresh_calls) == 6


def test_motion_at_another_size_is_brought_to_the_working_size(fresh_calls):
    rgb, l8, truth = frames(4)
    half = [f[::2, ::2].copy() for f in l8]  # the smoother's flow at half the working size
    out = run(ExemplarConfig(reference_flow_every=4), l8, motions(half, half[0].shape), rgb[0])
    assert len(fresh_calls) == 1
    ab, conf, _, _, _ = out[3]
    assert np.median(conf) > 0.5 and np.abs(ab - truth[3])[44:89, 56:101].mean() < 4


def test_the_colorizer_chains_on_the_motions_it_is_given(fresh_calls):
    rgb, l8, _ = frames(8)
    L = torch.cat([L_of(f) for f in rgb])
    c = colorizer(reference_flow_every=4, prealign=False)
    c.begin_shot(to_t(rgb[0]))
    c.motions = motions(l8, l8[0].shape)
    with_motion = c.colorize(L)
    # fresh flows to the still: frames 0 and 4, and one for the shot's first frame's light across the
    # picture, fitted before its first batch is coloured (ExemplarColorizer._first_falloff)
    assert len(fresh_calls) == 2 + 1
    fresh_calls.clear()
    c.begin_shot(to_t(rgb[0]))
    c.motions = None
    alone = c.colorize(L)
    assert len(fresh_calls) == 8 + 1
    assert (with_motion - alone).abs().mean() < 0.01  # Cb/Cr in [-0.5, 0.5]: within about 2 codes


def test_attention_without_gradients_gives_the_training_paths_answer():
    """The inference path of matcher.attend (fewer passes over the cell x cell map) equals the
    differentiable one, with and without the tone term and the stills' prior, a still batch of 1."""
    import torch.nn.functional as F

    from vidcolor.models.matcher import attend

    torch.manual_seed(0)
    q = F.normalize(torch.randn(2, 152, 6, 7), dim=1)
    k = F.normalize(torch.randn(1, 152, 5, 8), dim=1)
    ab = torch.randn(1, 2, 5, 8) * 30
    qt, kt, prior = torch.rand(2, 42), torch.rand(1, 40), torch.randn(1, 40)
    for tones, p in (((qt, kt), None), ((None, None), None), ((qt, kt), prior)):
        with torch.enable_grad():
            a = attend(q.clone().requires_grad_(True), k, ab, *tones, temperature=0.04, tone_weight=1.0, prior=p)
        with torch.inference_mode():
            b = attend(q, k, ab, *tones, temperature=0.04, tone_weight=1.0, prior=p)
        assert (a[0].detach() - b[0]).abs().max() < 1e-3 and (a[1].detach() - b[1]).abs().max() < 1e-5
        assert a[0].detach().std() > 1  # not a trivially flat answer


def test_a_forward_pass_computes_no_backward_motion():
    from vidcolor.temporal import TemporalSmoother

    _, l8, _ = frames(3)
    luma = np.stack(l8)
    for mode, has in (("forward", False), ("bidirectional", True)):
        sm = TemporalSmoother(mode=mode, threaded=False)
        m = sm.motion(luma, luma.shape[1:])[1]
        assert (m.bwd is not None) == has and (m.bconf is not None) == has
        assert m.fwd.shape == luma.shape[1:] + (2,) and m.flow is not None
