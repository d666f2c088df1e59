"""The render farm: a film cut at shot boundaries, rendered in pieces, joined,
equal to a single-machine run; retries, resume, corruption, other jobs."""
import json
import sys

import av
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from synth import decode_pts, make_clip, make_still, packet_bytes
from vidcolor import ConfigError, OutputError, load_config
from vidcolor.cli import main
from vidcolor.farm import Manifest, SegmentError, group_segments, job_dir, plan_job, read_journal, run_job
from vidcolor.farm.segment import FAULT_ENV
from vidcolor.io.decode import LumaFrame, VideoReader
from vidcolor.pipeline import PlannedShot, colorize_video

SHOTS = (0, 8, 16, 32)  # 8, 8, 16 and 16 frames at 24 fps: three segments of about 0.7 s


def _cfg(**over):
    return load_config(overrides={"colorizer": "transfer", "farm.segment_seconds": 0.7, **over})


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """A 4-shot 112x80 clip with sound, its still, and the single-machine output."""
    d = tmp_path_factory.mktemp("film")
    src = make_clip(d / "film.mp4", n=48, w=112, h=80, audio=True, shots=SHOTS)
    still = make_still(d / "ref.png")
    single = d / "single.mp4"
    report = colorize_video(src, single, reference=still, config=_cfg())
    assert [s["first_frame"] for s in report.shots] == list(SHOTS)
    return src, still, single


def _yuv(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv444p").astype(np.float64) for f in c.decode(video=0)]


def _assert_same_film(out, single, src):
    """Frame for frame within encoder noise, same pts, same audio packets."""
    assert decode_pts(out) == decode_pts(single) == decode_pts(src)
    audio = packet_bytes(src)
    assert audio and packet_bytes(out) == audio
    a, b = _yuv(single), _yuv(out)
    assert len(a) == len(b) == 48
    psnr = [10 * np.log10(255 ** 2 / max(np.mean((x - y) ** 2), 1e-10)) for x, y in zip(a, b)]
    assert min(psnr) >= 45, np.round(psnr, 1)


def test_plan_is_the_single_run_cut_at_shot_boundaries(film, tmp_path):
    src, still, _ = film
    report = colorize_video(src, tmp_path / "x.mp4", reference=still, config=_cfg())
    m, resumed = plan_job(src, tmp_path / "out.mp4", reference=still, config=_cfg())
    assert not resumed and m.path == job_dir(tmp_path / "out.mp4") / "manifest.json"
    assert [(s.first_frame, s.frames, s.reference) for s in m.shots] == \
        [(s["first_frame"], s["frames"], s["reference"]) for s in report.shots]
    assert [(s.first_frame, s.frames, s.shots) for s in m.segments] == [(0, 16, [0, 1]), (16, 16, [2]), (32, 16, [3])]
    assert [s.first_pts for s in m.segments] == [decode_pts(src)[i] for i in (0, 16, 32)]
    saved = json.loads(m.path.read_text())
    assert saved["config"] == _cfg().to_dict() and saved["checksum"]["size"] == src.stat().st_size
    assert plan_job(src, tmp_path / "out.mp4", reference=still, config=_cfg())[1]  # the same job, found again


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 200), min_size=1, max_size=60), st.floats(0.5, 20))
def test_segments_never_cut_inside_a_shot(lengths, seconds):
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    shots = [PlannedShot(i, a, a * 10, a / 24, n, None) for i, (a, n) in enumerate(zip(starts, lengths))]
    segs = group_segments(shots, seconds, rate=24)
    assert [i for s in segs for i in s.shots] == list(range(len(shots)))  # every shot once, in order, whole
    assert segs[0].first_frame == 0 and sum(s.frames for s in segs) == sum(lengths)
    for s, t in zip(segs, segs[1:]):
        assert t.first_frame == s.first_frame + s.frames and t.first_frame in starts
    for s in segs:
        assert len(s.shots) == 1 or s.seconds < 2 * seconds  # nearest boundary to the target; a long shot alone


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_reader_starts_at_a_frame(tmp_path, suffix):
    src = make_clip(tmp_path / f"gop{suffix}", n=40, options={"x264-params": "keyint=7:min-keyint=7"})
    with VideoReader(src) as r:
        full = [i for i in r.items() if isinstance(i, LumaFrame)]
    for k in (0, 5, 7, 23, 39):
        with VideoReader(src, start=(k, full[k].pts)) as r:
            part = list(r.items())
        assert [f.index for f in part] == list(range(k, 40))
        assert [f.pts for f in part] == [f.pts for f in full[k:]]
        assert all(np.array_equal(a.luma, b.luma) for a, b in zip(part, full[k:]))


def test_local_processes_equal_the_single_run(film, tmp_path):
    src, still, single = film
    out = tmp_path / "farm.mp4"
    r = run_job(src, out, reference=still, config=_cfg(), jobs=2)
    assert r.segments == 3 and sorted(r.rendered) == [0, 1, 2] and not r.skipped
    assert not job_dir(out).exists()  # cleaned up once the output is in place
    _assert_same_film(out, single, src)


def test_ray_cluster_equals_the_single_run(film, tmp_path):
    ray = pytest.importorskip("ray")
    src, still, single = film
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray.mp4"
        r = run_job(src, out, reference=still, config=_cfg(), ray="local")
        assert r.segments == 3 and sorted(r.rendered) == [0, 1, 2]
    finally:
        ray.shutdown()
    _assert_same_film(out, single, src)


def test_without_ray_the_error_says_what_to_install(film, tmp_path, monkeypatch):
    src, still, _ = film
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'vidcolor\[ray\]'"):
        run_job(src, tmp_path / "out.mp4", reference=still, config=_cfg(), ray="auto")


