"""A part of a film (--start/--duration), a preview of every shot (--preview) and
side-by-side review video (--compare), on small synthetic clips (CPU, transfer)."""
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from synth import decode_luma, decode_pts, make_clip
from vidcolor.cli import main
from vidcolor.io.span import locate_span

FAST = ["--colorizer", "transfer", "--temporal", "off"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], env={"VIDCOLOR_DEBUG": ""})


def tinted_still(path, hue):
    """A still whose every pixel has ``hue`` ('red' or 'blue'), over the full range of luminance."""
    g = np.tile(np.linspace(20, 235, 96, dtype=np.float32), (64, 1))
    rgb = np.stack([g, g * 0.45, g * 0.45] if hue == "red" else [g * 0.45, g * 0.6, g], axis=-1)
    cv2.imwrite(str(path), cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR))
    return path


def frame_tints(path) -> list[float]:
    """Per frame, mean Cr - mean Cb of the right-most half (> 0 reddish, < 0 bluish)."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in f.planes]
            cb, cr = planes[1].astype(float), planes[2].astype(float)
            w = cb.shape[1]
            out.append(float((cr[:, w // 2:] - cb[:, w // 2:]).mean()))
    return out


def audio_packets(path):
    """[(seconds, bytes)] of the first audio stream."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return [(float(p.pts * p.time_base), bytes(p)) for p in c.demux(a) if p.size]


