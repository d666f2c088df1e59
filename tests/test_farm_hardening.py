"""The render farm under a hostile user and an unlucky machine: a SIGKILLed
driver leaves no worker behind, one driver a job (a lock, stale once its
owner is gone), and a job folder's manifest and journal read as untrusted
input."""
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from raycluster import alive, cmdline, descendants, start_time
from synth import make_clip, make_still
from vidcolor import load_config
from vidcolor.cli import main
from vidcolor.farm import Manifest, job_dir, plan_job, read_journal, run_job
from vidcolor.farm.lock import JobLock, JobLocked
from vidcolor.farm.segment import STALL_ENV

ROOT = Path(__file__).resolve().parent.parent
SHOTS = (0, 8, 16, 32)


def _cfg(**over):
    return load_config(overrides={"colorizer": "transfer", "farm.segment_seconds": 0.7, **over})


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    d = tmp_path_factory.mktemp("hard")
    src = make_clip(d / "film.mp4", n=48, w=112, h=80, audio=True, shots=SHOTS)
    still = make_still(d / "ref.png")
    cfg = d / "c.yaml"
    cfg.write_text("colorizer: transfer\nfarm:\n  segment_seconds: 0.7\n")
    return src, still, cfg


def _env(**extra) -> dict:
    path = os.pathsep.join(filter(None, [os.fspath(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "VIDCOLOR_DEBUG": "", **extra}


def _wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _holder(folder: Path) -> subprocess.Popen:
    """Another process holding the job lock of ``folder`` until killed."""
    code = ("import sys; from vidcolor.farm.lock import JobLock; JobLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); sys.stdin.read()")
    p = subprocess.Popen([sys.executable, "-c", code, os.fspath(folder)], env=_env(), stdout=subprocess.PIPE,
                         stdin=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


# -- a killed driver --------------------------------------------------------------------------

def test_sigkill_of_a_jobs_driver_leaves_no_process_and_a_second_driver_stops(film, tmp_path):
    src, still, cfg = film
    out = tmp_path / "out.mp4"
    args = [str(src), "-r", str(still), "-c", str(cfg), "--jobs", "2", "-o", str(out), "-q"]
    # every segment's first attempt waits 60 s before rendering: the workers are busy when the driver dies
    driver = subprocess.Popen([sys.executable, "-m", "vidcolor", *args], env=_env(**{STALL_ENV: "60"}),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kids: list[tuple[int, int]] = []
    try:
        workers = _wait(lambda: [p for p in descendants(driver.pid) if "multiprocessing" in cmdline(p)]
                        if len([p for p in descendants(driver.pid) if "multiprocessing" in cmdline(p)]) >= 2
                        and (job_dir(out) / "manifest.json").exists() else None, 180, "two workers")
        assert len(workers) >= 2
        # a second driver on the same output (even with --overwrite) stops at once, naming the holder
        for extra in ([], ["--overwrite"]):
            r = CliRunner().invoke(main, [*args, *extra], env={"VIDCOLOR_DEBUG": ""})
            assert r.exit_code == 1, r.output
            lines = r.output.strip().splitlines()
            assert len(lines) == 1 and "lock: the job is in use by vidcolor driver pid " \
                f"{driver.pid} on " in lines[0], r.output
        assert (job_dir(out) / "manifest.json").exists() and not out.exists()  # the live job is untouched
        time.sleep(2)  # the workers are inside their segments now
        kids = [(p, start_time(p)) for p in descendants(driver.pid)]
        assert any("resource_tracker" in cmdline(p) for p, _ in kids)  # the pool's resource tracker too
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        # a worker is sent SIGTERM at once and exits hard ORPHAN_GRACE (5 s) later at most; 30 s leaves a
        # loaded machine room to schedule them (10 s failed once, the suite beside two vidcolor runs and
        # a benchmark on two cores: both workers and the pool's resource tracker still there; not seen
        # again, four busy loops beside it included)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(alive(p, t) for p, t in kids):
            time.sleep(0.2)
        left = [(p, cmdline(p)[:80]) for p, t in kids if alive(p, t)]
        assert not left, f"still running 30 s after the driver's SIGKILL: {left}"
    finally:
        for p, t in [(driver.pid, None), *kids]:
            if alive(p, t):
                os.kill(p, signal.SIGKILL)
        driver.wait()
    lock = json.loads((job_dir(out) / "lock").read_text())
    assert lock["pid"] == driver.pid  # left behind by the dead driver: stale
    # the rerun takes the stale lock, finds the job and finishes it
    r = run_job(src, out, reference=still, config=_cfg(), jobs=1)
    assert r.resumed and sorted(r.rendered + r.skipped) == [0, 1, 2]
    assert out.exists() and not job_dir(out).exists()


# -- the job lock -----------------------------------------------------------------------------

def test_lock_held_by_a_live_process_then_stale_once_it_is_killed(film, tmp_path):
    src, still, _ = film
    out = tmp_path / "out.mp4"
    folder = job_dir(out)
    holder = _holder(folder)
    try:
        with pytest.raises(JobLocked, match=rf"lock: the job is in use by vidcolor driver pid {holder.pid} on "):
            JobLock(folder).acquire()
        with pytest.raises(JobLocked, match=rf"pid {holder.pid}"):  # planning over it, even --overwrite
            plan_job(src, out, reference=still, config=_cfg(), overwrite=True)
        assert [p.name for p in folder.iterdir()] == ["lock"]
    finally:
        holder.kill()
        holder.wait()
    with JobLock(folder) as lock:  # the holder died: its lock is stale, taken at once
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert not folder.exists()  # a folder holding only the lock goes with it


def test_lock_without_flock_falls_back_to_the_recorded_owner(tmp_path, monkeypatch):
    import fcntl
    import socket

    from vidcolor.farm import lock as lockmod

    def no_flock(fd, op):
        raise OSError(37, "No locks available")  # ENOLCK: a mount without locking

    monkeypatch.setattr(lockmod.fcntl, "flock", no_flock)
    folder = tmp_path / "job"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / "lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    with JobLock(folder):  # its owner is gone from this host: stale
        pass
    assert not folder.exists()
    folder.mkdir()
    parent = os.getppid()  # alive, on this host
    (folder / "lock").write_text(json.dumps({"host": socket.gethostname(), "pid": parent,
                                             "started": "then", "tick": str(start_time(parent))}))
    with pytest.raises(JobLocked, match=rf"pid {parent} on {socket.gethostname()}, started then; if that driver "):
        JobLock(folder).acquire()
    (folder / "lock").write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    with pytest.raises(JobLocked, match="pid 1 on elsewhere"):  # another host's: cannot be known dead
        JobLock(folder).acquire()
    assert fcntl.flock is no_flock


# -- an untrusted job folder ------------------------------------------------------------------

@pytest.fixture(scope="module")
def planned(film, tmp_path_factory):
    src, still, _ = film
    d = tmp_path_factory.mktemp("planned")
    m, _ = plan_job(src, d / "out.mp4", reference=still, config=_cfg())
    return m.path


def _tree(root: Path, skip: Path) -> set[str]:
    return {os.fspath(p) for p in root.rglob("*") if skip not in p.parents and p != skip}


def _set(d: dict, dotted: str, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d[int(k)] if isinstance(d, list) else d[k]
    last = int(keys[-1]) if isinstance(d, list) else keys[-1]
    if value is _DEL:
        del d[last]
    else:
        d[last] = value


_DEL = object()
BAD = [  # (field, value, the message's words)
    ("suffix", "/../../../../tmp/x.mp4", r"suffix: '/\.\./\.\./\.\./\.\./tmp/x\.mp4' is not one of \.mp4"),
    ("suffix", "/../../../escape/x.mp4", r"suffix: '/\.\./\.\./\.\./escape/x\.mp4' is not one of"),
    ("segments", "x", r"segments: must be a list, not a string"),
    ("video", _DEL, r"video: is missing"),
    ("segments.0.frames", "16", r"segments\[0\]\.frames: must be an integer, not a string"),
    ("segments.0.first_frame", 5, r"segments\[0\]\.first_frame: is 5, but the segments before it end at frame 0"),
    ("segments.1", [], r"segments\[1\]: must be an object, not a list"),
    ("segments.0.shots", [99], r"segments\[0\]\.shots\[0\]: shot 99 is not in the plan"),
    ("shots.0.start_time", None, r"shots\[0\]\.start_time: must be a number, not null"),
    ("shots.0.extra", 1, r"shots\[0\]\.extra: is not a field of this version"),
    ("checksum", [], r"checksum: must be an object, not a list"),
    ("video.time_base", "0", r"video\.time_base: must be positive, not 0"),
    ("video.frames", True, r"video\.frames: must be an integer, not true/false"),
    ("video.rotation", 1 << 40, r"video\.rotation: must be degrees in -360\.\.360"),
    ("output", "/etc/passwd", r"output: '/etc/passwd' is not the output of this job folder"),
    ("input", 7, r"input: must be a string, not an integer"),
    ("config.encode", {"options": {"x264-params": "pass=1:stats=/tmp/evil.log"}},
     r"config\.encode\.options\.x264-params: 'stats' makes the encoder write a file of its own"),
    ("config.encode", {"crf": "high"}, r"encode\.crf"),
    ("version", 2, r"job manifest version 2 is not 1"),
]


@pytest.mark.parametrize("field,value,message", BAD, ids=[f"{b[0]}={b[1]!r}"[:40] for b in BAD])
def test_a_bad_manifest_is_one_line_naming_file_and_field(planned, tmp_path, field, value, message):
    job = tmp_path / "out.mp4.vidcolor-job"
    shutil.copytree(planned.parent, job)
    manifest = job / "manifest.json"
    d = json.loads(manifest.read_text())
    _set(d, field, value)
    manifest.write_text(json.dumps(d))
    escape = Path("/tmp/x.mp4")
    existed = escape.exists()
    before = _tree(tmp_path, job)
    for cmd in (["render-segment", str(manifest), "0"], ["assemble", str(manifest)]):
        r = CliRunner().invoke(main, cmd, env={"VIDCOLOR_DEBUG": ""})
        assert r.exit_code == 1, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"vidcolor: error: {manifest}: "), r.output
        assert re.search(message, lines[0]), lines[0]
    assert _tree(tmp_path, job) == before and escape.exists() == existed  # nothing written outside the job
    assert not list((job / "segments").iterdir())


def test_an_input_that_is_no_file_is_refused_not_read_forever(planned, tmp_path):
    job = tmp_path / "out.mp4.vidcolor-job"
    shutil.copytree(planned.parent, job)
    d = json.loads((job / "manifest.json").read_text())
    d["input"] = "/dev/zero"
    (job / "manifest.json").write_text(json.dumps(d))
    r = subprocess.run([sys.executable, "-m", "vidcolor", "render-segment", str(job / "manifest.json"), "0"],
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr == "vidcolor: error: /dev/zero: is not a regular file\n"


def test_a_huge_manifest_is_not_read(tmp_path):
    job = tmp_path / "out.mp4.vidcolor-job"
    job.mkdir()
    with open(job / "manifest.json", "wb") as fh:
        fh.truncate(300 << 20)  # sparse: nothing is written
    r = CliRunner().invoke(main, ["render-segment", str(job / "manifest.json"), "0"], env={"VIDCOLOR_DEBUG": ""})
    assert r.exit_code == 1 and "job manifest is over 256 MiB" in r.output


@pytest.mark.parametrize("doc", ["[]", "null", '"x"', "{}"])
def test_a_manifest_of_another_shape(tmp_path, doc):
    job = tmp_path / "out.mp4.vidcolor-job"
    job.mkdir()
    (job / "manifest.json").write_text(doc)
    r = CliRunner().invoke(main, ["render-segment", str(job / "manifest.json"), "0"], env={"VIDCOLOR_DEBUG": ""})
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and "job manifest" in r.output and "internal error" not in r.output, r.output


def test_segments_folder_as_a_link_is_refused(planned, tmp_path):
    job = tmp_path / "out.mp4.vidcolor-job"
    shutil.copytree(planned.parent, job)
    (job / "segments").rmdir()
    (tmp_path / "elsewhere").mkdir()
    (job / "segments").symlink_to(tmp_path / "elsewhere")
    r = CliRunner().invoke(main, ["render-segment", str(job / "manifest.json"), "0"], env={"VIDCOLOR_DEBUG": ""})
    assert r.exit_code == 1 and "segments/ is a symbolic link" in r.output
    assert not list((tmp_path / "elsewhere").iterdir())


def test_journal_lines_are_checked(planned, tmp_path, caplog):
    m = Manifest.load(planned)
    good = {"segment": 1, "file": "00001.mp4", "sha256": "a" * 64}
    lines = [good, {"segment": 0, "file": "../../../etc/passwd", "sha256": "b" * 64},
             {"segment": "0", "file": "00000.mp4", "sha256": "b" * 64}, {"segment": 7, "file": "00007.mp4",
                                                                          "sha256": "c" * 64},
             {"segment": 2, "file": "00002.mp4", "sha256": "not hex"}, [1, 2]]
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines) + "not json\n{\"torn")
    j = read_journal(tmp_path, len(m.segments))
    assert j == {1: good}
    warned = [r.getMessage() for r in caplog.records]
    assert any("line 2: file: '../../../etc/passwd' is not segment 0's file name; ignored" in w for w in warned)
    assert any("line 3: segment: must be an integer, not a string" in w for w in warned)
    assert any("line 4: segment: 7 is not a segment of the job" in w for w in warned)
    assert any("line 5: sha256: is not 64 lower-case hex digits" in w for w in warned)
    assert any("line 6: (line): must be an object, not a list" in w for w in warned)
    assert any("line 7 is not JSON" in w for w in warned)
    assert not any("line 8" in w for w in warned)  # the torn last line is a crash mid-write, not an attack
