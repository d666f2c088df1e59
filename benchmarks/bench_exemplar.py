"""Throughput of the whole pipeline with the exemplar colorizer on the CPU (or --device cuda).

    python benchmarks/bench_exemplar.py [--seconds 20] [--size 854x480] [--device cpu] [--workdir DIR]
                                        [--tree DIR [--config YAML] ...] [--repeat N] [--colorizers exemplar,transfer]

Generates a black-and-white clip with sound (tests/synth.make_clip, 24 fps)
and a colour still of the same synthetic scene, then runs
``vidcolor CLIP --reference STILL --colorizer exemplar`` as a child process
and prints frames per second of the whole run (decode, shots, colorize,
encode, start-up included) and of the colorize stage alone (from --report),
beside the same run with ``--colorizer transfer``.

--tree DIR, given twice or more, runs each source tree's vidcolor in turn on
the same clip, round after round (--repeat), so an A/B sees the same machine
load; --config YAML (given once per --tree, in the same order, or once for
all; ``-`` for none) is passed to that tree's runs, e.g. a YAML turning off a
stage the older tree does not have. The last lines are each tree's median.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))


def run_once(tree: Path, config: str, clip: Path, still: Path, colorizer: str, device: str, work: Path) -> tuple[float, dict]:
    report = work / f"{colorizer}.json"
    cmd = [sys.executable, "-m", "vidcolor", str(clip), "--reference", str(still), "--colorizer", colorizer,
           "--device", device, "-o", str(work / f"out_{colorizer}.mp4"), "--overwrite", "-q", "--report", str(report)]
    if config != "-":
        cmd += ["-c", str(Path(config).resolve())]
    env = {**os.environ, "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.monotonic()
    # from the tree: ``python -m`` puts the working directory first on the path
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tree, env=env)
    wall = time.monotonic() - t0
    if p.returncode:
        raise SystemExit(p.stderr)
    return wall, json.loads(report.read_text())["stages"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--size", default="854x480")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir")
    ap.add_argument("--tree", action="append", type=Path, help="source tree to run (default: this one); twice or more: an A/B")
    ap.add_argument("--config", action="append", help="YAML for the matching --tree ('-': none)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--colorizers", default="exemplar,transfer")
    a = ap.parse_args()
    from synth import make_clip, make_still

    trees = [t.resolve() for t in (a.tree or [ROOT])]
    configs = a.config or ["-"]
    if len(configs) == 1:
        configs = configs * len(trees)
    if len(configs) != len(trees):
        raise SystemExit("--config: give one for every --tree, or one for all")
    w, h = map(int, a.size.split("x"))
    work = Path(a.workdir or tempfile.mkdtemp(prefix="vidcolor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / f"clip_{w}x{h}_{a.seconds}s.mp4"
    if not clip.exists():
        make_clip(clip, n=a.seconds * 24, w=w, h=h, fps=24, audio=True, options={"preset": "ultrafast", "crf": "18"})
    still = make_still(work / "still.png", w, h)
    n = a.seconds * 24
    fps: dict[tuple[str, str], list[float]] = {}
    for r in range(a.repeat):
        for tree, config in zip(trees, configs):
            for colorizer in a.colorizers.split(","):
                wall, stages = run_once(tree, config, clip, still, colorizer, a.device, work)
                fps.setdefault((str(tree), colorizer), []).append(n / wall)
                print(f"[{r + 1}] {tree.name} {w}x{h} {a.device} {colorizer:9s}: {n / wall:6.1f} fps whole run "
                      f"({wall:.1f} s for {n} frames), colorize stage {n / stages['colorize']:6.1f} fps; stages {stages}",
                      flush=True)
    for (tree, colorizer), v in fps.items():
        print(f"median {Path(tree).name} {colorizer:9s}: {statistics.median(v):6.1f} fps over {len(v)} runs "
              f"({', '.join(f'{x:.1f}' for x in v)})")


if __name__ == "__main__":
    main()
