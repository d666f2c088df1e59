"""A Ray cluster that loses a node mid-job: a head and a second node started
with ``ray start`` on 127.0.0.1, the real command ``vidcolor FILM --ray
127.0.0.1:PORT`` as the driver, and the second node SIGKILLed (its raylet,
its workers, its ``ray start``) while it renders a segment, once some
segments are done. Prints the segments lost and rendered again, whether the
output is byte-identical to an undisturbed job on the same cluster (and to a
``--jobs 1`` job: equal only where both encode with the same number of
threads), and how far its frames are from a single run's (PSNR: encoder
noise only, each segment opens with a keyframe).

    python benchmarks/bench_ray_node_loss.py [--seconds 20] [--size 320x240] [--segment 3] [--cpus 1,1]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from raycluster import RayCluster  # noqa: E402
from synth import make_clip, make_still  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv444p").astype(np.float64) for f in c.decode(video=0)]


def run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="film length")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--segment", type=float, default=3.0, help="farm.segment_seconds")
    ap.add_argument("--shot", type=float, default=1.5, help="seconds per shot")
    ap.add_argument("--cpus", default="1,1", help="CPUs of the head and of the second node")
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    fps, n = 24, int(args.seconds * 24)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_ray_loss_"))
    work.mkdir(parents=True, exist_ok=True)
    film = make_clip(work / "film.mp4", n=n, w=w, h=h, fps=fps, audio=True, shots=range(0, n, int(args.shot * fps)),
                     options={"preset": "veryfast"})
    ref = make_still(work / "ref.png", w=320, h=240)
    cfg = work / "farm.yaml"
    cfg.write_text(f"colorizer: transfer\nencode:\n  preset: veryfast\nfarm:\n  segment_seconds: {args.segment}\n"
                   "  retries: 0\n")  # a lost node must not need a retry
    base = [sys.executable, "-m", "vidcolor", str(film), "-r", str(ref), "-c", str(cfg), "-q"]
    path = os.pathsep.join(filter(None, [os.fspath(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    print(f"film: {args.seconds:g} s {w}x{h}, a shot every {args.shot:g} s; segments of about {args.segment:g} s; "
          f"{os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.1f}", flush=True)
    run([*base, "-o", str(work / "single.mp4")], env)
    run([*base, "-o", str(work / "jobs1.mp4"), "--jobs", "1"], env)
    cpus = tuple(int(c) for c in args.cpus.split(","))
    out, report = work / "ray.mp4", work / "ray.json"
    with RayCluster(work / "ray", cpus=cpus, env={"PYTHONPATH": path}) as cluster:
        print(f"cluster: head and a second node on {cluster.address}, {cpus[0]} and {cpus[1]} CPU(s)", flush=True)
        t = time.perf_counter()
        run([*base, "-o", str(work / "undisturbed.mp4"), "--ray", cluster.address], cluster.env)
        print(f"undisturbed job on the cluster: {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        driver = subprocess.Popen([*base, "-o", str(out), "--ray", cluster.address, "--report", str(report)],
                                  env={**cluster.env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        journal = out.with_name(out.name + ".vidcolor-job") / "journal.jsonl"
        killed_at = None
        while driver.poll() is None:
            done = len(journal.read_text().splitlines()) if journal.exists() else 0
            if done >= 2 and cluster.tasks("worker"):
                cluster.kill_node("worker")
                killed_at = done
                break
            time.sleep(0.1)
        _, err = driver.communicate()
        wall = time.perf_counter() - t
    if driver.returncode:
        sys.exit(f"the driver failed ({driver.returncode}): {err[-2000:]}")
    r = json.loads(report.read_text())
    a, b = frames(work / "single.mp4"), frames(out)
    psnr = min(10 * np.log10(255 ** 2 / max(np.mean((x - y) ** 2), 1e-10)) for x, y in zip(a, b))
    print(f"second node SIGKILLed after {killed_at} of {r['segments']} segments were done" if killed_at is not None
          else "the job ended before the second node took a segment: nothing was killed")
    print(f"segments: {r['segments']}; lost with the node: {sorted(r['lost'])}; rendered again: "
          f"{sorted(set(r['lost']) & set(r['rendered']))}; rendered by this run: {len(r['rendered'])}; "
          f"retries used: {r['retries']}; driver exit {driver.returncode}; {wall:.1f} s")
    data = out.read_bytes()
    same = data == (work / "undisturbed.mp4").read_bytes()
    print(f"output bytes equal to the undisturbed job's on the cluster: {same}"
          f"; to the --jobs 1 job's: {data == (work / 'jobs1.mp4').read_bytes()}; frames {len(b)} (single run "
          f"{len(a)}), lowest PSNR against the single run {psnr:.1f} dB")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
