"""What black-and-white input costs TransNetV2: F1 of the `transnet` detector
on colour clips with known cuts, given RGB thumbnails against the same clips'
luminance replicated to three channels; and its speed.

    python benchmarks/transnet_gray_vs_rgb.py [--cuts 60] [--hard-cuts 30] [--seed 0]
        [--device cpu] [--photos ../shared/data/photos] [--montage ../shared/eval/src/montage.mp4]

Clips, all rendered straight to 48x27 thumbnails:
- photos: shots made from the colour photos with a slow pan and zoom (as
  shared/eval/make_montage.py does), 12 to 120 frames a shot, a different
  photo after every cut;
- views+look-alikes: 12 to 60 frames a shot; every other cut goes from a wide
  to a close view of the same photo, the others to the photo nearest in mean
  luminance, so brightness alone does not give the cut away;
- montage.mp4, the dev clip (cuts at 40, 80, 120), decoded and scaled.

For each clip and input (rgb, gray): precision, recall and F1 with the
boundary frame-exact and within 2 frames at the default threshold, the kinds
given to the cuts found, the lowest single-frame peak at a cut against the
highest elsewhere (the margin the threshold has), and frames per second of
the network with its windowing. Then F1 over all clips by threshold, and the
overall speed.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from vidcolor.shots.transnet import TransNetDetector  # noqa: E402

W, H = 48, 27


def gray(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma, (N, 27, 48) uint8."""
    return cv2.cvtColor(rgb.reshape(-1, W, 3), cv2.COLOR_RGB2GRAY).reshape(len(rgb), H, W)


def shot(img: np.ndarray, n: int, rng: np.random.Generator, scale=(0.6, 0.85)) -> list[np.ndarray]:
    """``n`` RGB thumbnails panning and zooming slowly across ``img``; the
    first crop is ``scale`` (a range) of the image's width."""
    ih, iw = img.shape[:2]
    w0 = int(min(iw, ih * 16 / 9) * rng.uniform(*scale))
    h0 = int(w0 * 9 / 16)
    x0, y0 = rng.uniform(0, iw - w0), rng.uniform(0, ih - h0)
    dx, dy = rng.uniform(-1.5, 1.5, 2) * iw / 640  # as make_montage.py: up to 1.5 px a frame at 640 wide
    out = []
    for i in range(n):
        z = 1 - 0.2 * i / max(n, 40)  # make_montage.py zooms in by a fifth over 40 frames
        w, h = int(w0 * z), int(h0 * z)
        x = int(np.clip(x0 + dx * i + (w0 - w) / 2, 0, iw - w))
        y = int(np.clip(y0 + dy * i + (h0 - h) / 2, 0, ih - h))
        out.append(cv2.resize(img[y:y + h, x:x + w], (W, H), interpolation=cv2.INTER_AREA))
    return out


