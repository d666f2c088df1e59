"""``auto`` at 480p: frames per second of ``vidcolor FILM`` (no reference), this tree against another.

    python benchmarks/bench_auto_speed.py [--before-tree DIR] [--rounds 3] [--frames 96] [-- VIDCOLOR ARGS]

Generates (once, in ``bench-out/``) a black-and-white 854x480 clip of 96
frames (a pan over ``skimage.data.camera()``), then runs ``vidcolor CLIP -o
OUT --overwrite -q`` with this tree's code and, with ``--before-tree`` (a
checkout of an earlier commit: ``git archive COMMIT | tar -x -C DIR``), with
that tree's, alternately, ``--rounds`` times each, each in its own process,
and prints each run's wall time and frames per second and the medians: on a
shared machine only runs interleaved in one session compare.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def make_clip(path: Path, frames: int) -> None:
    import av
    import cv2
    from skimage import data

    cam = cv2.resize(data.camera(), (1280, 1280), interpolation=cv2.INTER_CUBIC)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 854, 480, "yuv420p"
        s.options = {"crf": "16", "preset": "veryfast"}
        for i in range(frames):
            x, y = 40 + 3 * i, 200 + i
            g = cam[y:y + 480, x:x + 854]
            yuv = np.full((480 * 3 // 2, 854), 128, np.uint8)
            yuv[:480] = g
            for pkt in s.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)


def run(tree: Path, clip: Path, out: Path, extra: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vidcolor", str(clip), "-o", str(out), "--overwrite", "-q", *extra],
                   env=env, check=True, cwd=str(tree))
    return time.perf_counter() - t0


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before-tree", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=96)
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    work = ROOT / "bench-out"
    work.mkdir(exist_ok=True)
    clip = work / f"auto480_{a.frames}.mp4"
    if not clip.is_file():
        make_clip(clip, a.frames)
    trees = {"this": ROOT}
    if a.before_tree:
        trees = {"before": a.before_tree.resolve(), **trees}
    secs: dict[str, list[float]] = {k: [] for k in trees}
    for r in range(a.rounds):
        for name, tree in trees.items():
            t = run(tree, clip, work / f"auto480_{name}.mp4", extra)
            secs[name].append(t)
            print(f"round {r + 1} {name}: {t:.1f} s, {a.frames / t:.2f} frames/s", flush=True)
    for name, s in secs.items():
        med = statistics.median(s)
        print(f"MEDIAN {name}: {med:.1f} s, {a.frames / med:.2f} frames/s (854x480, {a.frames} frames, no reference)")


if __name__ == "__main__":
    sys.exit(main())
