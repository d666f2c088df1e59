"""Cache TransNetV2's per-frame outputs on the shot benchmark's reels, for work on the decision rule.

    python benchmarks/transnet_cache.py [--clips 4] [--seed 100] [--out /tmp/transnet_100.npz]

Runs the network once over ``synth_shots.benchmark_clips(clips, seed)`` and
saves, per reel, the 48x27 thumbnails (as the detector sees them), the
single-frame head ``p1``, the many-hot head ``pm``, the mean luminance and
the true transitions, so ``TransNetDetector.decide`` can be re-run for free.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import synth_shots  # noqa: E402
from vidcolor.shots.transnet import TransNetDetector  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out or Path(f"/tmp/transnet_{args.seed}_{args.clips}.npz")
    det = TransNetDetector()
    data = {}
    for i, (frames, truth) in enumerate(synth_shots.benchmark_clips(args.clips, seed=args.seed)):
        thumbs = np.stack([cv2.resize(f, det.thumb_size, interpolation=cv2.INTER_AREA) for f in frames])
        t0 = time.perf_counter()
        p1, pm = det.predict(list(thumbs))
        print(f"reel {i}: {len(frames)} frames, {time.perf_counter() - t0:.1f} s", flush=True)
        data[f"thumbs{i}"] = thumbs
        data[f"p1_{i}"], data[f"pm_{i}"] = p1, pm
        data[f"lum{i}"] = thumbs.reshape(len(thumbs), -1).mean(1)
        data[f"truth{i}"] = np.array([(t.start, t.end, t.boundary, ["cut", "fade", "dissolve"].index(t.kind))
                                      for t in truth], np.int64)
    np.savez_compressed(out, n=args.clips, seed=args.seed, **data)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
