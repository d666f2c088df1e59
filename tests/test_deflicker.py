"""``--deflicker``: the one option that changes the film's luma (off by default)."""
from __future__ import annotations

import cv2
import numpy as np

from test_oldfilm import flickering_shots, texture, to_u8


def test_deflicker_steadies_exposure_keeps_a_steady_shot_and_restarts_per_shot():
    from vidcolor.temporal.deflicker import Deflicker

    rng = np.random.default_rng(5)
    base = texture(4)
    gains = 1 + rng.choice([-0.2, -0.1, 0.0, 0.1, 0.2], 30)
    shot = np.stack([to_u8(base * g + 3 * g) for g in gains])
    d = Deflicker(bits=8)
    out = d(shot)
    jump = lambda v: np.abs(np.diff([f.astype(np.float32).mean() for f in v])).mean()
    assert jump(out) < 0.3 * jump(shot), (jump(out), jump(shot))
    assert np.abs(out[-1].astype(np.float32) - out[-2]).mean() < 4  # the picture itself is kept
    steady = np.stack([to_u8(base)] * 5)
    d.reset()
    assert np.array_equal(d(steady), steady)  # no flicker: the luma as it was, bit for bit
    d.reset()  # a new shot of another exposure starts from its own first frame
    dark = np.stack([to_u8(base * 0.5)] * 3)
    assert np.array_equal(d(dark), dark)


def test_deflicker_option_changes_luma_only_when_asked(tmp_path):
    from synth import decode_luma
    from synth_shots import write_video
    from vidcolor.config import load_config
    from vidcolor.pipeline import colorize_video

    frames, cut = flickering_shots(7, 0.2, (20, 20))
    src = write_video(tmp_path / "old.mp4", frames)
    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), np.full((16, 16, 3), (40, 90, 200), np.uint8))
    lumas = {}
    for flag in (False, True):
        cfg = load_config(overrides={"colorizer": "transfer", "temporal.deflicker": flag, "encode.crf": 0,
                                     "shots.detector": "histogram"})
        out = tmp_path / f"out_{flag}.mp4"
        colorize_video(src, out, reference=ref, config=cfg)
        lumas[flag] = decode_luma(out)
    given = decode_luma(src)
    assert all(np.array_equal(a, b) for a, b in zip(lumas[False], given))  # off: the film's own luma
    jump = lambda v, a, b: np.abs(np.diff([f.astype(np.float32).mean() for f in v[a:b]])).mean()
    for a, b in ((0, cut), (cut, len(given))):
        assert jump(lumas[True], a, b) < 0.4 * jump(given, a, b)
