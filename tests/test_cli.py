"""The command-line contract, run in-process with click's CliRunner."""
import hashlib
import subprocess
import sys

import av
import numpy as np
import pytest
from click.testing import CliRunner

from synth import decode_pts, make_clip, make_still
from vidcolor import InputError
from vidcolor.cli import main


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env or {"VIDCOLOR_DEBUG": ""})


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reference_still(clip, still, tmp_path):
    out = tmp_path / "out.mp4"
    before = sha(clip)
    r = run(clip, "--reference", still, "-o", out)
    assert r.exit_code == 0, r.output
    assert len(decode_pts(out)) == 24
    assert sha(clip) == before  # the input is never modified
    assert "wrote" in r.stderr


def test_reference_folder_and_map(clip, still, tmp_path):
    folder = tmp_path / "stills"
    folder.mkdir()
    make_still(folder / "a.png")
    r = run(clip, "--reference", folder, "-o", tmp_path / "a.mp4", "-q")
    assert r.exit_code == 0, r.output
    m = tmp_path / "map.csv"
    m.write_text(f"start,reference\n0,{still.name}\n12,stills/a.png\n")
    r = run(clip, "--reference-map", m, "-o", tmp_path / "b.mp4", "-q")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""  # -q: nothing but errors


def test_default_output_name_and_overwrite(clip, still):
    target = clip.with_name("clip_color.mp4")
    r = run(clip, "-r", still, "-q")
    assert r.exit_code == 0 and target.exists()
    target.write_bytes(b"keep me")
    r = run(clip, "-r", still, "-q")
    assert r.exit_code == 1 and "already exists (pass --overwrite" in r.stderr
    assert target.read_bytes() == b"keep me"
    r = run(clip, "-r", still, "-q", "--overwrite", "--crf", "20", "--preset", "veryfast", "--batch-size", "3")
    assert r.exit_code == 0 and len(decode_pts(target)) == 24


def test_still_image(tmp_path, still):
    photo = make_still(tmp_path / "photo.jpg", gray=True)
    r = run(photo, "--reference", still, "-o", tmp_path / "out.png", "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out.png").exists()


def test_no_reference_without_automatic_weights_is_one_clear_error(clip, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"auto:\n  weights: {tmp_path / 'missing.safetensors'}\n")
    r = run(clip, "-o", tmp_path / "out.mp4", "-c", cfg)
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "missing.safetensors" in r.stderr and "weights not found" in r.stderr
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("content", [None, b"not safetensors"], ids=["missing", "not-weights"])
def test_bad_matcher_weights_are_one_clear_error(clip, still, tmp_path, content):
    weights = tmp_path / "m.safetensors"
    if content is not None:
        weights.write_bytes(content)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"exemplar:\n  matcher: {weights}\n")
    r = run(clip, "-r", still, "-o", tmp_path / "out.mp4", "-c", cfg)
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "m.safetensors" in r.stderr and "matcher weights" in r.stderr
    assert "Traceback" not in r.output + r.stderr and not (tmp_path / "out.mp4").exists()


def test_train_matcher_with_a_bad_config_is_one_clear_error(tmp_path):
    (tmp_path / "configs").mkdir()
    cfg = tmp_path / "configs" / "train-matcher.yaml"
    cfg.write_text("kinds: {other: 1.0}\n")  # unrelated pairs have no colour to match
    r = run("train", "matcher", "-c", cfg)
    assert r.exit_code != 0 and r.stderr.count("\n") == 1
    assert "train-matcher.yaml" in r.stderr and "kinds must weigh some of keyframe, motion, view" in r.stderr


def test_grayscale_reference_warns(clip, tmp_path):
    gray = make_still(tmp_path / "gray.png", gray=True)
    r = run(clip, "-r", gray, "-o", tmp_path / "out.mp4", "-q")
    assert r.exit_code == 0
    assert "warning" in r.stderr and "looks black and white" in r.stderr and str(gray) in r.stderr


def _truncated(tmp_path, index_first=True):
    """An mp4 cut at two thirds: with its index first (frames known), or last (index lost)."""
    opts = {"movflags": "+faststart"} if index_first else {}
    src = make_clip(tmp_path / "full.mp4", n=48, w=64, h=48, container_options=opts)
    data = src.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) * 2 // 3])
    return bad


def _audio_only(tmp_path):
    p = tmp_path / "sound.m4a"
    with av.open(str(p), "w") as c:
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, i * 1024
            c.mux(a.encode(f))
        c.mux(a.encode())
    return p


