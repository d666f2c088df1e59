"""Shot detection benchmark: precision, recall and F1 of every registered detector, and its speed.

    python benchmarks/bench_shots.py [--detectors histogram,transnet] [--clips 4] [--seed 100]
                                     [--device cuda] [--montage PATH]

Generates ``--clips`` synthetic reels (``tests/synth_shots.benchmark_clips``:
96x54 gray, 24 shots each of 12 to 120 frames with camera motion, grain and
flicker, some dim and flat, some as bright as the shot before or another
view of its scene, some with fast pans, drifting exposure, big objects or
flashes; mostly hard cuts, some fades through black and dissolves: about
80 cuts and 10 gradual transitions with the default 4 reels).
Each detector gets thumbnails of its own ``thumb_size`` made with cv2
INTER_AREA, pushed one at a time; the time taken by ``push`` and ``flush``
alone gives its frames per second.

Scoring: a detected cut matches a true cut at the same frame ("exact") or
within 2 frames ("+-2"), one to one. A true gradual transition (fade or
dissolve) is found when a detected transition's boundary lies in its span
(``start`` .. ``end + 1``); a detected cut that does so counts there, not
as a false cut; a detected gradual transition in no true span is a false
gradual one.

``--montage`` (default ``../shared/eval/set/montage/gray.mp4`` beside the
repository, skipped when missing) also checks each detector on that real
clip against the ``shot_starts`` of its ``meta.json``. ``--device`` goes to
the detectors that take one (TransNetV2: ``cuda``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import synth_shots  # noqa: E402
from vidcolor.shots import get_detector, list_detectors  # noqa: E402  (registers every detector)

MONTAGE = HERE.parent.parent / "shared" / "eval" / "set" / "montage" / "gray.mp4"


def build(name: str, device: str | None):
    return get_detector(name) if device is None else get_detector(name, device=device)


def run(det, frames) -> tuple[list, float]:
    """Transitions and seconds spent in the detector alone."""
    tiles = [cv2.resize(f, det.thumb_size, interpolation=cv2.INTER_AREA) for f in frames]
    out = []
    t0 = time.perf_counter()
    for t in tiles:
        out += det.push(t)
    out += det.flush()
    return out, time.perf_counter() - t0


def match(truth: list[int], found: list[int], tol: int) -> int:
    """One-to-one matches within ``tol`` frames, nearest first."""
    pairs = sorted((abs(a - b), i, j) for i, a in enumerate(truth) for j, b in enumerate(found) if abs(a - b) <= tol)
    used_t, used_f, n = set(), set(), 0
    for _, i, j in pairs:
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            n += 1
    return n


def prf(tp: int, n_found: int, n_true: int) -> tuple[float, float, float]:
    p = tp / n_found if n_found else 1.0
    r = tp / n_true if n_true else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def score(clips, results) -> dict:
    s = {"cuts": 0, "found_cuts": 0, "exact": 0, "near": 0, "gradual": 0, "found_gradual": 0, "gradual_tp": 0,
         "gradual_fp": 0}
    for (_, truth), found in zip(clips, results):
        spans = [(t.start, t.end + 1) for t in truth if t.gradual]
        true_cuts = [t.boundary for t in truth if t.kind == "cut"]
        in_span = [t for t in found if any(a <= t.boundary <= b for a, b in spans)]
        cuts = [t.boundary for t in found if t.kind == "cut" and t not in in_span]
        s["cuts"] += len(true_cuts)
        s["found_cuts"] += len(cuts)
        s["exact"] += match(true_cuts, cuts, 0)
        s["near"] += match(true_cuts, cuts, 2)
        s["gradual"] += len(spans)
        s["gradual_tp"] += sum(any(a <= t.boundary <= b for t in found) for a, b in spans)
        s["found_gradual"] += sum(t.gradual for t in found)
        s["gradual_fp"] += sum(t.gradual and t not in in_span for t in found)
    return s


def errors(truth, found) -> tuple[list[int], list[str]]:
    """True cuts not found at their frame; found transitions matching no true one (kind initial + boundary)."""
    spans = [(t.start, t.end + 1) for t in truth if t.gradual]
    cuts = {t.boundary for t in truth if t.kind == "cut"}
    missed = sorted(cuts - {t.boundary for t in found if t.kind == "cut"})
    false = [f"{t.kind[0]}{t.boundary}" for t in found
             if not any(a <= t.boundary <= b for a, b in spans) and not (t.kind == "cut" and t.boundary in cuts)]
    return missed, false


def read_gray(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detectors", default=",".join(list_detectors()), help="comma-separated names (default: all)")
    ap.add_argument("--clips", type=int, default=4, help="synthetic reels (24 shots each)")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--device", default=None, help="device for detectors that take one (e.g. cuda)")
    ap.add_argument("--montage", type=Path, default=MONTAGE, help="real clip with a meta.json beside it")
    args = ap.parse_args(argv)
    names = [n for n in args.detectors.split(",") if n]

    t0 = time.perf_counter()
    clips = synth_shots.benchmark_clips(args.clips, seed=args.seed)
    n_frames = sum(len(f) for f, _ in clips)
    n_cuts = sum(t.kind == "cut" for _, tr in clips for t in tr)
    n_grad = sum(t.gradual for _, tr in clips for t in tr)
    print(f"{len(clips)} reels, {n_frames} frames of 96x54, {n_cuts} cuts, {n_grad} gradual "
          f"(generated in {time.perf_counter() - t0:.1f} s)\n")

    head = (f"{'detector':<10} {'thumb':>6} | {'cuts exact: P':>13} {'R':>5} {'F1':>5} | {'cuts +-2: P':>11} {'R':>5} "
            f"{'F1':>5} | {'gradual: found':>14} {'P':>5} {'R':>5} {'F1':>5} | {'fps':>7}")
    print(head)
    print("-" * len(head))
    misses = {}
    for name in names:
        results, secs = [], 0.0
        for frames, _ in clips:
            out, dt = run(build(name, args.device), frames)
            results.append(out)
            secs += dt
        s = score(clips, results)
        pe, re_, fe = prf(s["exact"], s["found_cuts"], s["cuts"])
        pn, rn, fn = prf(s["near"], s["found_cuts"], s["cuts"])
        pg, rg, fg = prf(s["gradual_tp"], s["gradual_tp"] + s["gradual_fp"], s["gradual"])
        w, h = build(name, args.device).thumb_size
        size, found = f"{w}x{h}", f"{s['gradual_tp']}/{s['gradual']}"
        print(f"{name:<10} {size:>6} | {pe:13.3f} {re_:5.3f} {fe:5.3f} | {pn:11.3f} {rn:5.3f} {fn:5.3f} | "
              f"{found:>14} {pg:5.3f} {rg:5.3f} {fg:5.3f} | {n_frames / secs:7.0f}")
        misses[name] = [(i, *errors(tr, out)) for i, ((_, tr), out) in enumerate(zip(clips, results))]
    print("\nper reel: (reel, true cuts not found exactly, transitions found where there is none)")
    for name, m in misses.items():
        print(f"  {name}: {m}")

    if args.montage.exists():
        meta_path = args.montage.with_name("meta.json")
        starts = json.loads(meta_path.read_text())["shot_starts"] if meta_path.exists() else None
        frames = read_gray(args.montage)
        print(f"\n{args.montage}: {len(frames)} frames, shots start at {starts}")
        for name in names:
            out, dt = run(build(name, args.device), frames)
            got = [t.boundary for t in out]
            ok = starts is not None and got == [s for s in starts if s > 0]
            print(f"  {name:<10} boundaries {got} kinds {[t.kind for t in out]} "
                  f"{'exact' if ok else 'MISMATCH'} ({len(frames) / dt:.0f} fps on thumbnails)")
    else:
        print(f"\n{args.montage} not found: real-clip check skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