def video_stream(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.width, s.height, len(c.streams.audio)


# -- --start / --duration ---------------------------------------------------------------------

def test_part_frames_pts_and_trimmed_audio(tmp_path, still):
    src = make_clip(tmp_path / "film.mp4", n=72, audio=True)  # 3 s at 24 fps, B-frames, one keyframe
    out = tmp_path / "part.mp4"
    r = run(src, "-r", still, *FAST, "--start", "0.5", "--duration", "1", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    assert decode_pts(out) == [i * 512 for i in range(24)]  # frames 12..35, shifted to start at 0
    # the luma of the part is the film's frames 12..35 (within the encoder's loss)
    film, part = decode_luma(src)[12:36], decode_luma(out)
    assert len(part) == 24 and max(abs(a.astype(int) - b).mean() for a, b in zip(film, part)) < 1.5
    # audio: exactly the film's packets inside [0.5 s, 1.5 s), bytes untouched, shifted by 0.5 s
    want = [(t - 0.5, b) for t, b in audio_packets(src) if 0.5 <= t < 1.5]
    got = audio_packets(out)
    assert [b for _, b in got] == [b for _, b in want]
    assert all(abs(g - w) < 1e-3 for (g, _), (w, _) in zip(got, want)) and 0 <= got[0][0] < 0.03


def test_part_from_the_first_frame_copies_each_audio_packet_once(tmp_path, still):
    """--duration alone (the part starts at frame 0): the reader had begun demuxing every stream
    before it knew; its audio must not be muxed beside the part's own (the muxer refused the
    repeated timestamps and the run failed)."""
    src = make_clip(tmp_path / "film.mp4", n=72, audio=True)
    out = tmp_path / "part.mp4"
    r = run(src, "-r", still, *FAST, "--duration", "1", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    assert decode_pts(out) == [i * 512 for i in range(24)]
    want = [(t, b) for t, b in audio_packets(src) if 0 <= t < 1.0]  # as any part: [first frame, end)
    got = audio_packets(out)
    assert [b for _, b in got] == [b for _, b in want]


def test_part_timecode_to_the_end_and_vfr(tmp_path, still):
    gaps = [40, 40, 33, 100, 41, 42, 250, 40, 40, 17, 83, 40, 40, 40]
    pts = np.concatenate([[0], np.cumsum(gaps)]).tolist()
    src = make_clip(tmp_path / "vfr.mkv", n=len(pts), pts=pts, time_base=Fraction(1, 1000))
    out = tmp_path / "part.mkv"
    r = run(src, "-r", still, *FAST, "--start", "00:00:00.290", "-o", out, "-q")  # frame 6 is at 0.296 s
    assert r.exit_code == 0, r.output
    assert decode_pts(out) == [p - pts[6] for p in pts[6:]]  # every frame's timing kept, from 0
    span = locate_span(src, 0.290)
    assert (span.first_frame, span.first_pts, span.end) == (6, 296, None)


def test_part_takes_map_rows_by_the_films_own_timeline(tmp_path):
    src = make_clip(tmp_path / "film.mp4", n=72)
    tinted_still(tmp_path / "red.png", "red")
    tinted_still(tmp_path / "blue.png", "blue")
    m = tmp_path / "map.csv"
    m.write_text("start,reference\n0,red.png\n00:00:01.000,blue.png\n60,red.png\n")
    out = tmp_path / "part.mp4"
    report = tmp_path / "run.json"
    r = run(src, "-m", m, *FAST, "--detector", "off", "--start", "0.5", "--duration", "00:00:01.000",
            "-o", out, "--report", report, "-q")
    assert r.exit_code == 0, r.output
    tints = frame_tints(out)
    assert len(tints) == 24
    assert all(t > 5 for t in tints[:12]) and all(t < -5 for t in tints[12:])  # film frame 24 = 00:00:01 turns blue
    import json

    rep = json.loads(report.read_text())
    assert [(s["first_frame"], s["start_time"]) for s in rep["shots"]] == [(12, 0.5), (24, 1.0)]
    assert rep["span"]["first_frame"] == 12


def test_part_errors(tmp_path, still):
    src = make_clip(tmp_path / "film.mp4", n=24)
    r = run(src, "-r", still, "--start", "5", "-o", tmp_path / "o.mp4")
    assert r.exit_code == 1 and "past the end of the film" in r.stderr and "0.958 s" in r.stderr
    r = run(src, "-r", still, "--start", "soon")
    assert r.exit_code == 2 and "neither seconds" in r.output
    r = run(src, "-r", still, "--duration", "0")
    assert r.exit_code == 2 and "more than 0" in r.output
    r = run(src, "-r", still, "--preview", "--start", "0.5")
    assert r.exit_code == 2 and "--preview" in r.output
    r = run(src, "-r", still, "--start", "0.5", "--jobs", "2")
    assert r.exit_code == 2 and "--jobs" in r.output
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "film_part.mp4").exists()


# -- --preview --------------------------------------------------------------------------------

def test_preview_has_an_excerpt_of_each_shot_in_its_colour(tmp_path):
    src = make_clip(tmp_path / "film.mp4", n=90, audio=True, shots=(0, 30, 60))
    tinted_still(tmp_path / "red.png", "red")
    tinted_still(tmp_path / "blue.png", "blue")
    m = tmp_path / "map.csv"
    m.write_text("start,reference\n0,red.png\n30,blue.png\n60,red.png\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preview:\n  seconds: 0.25\n")
    r = run(src, "-m", m, "-c", cfg, *FAST, "--preview")
    assert r.exit_code == 0, r.output
    out = tmp_path / "film_preview.mp4"
    assert decode_pts(out) == [i * 512 for i in range(18)]  # 3 excerpts of 6 frames, back to back
    tints = frame_tints(out)
    assert all(t > 5 for t in tints[:6]) and all(t < -5 for t in tints[6:12]) and all(t > 5 for t in tints[12:])
    assert video_stream(out) == (64, 48, 0)  # video only
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["excerpt", "at", "(preview)"]
    assert [ln.split()[2:4] for ln in lines[1:]] == [["0", "0"], ["1", "30"], ["2", "60"]]  # shot, first frame
    assert [ln.split()[-1] for ln in lines[1:]] == ["red.png", "blue.png", "red.png"]
    # each excerpt is the film's first frames of its shot
    film, prev = decode_luma(src), decode_luma(out)
    for k, first in enumerate((0, 30, 60)):
        assert abs(film[first].astype(int) - prev[6 * k]).mean() < 1.5
    # side by side too, and an existing preview is not replaced without --overwrite
    r = run(src, "-m", m, "-c", cfg, *FAST, "--preview", "--compare", "-q")
    assert r.exit_code == 0, r.output
    assert video_stream(tmp_path / "film_preview_compare.mp4") == (128, 48, 0)
    r = run(src, "-m", m, "-c", cfg, *FAST, "--preview", "-q")
    assert r.exit_code == 1 and "already exists" in r.stderr


def test_preview_max_shots_spreads_over_the_film(tmp_path, still):
    from vidcolor.pipeline import PlannedShot
    from vidcolor.preview import pick_shots

    plan = [PlannedShot(i, i * 10, i * 10, i / 2, 10, None) for i in range(10)]
    assert [s.index for s in pick_shots(plan, 4)] == [0, 3, 6, 9]
    assert len(pick_shots(plan, 0)) == 10 and len(pick_shots(plan, 20)) == 10
    assert [s.index for s in pick_shots(plan, 1)] == [0]


# -- --compare --------------------------------------------------------------------------------

def test_compare_is_gray_input_beside_colour_with_luma_and_timing_kept(tmp_path, still):
    src = make_clip(tmp_path / "film.mkv", n=20, codec="ffv1", audio=True)
    out = tmp_path / "cmp.mkv"
    r = run(src, "-r", still, *FAST, "--codec", "ffv1", "--compare", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    assert video_stream(out) == (128, 48, 1)
    assert decode_pts(out) == decode_pts(src)
    with av.open(str(out)) as c:
        frames = [[np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy() for p in f.planes]
                  for f in c.decode(video=0)]
    for (y, cb, cr), y_in in zip(frames, decode_luma(src)):
        assert np.array_equal(y[:, :64], y_in) and np.array_equal(y[:, 64:], y_in)  # lossless: exactly the input's
        assert (cb[:, :32] == 128).all() and (cr[:, :32] == 128).all()  # the input's gray on the left
        assert np.abs(cb[:, 32:].astype(int) - 128).mean() + np.abs(cr[:, 32:].astype(int) - 128).mean() > 4


def test_compare_with_a_part_and_default_names(tmp_path, still):
    src = make_clip(tmp_path / "film.mp4", n=48, audio=True)
    r = run(src, "-r", still, *FAST, "--compare", "--start", "1", "-q")
    assert r.exit_code == 0, r.output
    out = tmp_path / "film_part_compare.mp4"
    assert video_stream(out) == (128, 48, 1)
    assert decode_pts(out) == [i * 512 for i in range(24)]
    r = run(src, "-r", still, *FAST, "--compare", "-q")
    assert r.exit_code == 0, r.output
    assert len(decode_pts(tmp_path / "film_color_compare.mp4")) == 48
    assert not (tmp_path / "film_color.mp4").exists()