def _text(tmp_path, name="notes.mp4"):
    p = tmp_path / name
    p.write_text("this is not a video\n" * 50)
    return p


def _bad_case(name, tmp_path, clip, still):
    """(argv, text the error line must contain, the file it must name)."""
    out = tmp_path / "out.mp4"
    if name == "missing input":
        return [tmp_path / "nope.mp4", "-r", still, "-o", out], "file not found", tmp_path / "nope.mp4"
    if name == "not a video":
        p = _text(tmp_path)
        return [p, "-r", still, "-o", out], "not a readable video", p
    if name == "no video stream":
        p = _audio_only(tmp_path)
        return [p, "-r", still, "-o", out], "has no video stream", p
    if name == "truncated, index lost":
        p = _truncated(tmp_path, index_first=False)
        return [p, "-r", still, "-o", out], "damaged or truncated", p
    if name == "reference not an image":
        p = _text(tmp_path, "ref.png")
        return [clip, "-r", p, "-o", out], "not a readable image", p
    if name == "reference missing":
        return [clip, "-r", tmp_path / "r.png", "-o", out], "not found", tmp_path / "r.png"
    if name == "output folder missing":
        o = tmp_path / "no" / "such" / "out.mp4"
        return [clip, "-r", still, "-o", o], "output folder does not exist", o.parent
    if name == "bad map":
        m = tmp_path / "map.csv"
        m.write_text("start,reference\nsoon,ref.png\n")
        return [clip, "-m", m, "-o", out], "line 2", m
    if name == "bad config":
        c = tmp_path / "c.yaml"
        c.write_text("encode:\n  crf: best\n")
        return [clip, "-r", still, "-c", c, "-o", out], "encode.crf must be an integer", c
    if name == "unknown codec":
        return [clip, "-r", still, "--codec", "nosuchcodec", "-o", out], "unknown video encoder", None
    if name == "codec the container can't hold":
        o = tmp_path / "out.webm"
        return [clip, "-r", still, "-o", o], "cannot hold libx264 video", o
    raise AssertionError(name)


BAD = ["missing input", "not a video", "no video stream", "truncated, index lost", "reference not an image",
       "reference missing", "output folder missing", "bad map", "bad config", "unknown codec",
       "codec the container can't hold"]


@pytest.mark.parametrize("name", BAD)
def test_bad_input_gives_one_clear_line(name, tmp_path, clip, still):
    argv, message, culprit = _bad_case(name, tmp_path, clip, still)
    before = {p: sha(p) for p in tmp_path.rglob("*") if p.is_file()}
    r = run(*argv)
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcolor: error: "), r.stderr
    assert message in lines[0]
    if culprit is not None:
        assert str(culprit) in lines[0]
    assert "Traceback" not in r.output
    after = {p: sha(p) for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing changed, no partial output left


def test_unwritable_output_folder(tmp_path, clip, still, monkeypatch):
    # the tests run as root, for whom chmod does not bite: make the check itself say no
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path / "locked") else real(p, mode))
    (tmp_path / "locked").mkdir()
    r = run(clip, "-r", still, "-o", tmp_path / "locked" / "out.mp4")
    assert r.exit_code == 1 and "output folder is not writable" in r.stderr and str(tmp_path / "locked") in r.stderr


def test_failure_mid_run_leaves_no_partial_output_and_keeps_old_output(tmp_path, clip, still, monkeypatch):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous good output")
    from vidcolor.models import transfer

    calls = {"n": 0}
    original = transfer.TransferColorizer.colorize

    def flaky(self, L):
        calls["n"] += 1
        if calls["n"] == 2:
            raise MemoryError
        return original(self, L)

    monkeypatch.setattr(transfer.TransferColorizer, "colorize", flaky)
    r = run(clip, "-r", still, "-o", out, "--overwrite", "--batch-size", "4", "--colorizer", "transfer")
    assert r.exit_code == 1 and "out of memory" in r.stderr
    assert out.read_bytes() == b"previous good output"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.mp4", "clip.mp4", "ref.png"])


def test_debug_shows_the_exception(tmp_path, still):
    r = CliRunner().invoke(main, [str(tmp_path / "nope.mp4"), "-r", str(still)], env={"VIDCOLOR_DEBUG": "1"})
    assert isinstance(r.exception, InputError)


def test_reference_and_map_together_are_refused(clip, still, tmp_path):
    m = tmp_path / "m.csv"
    m.write_text(f"start,reference\n0,{still}\n")
    r = run(clip, "-r", still, "-m", m)
    assert r.exit_code == 1 and "not both" in r.stderr


