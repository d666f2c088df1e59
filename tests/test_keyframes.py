"""Keyframes (--keyframes keys.csv): the sheet, where each keyframe lands, colour carried both
ways between keyframes, a keyframe's own frame exact, farm and span runs equal to a single run."""
import json

import av
import numpy as np
import pytest
from click.testing import CliRunner

from synth import frame_rgb, make_clip
from vidcolor import InputError, load_config
from vidcolor.cli import main
from vidcolor.io.image import write_image
from vidcolor.models.keyframes import sides_of
from vidcolor.pipeline import colorize_video, low_stretches, plan_shots
from vidcolor.references.keyframes import KeyframeSheet
from vidcolor.temporal import TemporalSmoother

W, H = 96, 64
LOSSLESS = {"encode.crf": 0}


def _cfg(**over):
    return load_config(overrides={**LOSSLESS, **over})


def _tinted(i: int, shot: int = 0, cb: float = 0.0, cr: float = 0.0) -> np.ndarray:
    """Frame ``i`` of the synthetic clip in colour, its chroma pushed by (cb, cr) codes, its luma kept:
    a colouring of that frame (not the clip's own colours)."""
    import cv2

    ycc = cv2.cvtColor(frame_rgb(i, W, H, shot), cv2.COLOR_RGB2YCrCb).astype(np.float32)
    ycc[..., 1] += cr
    ycc[..., 2] += cb
    return cv2.cvtColor(np.clip(ycc, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def _sheet(tmp_path, rows, name="keys.csv"):
    lines = ["frame,reference"]
    for frame, img in rows:
        p = tmp_path / f"key_{frame}.png".replace(":", "_")
        write_image(p, img)
        lines.append(f"{frame},{p.name}")
    (tmp_path / name).write_text("\n".join(lines) + "\n")
    return tmp_path / name


def _chroma(path) -> list[np.ndarray]:
    """(2, h, w) Cb/Cr codes of every frame."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            a = f.to_ndarray(format="yuv420p")
            h = f.height
            cb = a[h:h + h // 4].reshape(h // 2, -1)
            cr = a[h + h // 4:].reshape(h // 2, -1)
            out.append(np.stack([cb, cr]).astype(np.int32))
    return out


# -- the sheet ---------------------------------------------------------------------------------

def test_sheet_reads_frames_timecodes_and_relative_stills(tmp_path):
    p = _sheet(tmp_path, [(0, _tinted(0)), ("00:00:00.500", _tinted(12))])
    sheet = KeyframeSheet.from_csv(p)
    assert [(k.frame, k.seconds) for k in sheet.keys] == [(0, None), (None, 0.5)]
    assert all(k.still.is_absolute() and k.still.parent == tmp_path.resolve() for k in sheet.keys)


@pytest.mark.parametrize("text, message", [
    ("start,reference\n0,a.png\n", "header must be 'frame,reference'"),
    ("frame,reference\n0,a.png\n0,a.png\n", "line 3: frame 0 repeats line 2"),
    ("frame,reference\n0,missing.png\n", "line 2: still missing.png not found"),
    ("frame,reference\nsoon,a.png\n", "line 2: start 'soon' is neither a frame index nor a timecode"),
    ("frame,reference\n3,\n", "line 2: no still for 3"),
    ("frame,reference\n", "a header but no rows"),
])
def test_sheet_errors_name_the_line(tmp_path, text, message):
    write_image(tmp_path / "a.png", _tinted(0))
    (tmp_path / "keys.csv").write_text(text)
    with pytest.raises(InputError) as e:
        KeyframeSheet.from_csv(tmp_path / "keys.csv")
    assert message in str(e.value) and "keys.csv" in str(e.value)


def test_timecodes_land_on_the_first_frame_at_or_after_them_and_past_the_end_is_an_error(tmp_path):
    sheet = KeyframeSheet.from_csv(_sheet(tmp_path, [(3, _tinted(3)), ("00:00:00.250", _tinted(6))]))
    loc = sheet.locator(24)
    for i in range(12):
        loc.feed(i, i / 24)
    assert list(loc.finish()) == [3, 6]  # 0.25 s x 24 = frame 6
    loc = sheet.locator(24)
    for i in range(5):
        loc.feed(i, i / 24)
    with pytest.raises(InputError, match="line 3: 00:00:00.250 is past the film's end"):
        loc.finish()
    clash = KeyframeSheet.from_csv(_sheet(tmp_path, [(6, _tinted(6)), ("00:00:00.250", _tinted(6))], "c.csv"))
    loc = clash.locator(24)
    for i in range(12):
        loc.feed(i, i / 24)
    with pytest.raises(InputError, match="keyframed twice"):
        loc.finish()


def test_sides_are_the_nearest_keyframes_weighted_by_nearness():
    keys = [0, 10, 30]
    assert sides_of(keys, 10) == [(10, 1.0)]  # a keyframe: its own still
    assert sides_of(keys, 15) == [(10, 0.75), (30, 0.25)]
    assert sides_of(keys, 40) == [(30, 1.0)]
    assert sides_of([5], 0) == [(5, 1.0)]


def test_low_confidence_stretches():
    assert low_stretches([0.9, 0.4, 0.3, 0.8, 0.1], 100, 0.5) == [[101, 102], [104, 104]]


def test_a_pinned_frame_passes_the_smoother_unchanged_and_restarts_its_memory():
    s = TemporalSmoother(mode="forward", strength=0.99, detail=0.0, threaded=False)  # strength: under 1, as a config
    luma = np.full((3, 16, 16), 100, np.uint8)
    red = np.zeros((3, 2, 16, 16), np.float32)
    red[:, 1] = 0.2
    red[1] = 0.0  # the middle frame is a keyframe of neutral colour
    red[1, 0] = -0.1
    out = s.push([0, 1, 2], red, s.motion(luma, (16, 16)), np.full((3, 16, 16), 0.5, np.float32),
                 [False, True, False])
    assert np.array_equal(out[1][1], red[1])  # exactly its own colour, memory of frame 0 ignored
    assert out[2][1][0].mean() < -0.02  # frame 2 remembers the keyframe, not frame 0


# -- films -------------------------------------------------------------------------------------

def test_a_keyframes_frame_gets_its_stills_colour_and_neighbours_follow(tmp_path):
    src = make_clip(tmp_path / "f.mp4", n=24, w=W, h=H)
    green = _tinted(12, cb=-30, cr=-30)  # the colourist's colour, not the clip's own
    keys = _sheet(tmp_path, [(12, green)])
    out = tmp_path / "out.mp4"
    report = colorize_video(src, out, keyframes=keys, config=_cfg())
    shot = report.shots[0]
    assert shot["choice"] == "keyframes" and shot["colorizer"] == "keyframes" and shot["keys"][0][0] == 12
    assert len(shot["confidence"]) == 24 and shot["confidence"][12] == 1.0
    f = av.VideoFrame.from_ndarray(green, format="rgb24").reformat(format="yuv420p").to_ndarray()
    want = np.stack([f[H:H + H // 4].reshape(H // 2, -1), f[H + H // 4:].reshape(H // 2, -1)]).astype(np.int32)
    got = _chroma(out)
    assert np.abs(got[12] - want).mean() < 1.0  # its still's chroma (but for the subsampling filter)
    assert np.abs(got[11] - want).mean() < 8  # a neighbour carries it
    assert (got[12] - _own(12)).mean(axis=(1, 2)).max() < -15  # the colourist's colour, not the clip's own
    # exactly its still's, whatever else the shot holds: another keyframe changes every frame but this one
    more = _sheet(tmp_path, [(12, green), (0, _tinted(0, cr=40))], "more.csv")
    other = _chroma(colorize_video(src, tmp_path / "more.mp4", keyframes=more, config=_cfg()).output)
    assert np.array_equal(other[12], got[12]) and not np.array_equal(other[6], got[6])


def test_a_colour_change_between_two_keyframes_is_followed_both_ways(tmp_path):
    src = make_clip(tmp_path / "f.mp4", n=25, w=W, h=H)
    keys = _sheet(tmp_path, [(0, _tinted(0, cr=35)), (24, _tinted(24, cb=35))])  # red at the start, blue at the end
    own = [_own(i) for i in range(25)]
    for mode in ("forward", "bidirectional", "off"):
        out = tmp_path / f"{mode}.mp4"
        colorize_video(src, out, keyframes=keys, config=_cfg(**{"temporal.mode": mode}))
        tint = np.array([(c - o).mean(axis=(1, 2)) for c, o in zip(_chroma(out), own)])  # (frames, [cb, cr])
        cb, cr = tint[:, 0], tint[:, 1]
        assert cr[0] > cr[12] > cr[24] and cb[0] < cb[12] < cb[24], mode  # the change goes across the shot
        assert cr[3] - cr[21] > 10 and cb[21] - cb[3] > 10, mode  # each end near its own keyframe's colour


def _own(i: int) -> np.ndarray:
    """(2, h, w) the synthetic clip's own Cb/Cr codes of frame ``i``."""
    f = av.VideoFrame.from_ndarray(frame_rgb(i, W, H), format="rgb24").reformat(format="yuv420p").to_ndarray()
    return np.stack([f[H:H + H // 4].reshape(H // 2, -1), f[H + H // 4:].reshape(H // 2, -1)]).astype(np.int32)


def test_a_shot_without_keyframes_is_coloured_as_without_the_sheet(tmp_path, still):
    src = make_clip(tmp_path / "two.mp4", n=24, w=W, h=H, shots=(0, 12))
    keys = _sheet(tmp_path, [(18, _tinted(18, 1, cb=-25))])
    cfg = _cfg(**{"references.match": "force"})
    report = colorize_video(src, tmp_path / "out.mp4", reference=still, keyframes=keys, config=cfg)
    assert [s["first_frame"] for s in report.shots] == [0, 12]
    assert [s["choice"] for s in report.shots] == ["exemplar", "keyframes"]
    plain = colorize_video(src, tmp_path / "plain.mp4", reference=still, config=cfg)
    a, b = _chroma(tmp_path / "out.mp4"), _chroma(tmp_path / "plain.mp4")
    assert all(np.array_equal(x, y) for x, y in zip(a[:12], b[:12]))
    assert report.shots[1]["keys"] == [[18, str((tmp_path / "key_18.png").resolve())]]
    assert plain.shots[0]["reference"] == report.shots[0]["reference"]
    # the planning pass's transitions reach the run's report, as a run without a plan reports them
    assert plain.shots[1]["transition"]["kind"] == "cut"
    assert [s["transition"] for s in report.shots] == [s["transition"] for s in plain.shots]


def test_farm_and_span_runs_with_keyframes_equal_a_single_run(tmp_path):
    from vidcolor.farm import run_job

    src = make_clip(tmp_path / "f.mp4", n=32, w=W, h=H, shots=(0, 16), audio=True)
    keys = _sheet(tmp_path, [(4, _tinted(4, cr=30)), (12, _tinted(12, cb=30)), (20, _tinted(20, 1, cb=-30))])
    cfg = _cfg(**{"farm.segment_seconds": 0.5})
    single = tmp_path / "single.mp4"
    colorize_video(src, single, keyframes=keys, config=cfg)
    farm = tmp_path / "farm.mp4"
    r = run_job(src, farm, keyframes=keys, config=cfg, jobs=1)
    assert r.segments == 2
    a, b = _chroma(single), _chroma(farm)
    assert len(a) == len(b) == 32 and all(np.abs(x - y).max() <= 1 for x, y in zip(a, b))
    part = tmp_path / "part.mp4"
    report = colorize_video(src, part, keyframes=keys, config=cfg, span=(16 / 24, None))
    assert [s["first_frame"] for s in report.shots] == [16] and report.shots[0]["keys"][0][0] == 20
    c = _chroma(part)
    assert len(c) == 16 and np.abs(c[4] - a[20]).max() <= 1  # the keyframe's frame, as in the whole film


def test_plan_carries_each_shots_keyframes(tmp_path):
    src = make_clip(tmp_path / "two.mp4", n=24, w=W, h=H, shots=(0, 12))
    keys = _sheet(tmp_path, [(2, _tinted(2)), (10, _tinted(10)), (15, _tinted(15, 1))])
    plan, _ = plan_shots(src, keyframes=keys, config=_cfg())
    assert [[k for k, _ in s.entry["keys"]] for s in plan] == [[2, 10], [15]]
    choice = plan[1].choice(0.3, 0.45)
    assert choice.kind == "keyframes" and [t for t, _ in choice.keys] == [3]  # offsets in the shot


def test_cli_keyframe_errors_are_one_line(tmp_path):
    src = make_clip(tmp_path / "f.mp4", n=12, w=W, h=H)
    keys = _sheet(tmp_path, [(40, _tinted(0))])
    r = CliRunner().invoke(main, [str(src), "--keyframes", str(keys), "-o", str(tmp_path / "o.mp4")])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "keys.csv: line 2: frame 40 is past the film's end (its last frame is 11)" in r.output
    assert not (tmp_path / "o.mp4").exists()
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    (tmp_path / "k2.csv").write_text("frame,reference\n3,bad.png\n")
    r = CliRunner().invoke(main, [str(src), "--keyframes", str(tmp_path / "k2.csv"), "-o", str(tmp_path / "o.mp4")])
    assert r.exit_code != 0 and "k2.csv: line 2: still bad.png not a readable image" in r.output


def test_cli_report_names_low_confidence_stretches(tmp_path):
    src = make_clip(tmp_path / "f.mp4", n=16, w=W, h=H)
    keys = _sheet(tmp_path, [(0, _tinted(0))])
    rp = tmp_path / "r.json"
    r = CliRunner().invoke(main, [str(src), "--keyframes", str(keys), "-o", str(tmp_path / "o.mp4"), "--report",
                                  str(rp), "-c", str(_low_config(tmp_path))])
    assert r.exit_code == 0, r.output
    shot = json.loads(rp.read_text())["shots"][0]
    assert shot["low_confidence"] and all(a >= 1 for a, _ in shot["low_confidence"])  # never the keyframe itself


def _low_config(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("keyframes:\n  low_confidence: 1.0\n")  # every frame but a keyframe is under 1
    return p


def test_preview_and_compare_take_the_keyframes(tmp_path):
    from vidcolor.preview import colorize_preview

    src = make_clip(tmp_path / "f.mp4", n=32, w=W, h=H, shots=(0, 16))
    keys = _sheet(tmp_path, [(2, _tinted(2, cr=40)), (18, _tinted(18, 1, cb=40))])
    cfg = _cfg(**{"preview.seconds": 0.25})  # 6 frames of each shot
    full = _chroma(colorize_video(src, tmp_path / "full.mp4", keyframes=keys, config=cfg).output)
    report = colorize_preview(src, tmp_path / "p.mp4", keyframes=keys, config=cfg)
    assert [e["first_frame"] for e in report.excerpts] == [0, 16] and report.frames == 12
    p = _chroma(tmp_path / "p.mp4")
    assert np.abs(p[2] - full[2]).max() <= 1 and np.abs(p[8] - full[18]).max() <= 1  # the keyframes' frames
    side = colorize_video(src, tmp_path / "c.mp4", keyframes=keys, config=cfg, compare=True)
    assert side.shots[1]["choice"] == "keyframes"
    with av.open(str(tmp_path / "c.mp4")) as c:
        assert c.streams.video[0].width == 2 * W


def test_a_still_that_does_not_lie_on_its_frame_is_carried_by_flow_not_pasted(tmp_path, caplog):
    src = make_clip(tmp_path / "f.mp4", n=16, w=W, h=H)
    exact = _tinted(8, cr=30)
    shifted = np.roll(exact, 10, axis=1)  # exported otherwise: the picture 10 px to the right
    keys = _sheet(tmp_path, [(8, shifted)])
    report = colorize_video(src, tmp_path / "out.mp4", keyframes=keys, config=_cfg())
    shot = report.shots[0]
    assert shot["keyframes_exact"] == 0 and shot["confidence"][8] < 1.0
    assert "keyframe at frame 8: its still does not lie on the frame" in caplog.text
    caplog.clear()
    f = av.VideoFrame.from_ndarray(exact, format="rgb24").reformat(format="yuv420p").to_ndarray()
    truth = np.stack([f[H:H + H // 4].reshape(H // 2, -1), f[H + H // 4:].reshape(H // 2, -1)]).astype(np.int32)
    f = av.VideoFrame.from_ndarray(shifted, format="rgb24").reformat(format="yuv420p").to_ndarray()
    pasted = np.stack([f[H:H + H // 4].reshape(H // 2, -1), f[H + H // 4:].reshape(H // 2, -1)]).astype(np.int32)
    got = _chroma(tmp_path / "out.mp4")[8]
    assert np.abs(got - truth).mean() < 0.6 * np.abs(pasted - truth).mean()  # aligned, not pasted beside its edges
    exact_run = colorize_video(src, tmp_path / "exact.mp4", keyframes=_sheet(tmp_path, [(8, exact)], "e.csv"),
                               config=_cfg())
    assert exact_run.shots[0]["keyframes_exact"] == 1 and exact_run.shots[0]["confidence"][8] == 1.0
