"""Temporal consistency: warp error, CDC and PSNR per --temporal mode, and its run-time cost.

    python benchmarks/bench_temporal.py [--set ../shared/eval/set] [--modes off,forward,bidirectional]
                                        [--speed-seconds 20] [--workdir DIR]

Part 1, quality, on the development clips (colour ground truth beside a
black-and-white version, ``../shared/eval``): each clip is coloured with
``--reference-map`` (the keyframe still of each shot, as
``quality.py --mode map``) once per mode, and the output is scored:

* warp error (Lai et al., "Learning Blind Video Temporal Consistency", 2018):
  the mean squared difference (RGB in [0, 1], x 1000) between an output frame
  and the previous output frame warped to it, over pixels the flow follows
  (not occluded), inside shots. The flow is taken from the *ground-truth
  colour* frames (OpenCV DIS, medium, on their luma), and occlusions by the
  forward-backward test of Sundaram et al. (as Lai et al. do), so the metric
  does not reward an output for agreeing with its own flow;
  The luminance is the film's own in every mode, so its share of the error
  is the same for all; the chroma-only figure (Cb/Cr) shows what smoothing
  changes;
* CDC (colour distribution consistency, as ``quality.py`` prints it) beside
  the ground truth's own;
* the same for the black-and-white input (``gray``): no colour, the film's
  own luma, which every mode keeps: what is left of warp error and CDC
  once colour changes nothing (CDC is over R, G and B histograms, so the
  luma's own motion dominates it);
* PSNR against the ground truth.

Part 2, cost: a generated 480p clip (tests/synth.make_clip, 24 fps) through
the default exemplar pipeline with ``--temporal off`` and ``forward``: whole
run wall time and the ratio.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def _quality_module(set_dir: Path):
    spec = importlib.util.spec_from_file_location("quality", set_dir.parent / "quality.py")
    q = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(q)
    return q


def gt_flows(gt: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """For each frame t > 0: (flow t -> t-1, non-occlusion mask), from the ground truth."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ys = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in gt]
    h, w = ys[0].shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out: list = [None]
    for t in range(1, len(ys)):
        f = dis.calc(ys[t], ys[t - 1], None)
        b = dis.calc(ys[t - 1], ys[t], None)
        mx, my = gx + f[..., 0], gy + f[..., 1]
        bw = cv2.remap(b, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        lhs = ((f + bw) ** 2).sum(-1)
        rhs = 0.01 * ((f ** 2).sum(-1) + (bw ** 2).sum(-1)) + 0.5
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        out.append((np.stack((mx, my), -1), (lhs <= rhs) & inside))
    return out


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """Cr, Cb (BT.601) of an RGB frame, in [0, 1] units."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:]


def warp_error(frames: list[np.ndarray], flows, starts: list[int], chroma: bool = False) -> float:
    """Mean over frames (inside shots) of the masked squared difference between frame t and warped
    frame t-1 (RGB summed over channels, or with ``chroma`` Cb/Cr only), x 1000."""
    first = set(starts)
    errs = []
    for t in range(1, min(len(frames), len(flows))):
        if t in first:
            continue
        pos, mask = flows[t]
        a, b = (_chroma(frames[t]), _chroma(frames[t - 1])) if chroma else (frames[t], frames[t - 1])
        prev = cv2.remap(b.astype(np.float32) / 255, pos[..., 0], pos[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        d = ((a.astype(np.float32) / 255 - prev) ** 2).sum(-1)
        if mask.any():
            errs.append(float(d[mask].mean()))
    return 1000 * float(np.mean(errs)) if errs else 0.0


def quality(a, q) -> None:
    modes = a.modes.split(",")
    rows: dict[str, dict[str, dict]] = {m: {} for m in ["gt", "gray", *modes]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for clip in sorted(p.parent for p in a.set.glob("*/meta.json")):
            meta = json.loads((clip / "meta.json").read_text())
            gt, _ = q.video(a.set.parent / "src" / meta["source"])
            starts = meta["shot_starts"]
            flows = gt_flows(gt)
            rows["gt"][clip.name] = {"warp": warp_error(gt, flows, starts), "cwarp": warp_error(gt, flows, starts, True),
                                     "cdc": q.cdc(gt, starts), "psnr": 99.0}
            # the black-and-white input itself: no colour at all, the film's own luma (which every mode
            # keeps): the floor of what any colouring can reach on these metrics
            gray, _ = q.video(clip / meta["gray"])
            n = min(len(gray), len(gt))
            rows["gray"][clip.name] = {"warp": warp_error(gray, flows, starts),
                                       "cwarp": warp_error(gray, flows, starts, True), "cdc": q.cdc(gray, starts),
                                       "psnr": float(np.mean([q.psnr(gray[i], gt[i]) for i in range(n)]))}
            mp = work / f"{clip.name}.csv"
            with open(mp, "w", newline="") as fh:
                wr = csv.writer(fh)
                wr.writerow(["start", "reference"])
                for k, st in enumerate(starts):
                    wr.writerow([st, str(clip / "refs" / f"shot{k}_mid.png")])
            for m in modes:
                out = work / f"{clip.name}_{m}.mp4"
                t0 = time.monotonic()
                p = subprocess.run([sys.executable, "-m", "vidcolor", str(clip / meta["gray"]), "--reference-map", str(mp),
                                    "--temporal", m, "-o", str(out), "-q", "--overwrite", *a.extra.split()],
                                   capture_output=True, text=True)
                if p.returncode:
                    raise SystemExit(p.stderr)
                wall = time.monotonic() - t0
                frames, _ = q.video(out)
                n = min(len(frames), len(gt))
                rows[m][clip.name] = {"warp": warp_error(frames, flows, starts),
                                      "cwarp": warp_error(frames, flows, starts, True), "cdc": q.cdc(frames, starts),
                                      "psnr": float(np.mean([q.psnr(frames[i], gt[i]) for i in range(n)])),
                                      "wall": wall}
            print(clip.name, " | ".join(f"{m}: warp {r[clip.name]['warp']:.3f} chroma {r[clip.name]['cwarp']:.4f} cdc {r[clip.name]['cdc']:.5f} "
                                        f"psnr {r[clip.name]['psnr']:.2f}" for m, r in rows.items()), flush=True)
    for m, r in rows.items():
        mean = {k: np.mean([v[k] for v in r.values()]) for k in ("warp", "cwarp", "cdc", "psnr")}
        print(f"MEAN {m:13s}: warp error {mean['warp']:.4f} (chroma only {mean['cwarp']:.5f})  cdc {mean['cdc']:.5f}  "
              f"psnr {mean['psnr']:.2f}")
    if "off" in rows:
        off = {k: np.mean([v[k] for v in rows["off"].values()]) for k in ("warp", "cwarp", "cdc")}
        gt_cdc = np.mean([v["cdc"] for v in rows["gt"].values()])
        for m in modes:
            if m == "off":
                continue
            cur = {k: np.mean([v[k] for v in rows[m].values()]) for k in ("warp", "cwarp", "cdc")}
            print(f"{m}: warp error {100 * (1 - cur['warp'] / off['warp']):+.1f}% lower than off "
                  f"(chroma only {100 * (1 - cur['cwarp'] / off['cwarp']):+.1f}%), "
                  f"cdc {100 * (1 - cur['cdc'] / off['cdc']):+.1f}% lower than off, "
                  f"cdc / ground truth's {cur['cdc'] / gt_cdc:.3f}")


def speed(a) -> None:
    from synth import make_clip, make_still

    w, h = 854, 480
    work = Path(a.workdir or tempfile.mkdtemp(prefix="vidcolor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n = a.speed_seconds * 24
    clip = work / f"clip_{w}x{h}_{a.speed_seconds}s.mp4"
    if not clip.exists():
        make_clip(clip, n=n, w=w, h=h, fps=24, audio=True, options={"preset": "ultrafast", "crf": "18"})
    still = make_still(work / "still.png", w, h)
    walls = {}
    for m in ("off", "forward", "off", "forward"):  # interleaved, twice: the best of each
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "vidcolor", str(clip), "--reference", str(still), "--temporal", m,
                            "-o", str(work / f"out_{m}.mp4"), "--overwrite", "-q", *a.extra.split()],
                           capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(p.stderr)
        walls[m] = min(walls.get(m, 1e9), time.monotonic() - t0)
    print(f"480p exemplar, {n} frames: temporal off {n / walls['off']:.2f} fps ({walls['off']:.1f} s) | "
          f"forward {n / walls['forward']:.2f} fps ({walls['forward']:.1f} s) | "
          f"extra run time {100 * (walls['forward'] / walls['off'] - 1):+.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=HERE.parent.parent / "shared" / "eval" / "set")
    ap.add_argument("--modes", default="off,forward,bidirectional")
    ap.add_argument("--speed-seconds", type=int, default=20, help="length of the 480p clip; 0 skips part 2")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--extra", default="", help="more vidcolor options, e.g. '--colorizer transfer'")
    ap.add_argument("--workdir")
    a = ap.parse_args()
    if not a.skip_quality:
        quality(a, _quality_module(a.set))
    if a.speed_seconds:
        speed(a)


if __name__ == "__main__":
    main()