def test_python_dash_m(tmp_path):
    p = subprocess.run([sys.executable, "-m", "vidcolor", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and "vidcolor" in p.stdout


@pytest.mark.parametrize("detector", ["auto", "transnet"])
def test_fresh_process_runs_the_detectors(tmp_path, cut_clip, detector):
    # in-process tests import the detector modules themselves; a user's first run does not
    p = subprocess.run([sys.executable, "-m", "vidcolor", "shots", str(cut_clip), "--format", "csv", "-q",
                        "--detector", detector], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["start,reference", "0,", "30,", "55,", "95,"]


@pytest.fixture
def cut_clip(tmp_path):
    """Four shots, hard cuts at 30, 55, 95."""
    from synth_shots import cuts, write_video

    frames, _ = cuts()
    return write_video(tmp_path / "cuts.mp4", frames)


@pytest.mark.parametrize("detector", ["histogram", "transnet"])
def test_shots_command(cut_clip, detector):
    import csv
    import io
    import json

    r = run("shots", cut_clip, "--detector", detector, "--format", "json")
    assert r.exit_code == 0, r.output
    shots = json.loads(r.stdout)
    assert [s["first_frame"] for s in shots] == [0, 30, 55, 95]
    assert [s["frames"] for s in shots] == [30, 25, 40, 30]
    assert shots[1]["timecode"] == "00:00:01.250" and shots[1]["transition"] == "cut"
    r = run("shots", cut_clip, "--detector", detector, "--format", "csv")
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows == [["start", "reference"], ["0", ""], ["30", ""], ["55", ""], ["95", ""]]
    r = run("shots", cut_clip, "--detector", detector)
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["index", "first", "frame"] and len(lines) == 5
    assert "00:00:02.292" in lines[3]


def test_detected_shots_each_get_their_reference_from_a_map_template(cut_clip, tmp_path, still):
    """The CSV of `vidcolor shots`, filled in, drives a colour run: one entry per detected shot."""
    import json

    import cv2
    from synth_shots import cuts

    frames, _ = cuts()  # each shot's still: a frame of it, tinted (a still that does not match gets auto)
    stills = []
    for k, first in enumerate((0, 30, 55, 95)):
        g = frames[first + 5].astype(np.float32)
        tinted = np.dstack([g * 0.9, g * 0.8 + 30, g * 0.6]).clip(0, 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"s{k}.png"), tinted)
        stills.append(tmp_path / f"s{k}.png")
    r = run("shots", cut_clip, "--detector", "histogram", "--format", "csv")
    lines = r.stdout.strip().splitlines()
    filled = [lines[0]] + [f"{line}{stills[k].name}" for k, line in enumerate(lines[1:])]
    (tmp_path / "map.csv").write_text("\n".join(filled) + "\n")
    rep = tmp_path / "report.json"
    r = run(cut_clip, "-m", tmp_path / "map.csv", "-o", tmp_path / "out.mp4", "--detector", "histogram",
            "--report", rep, "--explain", "-q")
    assert r.exit_code == 0, r.output
    report = json.loads(rep.read_text())
    assert [(s["first_frame"], s["frames"], s["reference"].split("/")[-1]) for s in report["shots"]] == [
        (0, 30, "s0.png"), (30, 25, "s1.png"), (55, 40, "s2.png"), (95, 30, "s3.png")]
    assert report["frames"] == 125 and {"decode (waiting)", "shots", "colorize"} <= set(report["stages"])
    assert "s2.png" in r.stdout and "colorizer" in r.stdout.splitlines()[0]  # --explain


def test_map_rows_split_shots_the_detector_missed(clip, tmp_path):
    """A map row starting mid-shot starts a shot there, whatever the detector says."""
    import json

    a, b = make_still(tmp_path / "a.png"), make_still(tmp_path / "b.png", shot=2)
    (tmp_path / "m.csv").write_text("start,reference\n0,a.png\n10,b.png\n")
    r = run(clip, "-m", tmp_path / "m.csv", "-o", tmp_path / "o.mp4", "--report", tmp_path / "r.json", "-q")
    assert r.exit_code == 0, r.output
    shots = json.loads((tmp_path / "r.json").read_text())["shots"]
    assert [(s["first_frame"], s["reference"].split("/")[-1]) for s in shots] == [(0, "a.png"), (10, "b.png")]


def test_unknown_detector(clip, still, tmp_path):
    r = run(clip, "-r", still, "--detector", "psychic", "-o", tmp_path / "o.mp4")
    assert r.exit_code == 1 and "unknown shot detector 'psychic'" in r.stderr and "histogram" in r.stderr
