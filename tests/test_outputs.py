"""The output-file lifecycle (vidcolor.outputs): checked before any work,
written under a temporary name, renamed when complete, removed on failure;
the temporaries of runs killed outright removed by the next run to that
output."""
import os
import signal
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from procs import leftovers, spawn, wait_for
from synth import decode_pts, make_clip
from vidcolor.cli import main
from vidcolor.errors import OutputError
from vidcolor.outputs import (atomic_output, compare_output, default_output, part_output, preview_output,
                              sweep_stale, temporary_name, work_folder)


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def live():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield p.pid
    p.kill()
    p.wait()


def test_names():
    assert default_output("/a/film.mp4").as_posix() == "/a/film_color.mp4"
    assert part_output("film.mkv").name == "film_part.mkv"
    assert compare_output(preview_output("film.mp4")).name == "film_preview_compare.mp4"
    t = temporary_name("/a/out.mp4", pid=42, host="node1")
    assert t.as_posix() == "/a/.out.vidcolor-tmp-node1-42.mp4"  # the extension kept: it picks the container


def test_atomic_output_renames_on_success_and_removes_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".bin"
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and not tmp.exists()
    with pytest.raises(OutputError, match="already exists"):  # checked at once, before any work
        atomic_output(target)
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with atomic_output(target, overwrite=True) as tmp:
                tmp.write_bytes(b"half")
                raise error
        assert target.read_bytes() == b"new" and not tmp.exists()
    with pytest.raises(OutputError, match="is the input file"):
        atomic_output(target, overwrite=True, input=target)
    with pytest.raises(OutputError, match="is a folder"):
        atomic_output(tmp_path)


def test_sweep_removes_only_what_dead_runs_of_this_host_left(tmp_path, live):
    out = tmp_path / "film.mp4"
    dead = _dead_pid()
    here = socket.gethostname().replace("-", "_")
    stale = [temporary_name(out, pid=dead), tmp_path / f".film.vidcolor-tmp-{dead}.mp4"]  # as older versions named it
    kept = [temporary_name(out, pid=live),  # a run still going
            temporary_name(out, pid=dead, host="another_node"),  # a pid on another machine means nothing here
            temporary_name(tmp_path / "film.mkv", pid=dead),  # another output
            temporary_name(tmp_path / "other.mp4", pid=dead),
            tmp_path / ".film.vidcolor-tmp-x.mp4", tmp_path / "film_color.mp4"]
    for p in stale + kept:
        p.write_bytes(b"x")
    folder = work_folder(out).with_name(f".film.vidcolor-preview-{here}-{dead}")
    folder.mkdir()
    (folder / "00000.mp4").write_bytes(b"x")
    assert sorted(sweep_stale(out)) == sorted(stale + [folder])
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale) and not folder.exists()


def test_a_killed_runs_temporary_is_removed_by_the_next_run_to_that_output(tmp_path, clip, still):
    src = make_clip(tmp_path / "long.mp4", n=1500, w=96, h=64)
    out = tmp_path / "out.mp4"
    p = spawn(src, "-r", still, "-o", out, "--colorizer", "transfer", "-q")
    wait_for(lambda: any(f.stat().st_size > 0 for f in leftovers(tmp_path)), p)
    p.send_signal(signal.SIGKILL)  # no clean-up possible
    p.wait()
    left = leftovers(tmp_path)
    assert len(left) == 1 and str(p.pid) in left[0].name and not out.exists()
    r = CliRunner().invoke(main, [str(a) for a in (clip, "-r", still, "-o", out, "--colorizer", "transfer")])
    assert r.exit_code == 0, r.output
    assert not leftovers(tmp_path) and len(decode_pts(out)) == 24
    assert f"removed {left[0]}, left by a run that was killed (process {p.pid})" in r.stderr


def test_a_running_runs_temporary_is_left_alone(tmp_path, clip, still, live):
    out = tmp_path / "out.mp4"
    theirs = temporary_name(out, pid=live)
    theirs.write_bytes(b"being written")
    r = CliRunner().invoke(main, [str(a) for a in (clip, "-r", still, "-o", out, "--colorizer", "transfer", "-q")])
    assert r.exit_code == 0, r.output
    assert theirs.read_bytes() == b"being written" and len(decode_pts(out)) == 24
    assert os.listdir(tmp_path).count(theirs.name) == 1

