"""The defect finder's time per frame (``vidcolor.temporal.defects.DefectFinder.fill``), A/B.

    python benchmarks/bench_defects.py VIDEO [VIDEO ...] [--repeat 3] [--batch 8]

Decodes each video's luma once, then runs ``DefectFinder().fill`` over it in
batches of ``--batch`` frames (a new shot at the start, and at each of the
``shot_starts`` of a ``meta.json`` beside the video, an evaluation set's, or in
bench_oldfilm.py's ``set`` folder beside the ``src`` folder it is in), with its scratches
filled from the frame their picture was last seen in, to a fraction of a pixel
(the default), without matching a short stretch's sides apart (``side_rms=0``), without
splitting a stretch not found as one (``min_stretch=0``, ``side_rms=0``), as whole pixels
copied from the previous frame (``subpixel=False``) and from their sides only (``temporal_scratch=False``), and without looking for long lines that held still
while the picture moved (``held_back=0``), interleaved ``--repeat`` times, and
prints the best ms/frame of each per video and the share of pixels filled.
Give it a degraded clip (``benchmarks/bench_oldfilm.py --generate-only``
builds them) and a clean one: on a clean film the finder finds almost nothing.
``--clean DIR`` (the clean set's ``src`` folder) also prints how far each
fill is from the clean clip of the same name on the scratch and dust pixels
bench_oldfilm.py made (its ``masks`` folder beside the video's ``src``):
the mean absolute difference in 8-bit codes, the pixels the finder missed
included (a copy with scratches alone differs from the clean clip nowhere else).
``--bits 10`` runs each on a deeper copy of the video instead (its codes times
4, plus a random 0-3: a 10-bit scan of the same print) with ``DefectFinder(bits=10)``,
and gives its fill's distance from the clean clip in 8-bit codes too.

    python benchmarks/bench_defects.py /tmp/of/w/scratches_s1_seed0_v6_lossless/src/*.mp4 \
        --clean /tmp/of/w/clean_lossless/src --repeat 1
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


def deeper(frames: np.ndarray, bits: int, seed: int = 0) -> np.ndarray:
    """8-bit ``frames`` as a ``bits``-deep film: codes shifted up, the new low bits random."""
    up = bits - 8
    rng = np.random.default_rng(seed)
    return (frames.astype(np.uint16) << up) + rng.integers(0, 1 << up, frames.shape).astype(np.uint16)


def run(frames: np.ndarray, starts: list[int], batch: int, **kw) -> tuple[float, float, np.ndarray]:
    """Seconds per frame of one pass, the share of pixels the fill changed, and the filled frames."""
    f = DefectFinder(**kw)
    changed = 0
    filled = []
    t0 = time.perf_counter()
    for a, b in zip(starts, starts[1:] + [len(frames)]):
        f.reset()
        for i in range(a, b, batch):
            j = min(b, i + batch)
            out = f.fill(frames[i:j], frames[j:min(b, j + f.ahead(j - i))])
            changed += int((out != frames[i:j]).sum())
            filled.append(out)
    return (time.perf_counter() - t0) / len(frames), changed / frames.size, np.concatenate(filled)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--clean", type=Path, help="folder of the clean clips (bench_oldfilm.py's clean set's src)")
    ap.add_argument("--bits", type=int, default=8, help="run on a copy this many bits deep (8: the video as it is)")
    a = ap.parse_args()
    up = max(0, a.bits - 8)
    configs = {"temporal scratch fill": {}, "from before only": {"fill_ahead": 0},
               "no side matches": {"side_rms": 0.0}, "stretches not split": {"min_stretch": 0, "side_rms": 0.0},
               "stretches shifted whole": {"glide": False},
               "whole-pixel copies": {"subpixel": False},
               "side fill only": {"temporal_scratch": False},
               "no held lines": {"held_back": 0}}  # a long line held still while the picture moved: not looked for
    for v in a.videos:
        frames = luma(v) if not up else deeper(luma(v), a.bits)
        meta = v.parent / "meta.json"  # an evaluation set's clip, or bench_oldfilm.py's source beside its set
        meta = meta if meta.exists() else v.parent.parent / "set" / v.stem / "meta.json"
        starts = json.loads(meta.read_text())["shot_starts"] if meta.exists() else [0]
        best = {k: np.inf for k in configs}
        share, filled = {}, {}
        for _ in range(a.repeat):
            for k, kw in configs.items():
                t, share[k], filled[k] = run(frames, starts, a.batch, bits=a.bits, **kw)
                best[k] = min(best[k], t)
        h, w = frames.shape[1:]
        print(f"{v} ({len(frames)} frames, {w}x{h}): "
              + "; ".join(f"{k} {1000 * best[k]:.2f} ms/frame, {1e4 * share[k]:.1f} px in 10,000 filled" for k in configs),
              flush=True)
        found = v.parent.parent / "masks" / f"{v.stem}.npz"  # bench_oldfilm.py's, beside the video's src
        if a.clean is not None and found.exists():
            z = np.load(found)
            masks = np.unpackbits(z["masks"], axis=-1, count=int(z["width"])).astype(bool)
            if not masks.any():
                continue
            clean = np.clip(luma(a.clean / v.name), 16, 235).astype(np.float32)  # the copies' legal range
            if up:  # the clean clip as deep, its low bits their mean; each fill in 8-bit codes
                clean = clean + ((1 << up) - 1) / 2 / (1 << up)
            print(f"  fill vs the clean clip on the {int(masks.sum())} defect pixels (8-bit codes): "
                  + "; ".join(f"{k} {np.abs(filled[k] / (1 << up) - clean)[masks].mean():.2f}" for k in configs),
                  flush=True)


if __name__ == "__main__":
    main()
