"""The defect finder's time per frame (``vidcolor.temporal.defects.DefectFinder.fill``), A/B.

    python benchmarks/bench_defects.py VIDEO [VIDEO ...] [--repeat 3] [--batch 8]

Decodes each video's luma once, then runs ``DefectFinder().fill`` over it in
batches of ``--batch`` frames (a new shot at the start, and at each of the
``shot_starts`` of a ``meta.json`` beside the video: an evaluation set's), with its scratches
filled from the previous frame (the default) and from their sides only
(``temporal_scratch=False``), the two interleaved ``--repeat`` times, and
prints the best ms/frame of each per video and the share of pixels filled.
Give it a degraded clip (``benchmarks/bench_oldfilm.py --generate-only``
builds them) and a clean one: on a clean film the finder finds almost nothing.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import av
import numpy as np

from vidcolor.temporal.defects import DefectFinder


def luma(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="yuv420p")[: f.height] for f in c.decode(video=0)])


def run(frames: np.ndarray, starts: list[int], batch: int, **kw) -> tuple[float, float]:
    """Seconds per frame of one pass, and the share of pixels the fill changed."""
    f = DefectFinder(**kw)
    changed = 0
    t0 = time.perf_counter()
    for a, b in zip(starts, starts[1:] + [len(frames)]):
        f.reset()
        for i in range(a, b, batch):
            out = f.fill(frames[i:min(b, i + batch)])
            changed += int((out != frames[i:min(b, i + batch)]).sum())
    return (time.perf_counter() - t0) / len(frames), changed / frames.size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    a = ap.parse_args()
    configs = {"temporal scratch fill": {}, "side fill only": {"temporal_scratch": False}}
    for v in a.videos:
        frames = luma(v)
        meta = v.parent / "meta.json"
        starts = json.loads(meta.read_text())["shot_starts"] if meta.exists() else [0]
        best = {k: np.inf for k in configs}
        share = {}
        for _ in range(a.repeat):
            for k, kw in configs.items():
                t, share[k] = run(frames, starts, a.batch, **kw)
                best[k] = min(best[k], t)
        h, w = frames.shape[1:]
        print(f"{v} ({len(frames)} frames, {w}x{h}): "
              + "; ".join(f"{k} {1000 * best[k]:.2f} ms/frame, {1e4 * share[k]:.1f} px in 10,000 filled" for k in configs),
              flush=True)


if __name__ == "__main__":
    main()