def test_a_failing_segment_is_retried(film, tmp_path, monkeypatch):
    src, still, single = film
    monkeypatch.setenv(FAULT_ENV, "1")  # segment 1 raises on its first attempt, in the worker process
    out = tmp_path / "retried.mp4"
    r = run_job(src, out, reference=still, config=_cfg(), jobs=2)
    assert r.retries == 1 and sorted(r.rendered) == [0, 1, 2]
    _assert_same_film(out, single, src)


def _interrupt(src, still, out, monkeypatch, failing: int = 2):
    """A job stopped by segment ``failing`` failing on every attempt, after the ones before it."""
    monkeypatch.setenv(FAULT_ENV, f"{failing}:99")
    with pytest.raises(SegmentError, match=rf"segment {failing} \(frames 32\.\.47.*failed 2 time\(s\).*injected fault"):
        run_job(src, out, reference=still, config=_cfg(**{"farm.retries": 1}), jobs=1)
    monkeypatch.delenv(FAULT_ENV)
    assert sorted(read_journal(job_dir(out))) == [0, 1] and not out.exists()


def test_interrupted_job_resumes_with_only_the_rest(film, tmp_path, monkeypatch):
    src, still, single = film
    out = tmp_path / "resumed.mp4"
    _interrupt(src, still, out, monkeypatch)
    r = run_job(src, out, reference=still, config=_cfg(), jobs=1)
    assert r.resumed and r.skipped == [0, 1] and r.rendered == [2] and not r.corrupt
    _assert_same_film(out, single, src)


def test_corrupted_segment_is_rendered_again(film, tmp_path, monkeypatch):
    src, still, single = film
    out = tmp_path / "repaired.mp4"
    _interrupt(src, still, out, monkeypatch)
    m = Manifest.load(job_dir(out))
    data = bytearray(m.segment_path(1).read_bytes())
    data[len(data) // 2] ^= 0xFF
    m.segment_path(1).write_bytes(bytes(data))
    r = run_job(src, out, reference=still, config=_cfg(), jobs=1)
    assert r.skipped == [0] and r.corrupt == [1] and r.rendered == [1, 2]
    _assert_same_film(out, single, src)


def test_another_job_is_refused_unless_overwrite(film, tmp_path):
    src, still, _ = film
    out = tmp_path / "out.mp4"
    plan_job(src, out, reference=still, config=_cfg())
    with pytest.raises(OutputError, match=r"holds another job \(encode.crf: None -> 20\); pass --overwrite"):
        plan_job(src, out, reference=still, config=_cfg(**{"encode.crf": 20}))
    assert plan_job(src, out, reference=still, config=_cfg(**{"farm.retries": 5}))[1]  # retries may change
    m, resumed = plan_job(src, out, reference=still, config=_cfg(**{"encode.crf": 20}), overwrite=True)
    assert not resumed and m.config["encode"]["crf"] == 20


def test_matroska_with_subtitles(tmp_path):
    src = make_clip(tmp_path / "subs.mkv", n=24, audio=True, subtitles=True, shots=(0, 12))
    still = make_still(tmp_path / "ref.png")
    single, out = tmp_path / "single.mkv", tmp_path / "farm.mkv"
    colorize_video(src, single, reference=still, config=_cfg())
    r = run_job(src, out, reference=still, config=_cfg(**{"farm.segment_seconds": 0.5}), jobs=1)
    assert r.segments == 2
    assert decode_pts(out) == decode_pts(single) == decode_pts(src)
    assert packet_bytes(out) == packet_bytes(src) and packet_bytes(out, "subtitles") == packet_bytes(src, "subtitles")


def test_cli_plan_render_segment_assemble(film, tmp_path):
    src, still, single = film
    out = tmp_path / "cli.mp4"
    runner = CliRunner()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("colorizer: transfer\nfarm:\n  segment_seconds: 0.7\n")
    r = runner.invoke(main, ["plan", str(src), "-r", str(still), "-o", str(out), "-c", str(cfg), "-q"])
    assert r.exit_code == 0, r.output
    manifest = r.output.strip()
    r = runner.invoke(main, ["assemble", manifest, "-q"])
    assert r.exit_code == 1 and "3 segment(s) not rendered" in r.output
    for k in (2, 0, 1):  # any order, as a scheduler runs them
        r = runner.invoke(main, ["render-segment", manifest, str(k), "-q"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["segment"] == k
    r = runner.invoke(main, ["assemble", manifest, "-q"])
    assert r.exit_code == 0, r.output
    _assert_same_film(out, single, src)


def test_cli_jobs_and_batch(tmp_path):
    films = tmp_path / "films"
    films.mkdir()
    make_clip(films / "a.mp4", n=12, audio=True, shots=(0, 6))
    make_clip(films / "b.mkv", n=10)
    (films / "broken.mp4").write_bytes(b"not a film")
    still = make_still(tmp_path / "ref.png")
    runner = CliRunner()
    r = runner.invoke(main, [str(films / "a.mp4"), "-r", str(still), "--colorizer", "transfer", "--jobs", "2",
                             "-o", str(tmp_path / "a_color.mp4")])
    assert r.exit_code == 0, r.output
    assert "1 segment(s): 1 rendered" in r.output
    args = ["batch", str(films), "-o", str(tmp_path / "out"), "-r", str(still), "--colorizer", "transfer"]
    r = runner.invoke(main, args)
    assert r.exit_code == 1
    assert "2 done, 1 failed, 0 skipped" in r.output and "broken.mp4  failed" in r.output
    assert len(decode_pts(tmp_path / "out" / "b_color.mkv")) == 10
    r = runner.invoke(main, args)
    assert "0 done, 1 failed, 2 skipped" in r.output
