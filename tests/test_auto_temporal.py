"""auto's shots are held steady in time: its temporal hint, how the smoother takes it, and the pipeline passing it."""
import dataclasses

import cv2
import numpy as np
import pytest
import torch

from synth import make_clip
from vidcolor import colorize_video
from vidcolor.config import AutoConfig, Config
from vidcolor.models.auto import AutoColorizer, save_auto
from vidcolor.temporal import TemporalSmoother

H, W = 64, 96


def _pan(n, seed=0):
    """Luma frames of a textured picture panning 1 px a frame."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.uniform(40, 200, (H * 2, W * 2)).astype(np.float32), (0, 0), 3)
    bg = np.clip((t - t.mean()) * 3 + 120, 20, 230).astype(np.uint8)
    return np.stack([bg[10:10 + H, 10 + i:10 + i + W] for i in range(n)])


def _guesses(n, seed=1):
    """What auto does: the same colour guessed afresh each frame, a little differently each time
    (a smooth per-frame wobble over a fixed cast)."""
    rng = np.random.default_rng(seed)
    wobble = np.stack([cv2.resize(rng.normal(0, 4, (2, 3, 4)).transpose(1, 2, 0).astype(np.float32), (W, H),
                                  interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1) for _ in range(n)])
    return (np.float32([6, -9])[None, :, None, None] + wobble).astype(np.float32)


def _smooth(hint, luma, chroma, mode="forward", batch=4):
    sm = TemporalSmoother(mode=mode, flow_size=256, detail=0.0, threaded=False)
    sm.begin_shot(hint)
    out = []
    for a in range(0, len(luma), batch):
        m = sm.motion(luma[a:a + batch], chroma.shape[-2:])
        out += sm.push(list(range(a, min(a + batch, len(luma)))), chroma[a:a + batch], m)
    out += sm.end_shot()
    assert [i for i, _ in out] == list(range(len(luma)))
    return sm, np.stack([c for _, c in out])


def _change(c):
    """Mean per-pixel change of the colour from one frame to the next, inside the frame (the pan's new
    column at the edge is new content)."""
    return float(np.abs(np.diff(c[:, :, 4:-4, 4:-4], axis=0)).mean())


def test_auto_hint_holds_a_wobbling_guess_far_steadier_than_the_config_alone():
    luma, fresh = _pan(32), _guesses(32)
    _, plain = _smooth(None, luma, fresh)
    sm, held = _smooth(AutoColorizer.temporal, luma, fresh)
    assert _change(held) < 0.4 * _change(plain), (_change(held), _change(plain))
    # the colour is still the guesses' colour, not washed out or drifted
    assert np.allclose(held.mean(axis=(0, 2, 3)), fresh.mean(axis=(0, 2, 3)), atol=1.0)
    # and the next shot has the config's settings again
    assert (sm.mode, sm.strength, sm.fb_sigma, sm.l_sigma) == ("forward", 0.85, 1.0, 8.0)


def test_a_hint_does_not_turn_smoothing_on_and_bad_hints_are_refused():
    sm = TemporalSmoother(mode="off", threaded=False)
    sm.begin_shot(AutoColorizer.temporal)
    assert not sm.enabled  # the user's "off" stays off
    sm = TemporalSmoother(mode="forward", threaded=False)
    with pytest.raises(ValueError, match="unknown setting 'radius'"):
        sm.begin_shot({"radius": 3})
    with pytest.raises(ValueError, match=r"^temporal hint: strength must be in \[0, 1\), got 1.5$"):
        sm.begin_shot({"strength": 1.5})
    with pytest.raises(ValueError, match="^temporal hint: mode must be one of off, forward, bidirectional"):
        sm.begin_shot({"mode": "backward"})
    sm.begin_shot({"strength": 0.5})
    luma, fresh = _pan(3), _guesses(3)
    sm.push([0], fresh[:1], sm.motion(luma[:1], fresh.shape[-2:]))
    with pytest.raises(RuntimeError, match="inside a shot"):
        sm.begin_shot(None)


def test_the_pipeline_gives_the_smoother_autos_hint_for_its_shots(tmp_path, monkeypatch):
    from test_auto import tiny_net

    net = tiny_net(2)
    weights = tmp_path / "w.safetensors"
    save_auto(net, weights, torch.full((net.config["bins"],), 1.0 / net.config["bins"]), {})
    src = make_clip(tmp_path / "in.mp4", n=12, w=64, h=48, shots=(0, 6))
    seen = []
    begin = TemporalSmoother.begin_shot
    monkeypatch.setattr(TemporalSmoother, "begin_shot", lambda self, hint=None: (seen.append(hint), begin(self, hint)))
    cfg = dataclasses.replace(Config(auto=AutoConfig(weights=str(weights), work_size=48)),
                              runtime=dataclasses.replace(Config().runtime, device="cpu"))
    report = colorize_video(src, tmp_path / "out.mp4", config=cfg)
    assert len(report.shots) >= 1 and all(s["colorizer"] == "auto" for s in report.shots)
    assert seen and all(h is not None and h == AutoColorizer.temporal for h in seen), seen