def load(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def photo_clip(photos: Path, cuts: int, seed: int, hard: bool = False) -> tuple[np.ndarray, list[int]]:
    """RGB thumbnails (N, 27, 48, 3) and the first frame of every shot but the first.

    ``hard``: every other cut goes to another view of the same photo (a wide
    and a close crop), the others to the unused photo nearest in mean
    luminance, so that brightness alone does not give the cut away.
    """
    rng = np.random.default_rng(seed)
    files = sorted(photos.glob("*.jpg"))
    if len(files) < 2:
        raise SystemExit(f"no photos in {photos}")
    imgs = [load(f) for f in files]
    means = np.array([gray(cv2.resize(im, (W, H))[None])[0].mean() for im in imgs])
    frames: list[np.ndarray] = []
    starts = []
    k = int(rng.integers(len(imgs)))
    unused = set(range(len(imgs))) - {k}
    for c in range(cuts + 1):
        n = int(rng.integers(12, 121 if not hard else 61))
        if c:
            starts.append(len(frames))
            if not hard:
                k = int(rng.choice(sorted(unused)))
            elif c % 2 == 0:
                k = min(unused, key=lambda j: abs(means[j] - means[k]))
            unused = (unused - {k}) or set(range(len(imgs))) - {k}
        scale = (0.6, 0.85) if not hard else [(0.75, 0.95), (0.3, 0.45)][c % 2]
        frames += shot(imgs[k], n, rng, scale)
    return np.stack(frames), starts


def video_thumbs(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([cv2.resize(f.to_ndarray(format="rgb24"), (W, H), interpolation=cv2.INTER_AREA)
                         for f in c.decode(video=0)])


def score(found: list[int], truth: list[int], tol: int) -> tuple[int, int, int]:
    """True positives, false positives, false negatives; one-to-one, nearest first."""
    pairs = sorted((abs(f - t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth) if abs(f - t) <= tol)
    used_f, used_t = set(), set()
    for _, i, j in pairs:
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
    tp = len(used_f)
    return tp, len(found) - tp, len(truth) - tp


def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def margins(p1: np.ndarray, truth: list[int]) -> tuple[float, float]:
    """Lowest single-frame peak at a cut (frames b-3..b for a cut at b), highest peak away from every cut."""
    at = [float(p1[max(0, b - 3):b + 1].max()) for b in truth]
    near = np.zeros(len(p1), bool)
    for b in truth:
        near[max(0, b - 3):b + 2] = True
    return min(at, default=1.0), float(p1[~near].max(initial=0.0))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cuts", type=int, default=60, help="cuts in the clip of photos")
    ap.add_argument("--hard-cuts", type=int, default=30, help="cuts in the clip of other views and look-alikes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--photos", type=Path, default=HERE.parent.parent / "shared" / "data" / "photos")
    ap.add_argument("--montage", type=Path, default=HERE.parent.parent / "shared" / "eval" / "src" / "montage.mp4")
    a = ap.parse_args(argv)

    clips = []
    if a.cuts:
        clips.append(("photos", *photo_clip(a.photos, a.cuts, a.seed)))
    if a.hard_cuts:
        clips.append(("views+look-alikes", *photo_clip(a.photos, a.hard_cuts, a.seed + 1, hard=True)))
    if a.montage.is_file():
        clips.append(("montage.mp4", video_thumbs(a.montage), [40, 80, 120]))
    det = TransNetDetector(device=a.device, threshold=a.threshold)
    sweep = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    frames, seconds = 0, 0.0
    totals: dict = {}
    for name, rgb, truth in clips:
        print(f"{name}: {len(rgb)} frames, {len(truth)} cuts")
        for mode, thumbs in (("rgb", rgb), ("gray", gray(rgb))):
            t0 = time.perf_counter()
            p1, pm = det.predict(list(thumbs))
            dt = time.perf_counter() - t0
            frames, seconds = frames + len(thumbs), seconds + dt
            lum = gray(thumbs).mean(axis=(1, 2)) if thumbs.ndim == 4 else thumbs.mean(axis=(1, 2))
            for thr in sweep:
                det.threshold = thr
                b = [t.boundary for t in det.decide(p1, pm, lum)]
                for tol in (0, 2):
                    acc = totals.setdefault((mode, thr, tol), [0, 0, 0])
                    for i, v in enumerate(score(b, truth, tol)):
                        acc[i] += v
            det.threshold = a.threshold
            found = det.decide(p1, pm, lum)
            b = [t.boundary for t in found]
            kinds: dict = {}
            for t in found:
                if any(abs(t.boundary - s) <= 2 for s in truth):
                    kinds[t.kind] = kinds.get(t.kind, 0) + 1
            row = ["±{}: P {:.3f} R {:.3f} F1 {:.3f}".format(tol, *f1(*score(b, truth, tol))) for tol in (0, 2)]
            lo, hi = margins(p1, truth)
            print(f"  {mode:4s} {' | '.join(row)} | found {len(found)}, kinds {kinds} | "
                  f"lowest peak at a cut {lo:.3f}, highest elsewhere {hi:.3f} | {len(thumbs) / dt:.0f} frames/s")
            missed = [s for s in truth if all(abs(x - s) > 2 for x in b)]
            extra = [(t.boundary, t.kind, round(t.score, 2)) for t in found if all(abs(t.boundary - s) > 2 for s in truth)]
            off = [(t.boundary - s) for t in found for s in truth if 0 < abs(t.boundary - s) <= 2]
            if missed or extra or off:
                print(f"       missed {missed} extra {extra} off by {off}")
    print(f"all clips, F1 frame-exact / within 2 frames, by threshold (default {a.threshold}):")
    for mode in ("rgb", "gray"):
        print(f"  {mode:4s} " + " | ".join(
            "{}: {:.3f} / {:.3f}".format(thr, f1(*totals[(mode, thr, 0)])[2], f1(*totals[(mode, thr, 2)])[2])
            for thr in sweep))
    import torch

    print(f"speed ({a.device}, {torch.get_num_threads()} threads, batch {det.batch}): "
          f"{frames / seconds:.1f} frames/s over {frames} frames")


if __name__ == "__main__":
    main()
