"""Throughput of the whole pipeline with the exemplar colorizer on the CPU (or --device cuda).

    python benchmarks/bench_exemplar.py [--seconds 20] [--size 854x480] [--device cpu] [--workdir DIR]

Generates a black-and-white clip with sound (tests/synth.make_clip, 24 fps)
and a colour still of the same synthetic scene, then runs
``vidcolor CLIP --reference STILL --colorizer exemplar`` as a child process
and prints frames per second of the whole run (decode, shots, colorize,
encode, start-up included) and of the colorize stage alone (from --report),
beside the same run with ``--colorizer transfer``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--size", default="854x480")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir")
    a = ap.parse_args()
    from synth import make_clip, make_still

    w, h = map(int, a.size.split("x"))
    work = Path(a.workdir or tempfile.mkdtemp(prefix="vidcolor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / f"clip_{w}x{h}_{a.seconds}s.mp4"
    if not clip.exists():
        make_clip(clip, n=a.seconds * 24, w=w, h=h, fps=24, audio=True, options={"preset": "ultrafast", "crf": "18"})
    still = make_still(work / "still.png", w, h)
    n = a.seconds * 24
    for colorizer in ("exemplar", "transfer"):
        report = work / f"{colorizer}.json"
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "vidcolor", str(clip), "--reference", str(still), "--colorizer", colorizer,
                            "--device", a.device, "-o", str(work / f"out_{colorizer}.mp4"), "--overwrite", "-q",
                            "--report", str(report)], capture_output=True, text=True)
        wall = time.monotonic() - t0
        if p.returncode:
            raise SystemExit(p.stderr)
        stages = json.loads(report.read_text())["stages"]
        print(f"{w}x{h} {a.device} {colorizer:9s}: {n / wall:6.1f} fps whole run ({wall:.1f} s for {n} frames), "
              f"colorize stage {n / stages['colorize']:6.1f} fps; stages {stages}", flush=True)


if __name__ == "__main__":
    main()
