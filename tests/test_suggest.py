"""``vidcolor keyframes --suggest``: where the next keyframe is needed."""
import csv

import cv2
import numpy as np
from click.testing import CliRunner

from synth import decode_luma, frame_rgb, make_clip
from vidcolor.cli import main
from vidcolor.io.image import write_image
from vidcolor.references.plan import PlannedShot
from vidcolor.suggest import choose_frames, suggest_keyframes


def _plan(lengths, keys=()):
    out, at = [], 0
    for i, n in enumerate(lengths):
        mine = [[f, "k.png"] for f in keys if at <= f < at + n]
        out.append(PlannedShot(i, at, at, at / 24, n, None, {"keys": mine} if mine else {}))
        at += n
    return out


def test_without_keyframes_the_middles_of_the_longest_shots_come_first():
    plan = _plan([20, 60, 40])
    picks = choose_frames(plan, np.zeros(120, np.float32), 3, reach=8)
    assert [s for _, s, _ in picks] == [1, 2, 0]  # the longest first
    assert [f for f, _, _ in picks] == [49, 99, 9]  # the middle of each (of an even length: the first of two)
    more = choose_frames(plan, np.zeros(120, np.float32), 5, reach=8)
    assert sorted(f for f, s, _ in more if s == 1)[0] < 50 < sorted(f for f, s, _ in more if s == 1)[-1]


def test_with_keyframes_the_frames_they_reach_least_are_chosen():
    plan = _plan([100], keys=[50])
    t = np.arange(100)
    conf = np.exp(-np.abs(t - 50) / 10).astype(np.float32)  # the keyframe at 50 reaches its neighbours
    conf[:30] = 0.0  # and nothing before frame 30 (a pan shows what the still does not)
    (f, shot, gain), = choose_frames(plan, conf, 1, reach=10)
    assert shot == 0 and 5 <= f <= 25 and gain > 0  # inside the stretch it does not reach
    per = choose_frames(_plan([40, 40], keys=[20]), np.zeros(80, np.float32), 0, per_shot=1, reach=10)
    assert [s for _, s, _ in per] == [0, 1] and per[0][0] != 20  # one in every shot, never a keyframe again


def test_cli_writes_the_frames_and_a_sheet_that_runs(tmp_path):
    src = make_clip(tmp_path / "f.mp4", n=30, w=96, h=64, shots=(0, 12))
    write_image(tmp_path / "k6.png", frame_rgb(6, 96, 64))
    (tmp_path / "keys.csv").write_text("frame,reference\n6,k6.png\n")
    out = tmp_path / "todo"
    r = CliRunner().invoke(main, ["keyframes", str(src), "--keyframes", str(tmp_path / "keys.csv"), "--suggest", "2",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.reader((out / "keys.csv").open()))
    assert rows[0] == ["frame", "reference"] and len(rows) == 4
    frames = [int(f) for f, _ in rows[1:]]
    assert 6 in frames and any(f >= 12 for f in frames)  # the shot without a keyframe gets one
    luma = decode_luma(src)
    for f, name in rows[1:]:
        if int(f) != 6:
            png = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
            assert png.ndim == 2 and name.startswith(f"frame_{int(f):06d}_00-00-")
            assert np.abs(png.astype(int) - luma[int(f)].astype(int)).mean() < 20  # that frame, in gray
    r = CliRunner().invoke(main, ["keyframes", str(src), "--suggest", "1", "-o", str(out)])
    assert r.exit_code != 0 and "already exists" in r.output  # keys.csv is not replaced without --overwrite


def test_suggestions_without_keyframes_are_one_per_shot_first(tmp_path):
    src = make_clip(tmp_path / "f.mp4", n=36, w=96, h=64, shots=(0, 12, 20))
    picks, plan = suggest_keyframes(src, n=3)
    assert [p.shot for p in picks] == [0, 1, 2] and [s.frames for s in plan] == [12, 8, 16]
    assert all(s.first_frame <= p.frame < s.first_frame + s.frames for p, s in zip(picks, plan))
