"""Render farm on this machine: the same generated film with ``--jobs 1`` and
``--jobs 2`` (the ``transfer`` colorizer), wall time and speed-up; then a
``--jobs 2`` run whose driver alone is killed with SIGKILL half-way (its
worker processes must die with it: how many are left 10 s later is
printed) and run again, which must render only the missing segments and
give the same file as an uninterrupted run.

    python benchmarks/bench_farm.py [--seconds 60] [--size 854x480] [--segment 6]

Every run is the real command (``vidcolor FILM --jobs N``) in a subprocess,
so process start-up, the shot-detection pass (the plan) and the final join
are all counted.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from raycluster import alive, descendants, start_time  # noqa: E402
from synth import make_clip, make_still  # noqa: E402


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vidcolor(film: Path, ref: Path, out: Path, cfg: Path, jobs: int | None, extra=(), **popen) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vidcolor", str(film), "-r", str(ref), "-c", str(cfg), "-o", str(out), "-q", *extra]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, **popen)


def timed(film, ref, out, cfg, jobs) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its worker processes)."""
    out.unlink(missing_ok=True)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = vidcolor(film, ref, out, cfg, jobs)
    _, err = p.communicate()
    if p.returncode:
        sys.exit(f"vidcolor failed: {err}")
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="film length")
    ap.add_argument("--size", default="854x480")
    ap.add_argument("--segment", type=float, default=6.0, help="farm.segment_seconds")
    ap.add_argument("--shot", type=float, default=3.0, help="seconds per shot")
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    fps = 24
    n = int(args.seconds * fps)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_farm_"))
    work.mkdir(parents=True, exist_ok=True)
    film = work / "film.mp4"
    print(f"generating a {args.seconds:g} s {w}x{h} film with sound, a shot every {args.shot:g} s ...", flush=True)
    make_clip(film, n=n, w=w, h=h, fps=fps, audio=True, shots=range(0, n, int(args.shot * fps)),
              options={"preset": "veryfast"})
    ref = make_still(work / "ref.png", w=320, h=240)
    cfg = work / "farm.yaml"
    cfg.write_text(f"colorizer: transfer\nencode:\n  preset: veryfast\nfarm:\n  segment_seconds: {args.segment}\n")
    print(f"machine: {os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.1f}; colorizer transfer, x264 veryfast crf 16, "
          f"segments of about {args.segment:g} s", flush=True)

    times = {}
    for label, jobs in (("single run (no farm)", None), ("--jobs 1", 1), ("--jobs 2", 2)):
        out = work / f"out_{jobs}.mp4"
        times[jobs], cpu = timed(film, ref, out, cfg, jobs)
        print(f"{label:22s} {times[jobs]:7.1f} s  {n / times[jobs]:6.1f} frames/s  CPU {cpu:6.1f} s "
              f"({cpu / times[jobs]:.2f} cores busy)", flush=True)
    print(f"speed-up --jobs 2 over --jobs 1: {times[1] / times[2]:.2f}x  "
          f"(over the single run: {times[None] / times[2]:.2f}x)", flush=True)

    # SIGKILL half-way, then the same command again
    reference = work / "out_2.mp4"
    out = work / "killed.mp4"
    job = out.with_name(out.name + ".vidcolor-job")
    shutil.rmtree(job, ignore_errors=True)
    out.unlink(missing_ok=True)
    p = vidcolor(film, ref, out, cfg, 2, start_new_session=True)
    total = None
    kids: list = []
    while p.poll() is None:
        m = job / "manifest.json"
        if total is None and m.exists():
            total = len(json.loads(m.read_text())["segments"])
        done = len((job / "journal.jsonl").read_text().splitlines()) if (job / "journal.jsonl").exists() else 0
        if total and done >= total // 2:
            kids = [(q, start_time(q)) for q in descendants(p.pid)]
            os.kill(p.pid, signal.SIGKILL)  # the driver alone: its workers must follow it
            break
        time.sleep(0.05)
    p.wait()
    time.sleep(10)
    left = [q for q, t in kids if alive(q, t)]
    for q in left:
        os.kill(q, signal.SIGKILL)
    done = len((job / "journal.jsonl").read_text().splitlines())
    print(f"driver killed with SIGKILL after {done} of {total} segments (exit {p.returncode}; output exists: "
          f"{out.exists()}); of its {len(kids)} child processes, {len(left)} still running 10 s later")
    t = time.perf_counter()
    p = vidcolor(film, ref, out, cfg, 2, extra=["--report", str(work / "resume.json")])
    _, err = p.communicate()
    if p.returncode:
        sys.exit(f"vidcolor failed: {err}")
    r = json.loads((work / "resume.json").read_text())
    print(f"same command again: {time.perf_counter() - t:.1f} s; rendered segments {sorted(r['rendered'])}, "
          f"kept from the killed run {r['skipped']} (corrupt: {r['corrupt']}); output identical to the "
          f"uninterrupted --jobs 2 run: {sha256(out) == sha256(reference)}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
