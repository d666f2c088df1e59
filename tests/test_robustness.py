"""What archives and farms throw at vidcolor: damaged and truncated files, a
full disk, an output folder that disappears, SIGINT/SIGTERM, hostile inputs.
Each case: a clear one-line message or a repaired result, the input
untouched, no partial output left in place of a good one."""
import errno
import hashlib
import json
import signal
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from procs import leftovers, spawn, wait_for
from synth import decode_luma, decode_pts, make_clip, make_still
from vidcolor import load_config
from vidcolor.cli import main
from vidcolor.errors import InputError, OutputError
from vidcolor.io import decode as decode_mod
from vidcolor.io.decode import LumaFrame, VideoReader
from vidcolor.pipeline import colorize_video



def sha(p) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _cfg(**over):
    return load_config(overrides={"colorizer": "transfer", **over})


def corrupt(src: Path, dst: Path, which) -> list[int]:
    """Copy ``src`` with the payload of video packets ``which`` (in file order) overwritten
    with noise, the container intact. Returns every video packet's pts."""
    spans, pts = [], []
    with av.open(str(src)) as c:
        for p in c.demux(video=0):
            if p.size:
                spans.append((p.pos, p.size))
                pts.append(p.pts)
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(0)
    for i in which:
        pos, size = spans[i]
        data[pos:pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return pts


def _readable_pts(path) -> list[int]:
    """pts of every frame FFmpeg can decode, damaged packets skipped."""
    out = []
    with av.open(str(path)) as c:
        for p in c.demux(video=0):
            try:
                out += [f.pts for f in p.decode()]
            except av.error.FFmpegError:
                pass
    return out


def _times(path) -> list[float]:
    with av.open(str(path)) as c:
        return [round(float(f.time), 3) for f in c.decode(video=0)]


# -- 1. corrupt packets mid-stream -------------------------------------------------------------

@pytest.mark.parametrize("codec,ext,pix_fmt", [("mjpeg", "avi", "yuvj420p"), ("libx264", "mp4", "yuv420p")])
def test_undecodable_frames_repeat_the_previous_good_one(tmp_path, codec, ext, pix_fmt):
    src = make_clip(tmp_path / f"clean.{ext}", n=24, codec=codec, pix_fmt=pix_fmt,
                    options=None if codec == "mjpeg" else {"g": "6"})
    bad = tmp_path / f"damaged.{ext}"
    corrupt(src, bad, [5, 6, 13])
    before = sha(bad)
    out = tmp_path / "out.mkv"
    report = colorize_video(bad, out, reference=make_still(tmp_path / "ref.png"),
                            config=_cfg(**{"encode.codec": "ffv1"}))
    assert sha(bad) == before
    assert report.frames == 24 and report.damaged_frames == 3 and report.damaged == [5, 6, 13]
    assert _times(out) == _times(src)  # every frame at its own time, in order
    luma = decode_luma(out)
    assert np.array_equal(luma[5], luma[4]) and np.array_equal(luma[6], luma[4])
    assert np.array_equal(luma[13], luma[12])
    assert not np.array_equal(luma[7], luma[4])


def test_damaged_frames_are_a_warning_and_a_report_field(tmp_path):
    src = make_clip(tmp_path / "clean.avi", n=24, codec="mjpeg", pix_fmt="yuvj420p")
    bad = tmp_path / "damaged.avi"
    corrupt(src, bad, [3, 10])
    out, rep = tmp_path / "out.avi", tmp_path / "report.json"
    r = run(bad, "-r", make_still(tmp_path / "ref.png"), "-o", out, "--colorizer", "transfer", "--report", rep, "-q")
    assert r.exit_code == 0, r.stderr
    warning = [ln for ln in r.stderr.splitlines() if ln.startswith("vidcolor: warning:")]
    assert len(warning) == 1 and warning[0].startswith(f"vidcolor: warning: {bad}: 2 damaged frames (3, 10)")
    data = json.loads(rep.read_text())
    assert data["damaged_frames"] == 2 and data["damaged"] == [3, 10] and data["truncated"] is None
    assert len(decode_pts(out)) == 24


def test_too_many_damaged_frames_in_a_row_stop_with_one_line(tmp_path):
    src = make_clip(tmp_path / "clean.avi", n=24, codec="mjpeg", pix_fmt="yuvj420p")
    bad = tmp_path / "damaged.avi"
    corrupt(src, bad, range(8, 16))
    with pytest.raises(InputError, match=r"from frame 8 \(00:00:00.333\) on: more than 5 damaged frames in a row"):
        colorize_video(bad, tmp_path / "x.avi", reference=make_still(tmp_path / "ref.png"),
                       config=_cfg(**{"runtime.max_damaged_frames": 5}))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("runtime:\n  max_damaged_frames: 5\n")
    r = run(bad, "-r", tmp_path / "ref.png", "-o", tmp_path / "out.avi", "--colorizer", "transfer", "-c", cfg)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vidcolor: error: {bad}: cannot be decoded from frame 8")
    assert not (tmp_path / "out.avi").exists() and not leftovers(tmp_path)
    # within the limit, the same file is repaired
    report = colorize_video(bad, tmp_path / "y.avi", reference=tmp_path / "ref.png", config=_cfg())
    assert report.damaged == list(range(8, 16)) and report.frames == 24


def test_max_damaged_frames_is_checked():
    with pytest.raises(Exception, match="max_damaged_frames"):
        load_config(overrides={"runtime.max_damaged_frames": -1})


# -- 2. truncated files -------------------------------------------------------------------------

def _cut(tmp_path, ext, opts=None) -> tuple[Path, Path]:
    src = make_clip(tmp_path / f"full.{ext}", n=48, audio=True, container_options=opts or {})
    data = src.read_bytes()
    bad = tmp_path / f"cut.{ext}"
    bad.write_bytes(data[: len(data) * 2 // 3])
    return src, bad


@pytest.mark.parametrize("ext,opts", [("mp4", {"movflags": "+faststart"}), ("mkv", {})])
def test_truncated_file_keeps_everything_decodable_and_says_where_it_ends(tmp_path, ext, opts):
    src, bad = _cut(tmp_path, ext, opts)
    before = sha(bad)
    readable = _readable_pts(bad)
    out, rep = tmp_path / f"out.{ext}", tmp_path / "r.json"
    r = run(bad, "-r", make_still(tmp_path / "ref.png"), "-o", out, "--colorizer", "transfer", "--report", rep)
    assert r.exit_code == 3, r.stderr
    assert sha(bad) == before
    n = len(decode_pts(out))
    assert 20 < len(readable) < 48
    # every frame that could be decoded, at its time (frame-threaded decoding may lose the last
    # one or two frames in the decoder when the data stops mid-packet)
    assert len(readable) - 2 <= n <= len(readable) and decode_pts(out) == decode_pts(src)[:n]
    warning = [ln for ln in r.stderr.splitlines() if ln.startswith("vidcolor: warning:")]
    assert len(warning) == 1 and warning[0].startswith(f"vidcolor: warning: {bad}: is truncated: the file ends at 00:00:0")
    assert f"after frame {n - 1}; {n}" in warning[0] and f"holds the {n} frames" in warning[0]
    t = json.loads(rep.read_text())["truncated"]
    assert t["frames"] == n and abs(t["time"] - n / 24) < 1e-6
    assert not leftovers(tmp_path)


def test_truncated_file_on_the_render_farm_exits_3_as_a_single_run_does(tmp_path):
    """--jobs: the plan finds where the input ends; the job holds the frames before that, says so
    once and exits 3, also when it is resumed from an earlier run's plan."""
    _, bad = _cut(tmp_path, "mkv")
    readable = _readable_pts(bad)
    out, rep = tmp_path / "out.mkv", tmp_path / "r.json"
    args = [bad, "-r", make_still(tmp_path / "ref.png"), "-o", out, "--colorizer", "transfer", "--jobs", "2",
            "--report", rep]
    for attempt in range(2):  # the second: --overwrite resumes the finished job from its manifest
        r = run(*args, *(["--overwrite"] if attempt else []))
        assert r.exit_code == 3, r.stderr
        warning = [ln for ln in r.stderr.splitlines() if ln.startswith("vidcolor: warning:")]
        assert len(warning) == 1 and "is truncated: the file ends at 00:00:0" in warning[0], r.stderr
        n = len(decode_pts(out))
        assert len(readable) - 2 <= n <= len(readable)
        t = json.loads(rep.read_text())["truncated"]
        assert t["frames"] == n
    films = tmp_path / "films"  # in a batch: done as far as the file goes, and the table says where it ends
    films.mkdir()
    (films / bad.name).write_bytes(bad.read_bytes())
    r = run("batch", films, "-o", tmp_path / "batch", "-r", tmp_path / "ref.png", "--colorizer", "transfer")
    assert r.exit_code == 0 and "1 done, 0 failed" in r.stdout, r.stdout + r.stderr
    assert "the input is truncated: the file ends at 00:00:0" in r.stdout


def test_truncated_file_through_plan_render_segment_and_assemble_exits_3(tmp_path):
    """An outside scheduler's job (plan, render-segment, assemble) ends as --jobs does: assemble says where
    the input ends and exits 3; the output holds the readable frames."""
    _, bad = _cut(tmp_path, "mkv")
    readable = _readable_pts(bad)
    out = tmp_path / "out.mkv"
    r = run("plan", bad, "-r", make_still(tmp_path / "ref.png"), "-o", out, "-q")
    assert r.exit_code == 0, r.stderr
    manifest = r.stdout.strip().splitlines()[-1]
    segments = json.loads(Path(manifest).read_text())["segments"]
    for k in range(len(segments)):
        r = run("render-segment", manifest, str(k), "-q")
        assert r.exit_code == 0, r.stderr
    r = run("assemble", manifest, "-q")
    assert r.exit_code == 3, r.stderr
    warning = [ln for ln in r.stderr.splitlines() if ln.startswith("vidcolor: warning:")]
    assert len(warning) == 1 and "is truncated: the file ends at 00:00:0" in warning[0], r.stderr
    n = len(decode_pts(out))
    assert len(readable) - 2 <= n <= len(readable) and f"the {n} frames before that" in warning[0]


def test_truncated_file_with_its_index_lost_is_one_clear_error(tmp_path):
    _, bad = _cut(tmp_path, "mp4")  # the index was at the end: nothing is readable
    r = run(bad, "-r", make_still(tmp_path / "ref.png"), "-o", tmp_path / "out.mp4")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "damaged or truncated" in r.stderr


# -- 3. a full disk, the output folder removed ---------------------------------------------------

class _FullDisk:
    """An output container whose disk fills up after ``room`` muxes."""

    def __init__(self, container, room: int):
        self._c, self._room = container, room

    def mux(self, packets):
        self._room -= 1
        if self._room < 0:
            raise av.error.OSError(errno.ENOSPC, "No space left on device")
        return self._c.mux(packets)

    def __getattr__(self, name):
        return getattr(self._c, name)


def test_no_space_left_is_one_line_and_leaves_the_old_output(tmp_path, clip, still, monkeypatch):
    real = av.open

    def opener(path, mode="r", **kw):
        c = real(path, mode, **kw)
        return _FullDisk(c, 10) if mode == "w" else c

    monkeypatch.setattr(av, "open", opener)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous good output")
    before = sha(clip)
    r = run(clip, "-r", still, "-o", out, "--overwrite", "--colorizer", "transfer", "--batch-size", "2")
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert lines == [f"vidcolor: error: {out}: no space left on the device"], r.stderr
    assert out.read_bytes() == b"previous good output" and sha(clip) == before
    assert not leftovers(tmp_path)


def test_output_folder_removed_mid_run(tmp_path, clip, still):
    import shutil

    folder = tmp_path / "renders"
    folder.mkdir()
    out = folder / "out.mp4"
    before = sha(clip)

    def progress(n):
        if folder.exists():
            shutil.rmtree(folder)

    with pytest.raises(OutputError) as e:
        colorize_video(clip, out, reference=still, config=_cfg(**{"runtime.batch_size": 4}), progress=progress)
    assert str(e.value) == f"{out}: the output folder was removed during the run; nothing was written"
    assert sha(clip) == before and not folder.exists()


# -- 4. SIGINT / SIGTERM -------------------------------------------------------------------------

@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_a_run_and_keeps_the_old_output(tmp_path, sig, code):
    src = make_clip(tmp_path / "long.mp4", n=1500, w=96, h=64)
    still = make_still(tmp_path / "ref.png")
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous good output")
    before = sha(src)
    p = spawn(src, "-r", still, "-o", out, "--overwrite", "--colorizer", "transfer", "-q")
    wait_for(lambda: leftovers(tmp_path) and any(f.stat().st_size > 0 for f in leftovers(tmp_path)), p)
    t = time.monotonic()
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert time.monotonic() - t < 5
    assert p.returncode == code, err
    assert err.strip().splitlines()[-1] == "vidcolor: interrupted; no output was written"
    assert out.read_bytes() == b"previous good output" and sha(src) == before
    assert not leftovers(tmp_path)


def test_sigterm_keeps_finished_farm_segments_and_the_same_command_resumes(tmp_path):
    shots = list(range(0, 240, 12))  # a shot every 0.5 s: 20 segments
    src = make_clip(tmp_path / "film.mp4", n=240, w=64, h=48, audio=True, shots=shots)
    still = make_still(tmp_path / "ref.png")
    cfg = tmp_path / "farm.yaml"
    cfg.write_text("colorizer: transfer\nfarm:\n  segment_seconds: 0.4\n")
    out = tmp_path / "out.mp4"
    before = sha(src)
    argv = (src, "-r", still, "-o", out, "-c", cfg, "--jobs", "2", "-q")
    job = tmp_path / "out.mp4.vidcolor-job"
    journal = job / "journal.jsonl"
    p = spawn(*argv)
    wait_for(lambda: journal.exists() and journal.read_text().count("\n") >= 1, p, timeout=120)
    t = time.monotonic()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert time.monotonic() - t < 10, err
    assert p.returncode == 143, err
    assert "interrupted; no output was written; finished segments are kept in" in err.splitlines()[-1]
    assert not out.exists() and sha(src) == before
    done = [json.loads(ln) for ln in journal.read_text().splitlines()]
    assert done and all((job / "segments" / e["file"]).exists() for e in done)
    assert len(done) < 20
    assert not leftovers(tmp_path)  # the segments being rendered removed their partial files
    p = spawn(*argv[:-1])
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "from an earlier run" in err.splitlines()[-1]
    assert decode_pts(out) == decode_pts(src) and not job.exists()


# -- 5. hostile inputs ---------------------------------------------------------------------------

def _huge_png(path: Path, w: int = 16000, h: int = 16000) -> Path:
    """A black 1-bit PNG of w x h pixels: a few kB on disk, gigabytes decoded."""
    import struct

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = b"\x00" * (1 + (w + 7) // 8)
    body = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("role", ["reference", "photo"])
def test_a_16000x16000_image_is_refused_unread(tmp_path, clip, still, role):
    huge = _huge_png(tmp_path / "huge.png")
    rss = _peak_rss_mb()
    if role == "reference":
        r = run(clip, "-r", huge, "-o", tmp_path / "out.mp4", "--colorizer", "transfer")
    else:
        r = run(huge, "-r", still, "-o", tmp_path / "out.png", "--colorizer", "transfer")
    assert r.exit_code == 1
    assert r.stderr == f"vidcolor: error: {huge}: image is too large (16000x16000; at most 40 megapixels)\n"
    assert _peak_rss_mb() - rss < 200  # it was never decoded


def test_frames_over_the_pixel_limit_are_refused_before_decoding(tmp_path, clip, monkeypatch):
    monkeypatch.setattr(decode_mod, "MAX_PIXELS", 1000)
    decoded = []
    real = decode_mod.normalise
    monkeypatch.setattr(decode_mod, "normalise", lambda f: decoded.append(f) or real(f))
    with pytest.raises(InputError, match=r"frames are too large \(64x48; at most 0 megapixels\)"):
        VideoReader(clip)
    assert not decoded


@pytest.mark.parametrize("size", [(1, 1), (8, 16)])
def test_tiny_video_is_refused_with_the_minimum(tmp_path, still, size):
    w, h = size
    src = make_clip(tmp_path / "tiny.mkv", n=4, w=w, h=h, codec="ffv1", pix_fmt="yuv444p")
    r = run(src, "-r", still, "-o", tmp_path / "out.mkv")
    assert r.exit_code == 1
    assert r.stderr == f"vidcolor: error: {src}: frames are too small ({w}x{h}; the minimum is 16x16)\n"


def test_smallest_video_is_colourised(tmp_path, still):
    src = make_clip(tmp_path / "small.mp4", n=6, w=16, h=16)
    for colorizer in ("transfer", "exemplar"):
        report = colorize_video(src, tmp_path / f"{colorizer}.mp4", reference=still,
                                config=load_config(overrides={"colorizer": colorizer}))
        assert report.frames == 6 and decode_pts(tmp_path / f"{colorizer}.mp4") == decode_pts(src)


def test_zero_frame_video_is_one_clear_line(tmp_path, still):
    src = tmp_path / "empty.mkv"  # a video stream with no frames, and some sound
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, i * 1024
            c.mux(a.encode(f))
        c.mux(a.encode())
    assert src.stat().st_size > 0
    r = run(src, "-r", still, "-o", tmp_path / "out.mp4")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"vidcolor: error: {src}: ") and ("no decodable frames" in r.stderr
                                                                 or "not a readable video" in r.stderr)


def test_absurd_frame_rates_keep_their_timestamps(tmp_path, still):
    from fractions import Fraction

    fast = make_clip(tmp_path / "fast.mp4", n=6, fps=100000, options={"bf": "0"})  # a 100000 fps rate tag
    fine = make_clip(tmp_path / "fine.mp4", n=6, time_base=Fraction(1, 1000000))  # microsecond ticks
    with VideoReader(fast) as r:
        assert r.info.rate is None  # not believed
    for src in (fast, fine):
        out = tmp_path / f"out_{src.name}"
        report = colorize_video(src, out, reference=still, config=_cfg())
        assert report.frames == 6 and decode_pts(out) == decode_pts(src)


@pytest.mark.parametrize("text", [b"start,reference\n" + b"1" * 200_000 + b",x.png\n",
                                  b"start,reference\n\"0,ref.png\n", b"\xff\xfe\x00garbage",
                                  b"start,reference\n" + b"9" * 5000 + b":00:00,\n"])
def test_malformed_maps_are_one_line(tmp_path, clip, still, text):
    m = tmp_path / "map.csv"
    m.write_bytes(text)
    r = run(clip, "-m", m, "-o", tmp_path / "out.mp4", "--colorizer", "transfer")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith(f"vidcolor: error: {m}: ")


@pytest.mark.parametrize("text", ["a: " + "[" * 50_000, "runtime: [1, 2", "\x00\x01", "runtime:\n  batch_size: 1e400\n",
                                  "&a [*a]", "runtime: &r {threads: *r}"])
def test_malformed_configs_are_one_line(tmp_path, clip, still, text):
    c = tmp_path / "c.yaml"
    c.write_text(text)
    r = run(clip, "-r", still, "-c", c, "-o", tmp_path / "out.mp4")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith(f"vidcolor: error: {c}: ")


def test_reader_items_are_lumaframes_in_pts_order(tmp_path):
    """The repaired stream of a damaged B-frame file is in strictly increasing pts order."""
    src = make_clip(tmp_path / "clean.mp4", n=24, options={"g": "6"})
    bad = tmp_path / "bad.mp4"
    corrupt(src, bad, [2, 5, 9])
    with VideoReader(bad) as r:
        frames = [f for f in r.items() if isinstance(f, LumaFrame)]
    pts = [f.pts for f in frames]
    assert pts == sorted(set(pts)) == decode_pts(src)
    assert [f.index for f in frames] == list(range(24)) and r.truncated is None
