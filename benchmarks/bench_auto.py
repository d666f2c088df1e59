"""Quality of the auto colorizer on held-out photos, against a gray floor.

    python benchmarks/bench_auto.py [--data ../shared/data/photos] [--holdout 12] [--weights FILE]
                                    [--temperature 0.38 1.0] [--side 512] [--sheet sheet.png]

The held-out photos are those ``vidcolor train auto`` kept out of training
(the same hash split, :func:`vidcolor.train.auto.split_photos`). Each is
brought to at most ``--side`` pixels, reduced to its Lab L, colourised, and
put back together with its true L (Lab -> sRGB). Printed per photo and as a
mean: PSNR (RGB, 8 bit) against the original, and Hasler-Suesstrunk
colourfulness, for the gray floor (a/b = 0), the auto colorizer at each
temperature, and the ground truth; ``ratio`` is mean colourfulness over the
ground truth's (as ``../shared/eval/quality.py`` reports it). ``--sheet``
writes a contact sheet: ground truth, gray, auto at each temperature.
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


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk 2003 on 8-bit RGB."""
    r, g, b = [rgb[..., i].astype(np.float64) for i in range(3)]
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def lab_rgb8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    lab = np.dstack([L, ab]).astype(np.float32)
    return (np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1) * 255 + 0.5).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "photos"))
    ap.add_argument("--holdout", type=int, default=12)
    ap.add_argument("--weights", help="auto weights [default: the packaged file]")
    ap.add_argument("--temperature", type=float, nargs="+", default=[0.38, 1.0])
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--work-size", type=int, default=224)
    ap.add_argument("--sheet", help="write a contact sheet (PNG) here")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from vidcolor.config import AutoConfig
    from vidcolor.io.image import read_image
    from vidcolor.models import get_colorizer
    from vidcolor.train.auto import split_photos
    from vidcolor.train.exemplar import list_photos

    _, held = split_photos(list_photos([a.data]), a.holdout)
    colorizers = {t: get_colorizer("auto", device=torch.device("cpu"),
                                   config=AutoConfig(weights=a.weights, temperature=t, work_size=a.work_size))
                  for t in a.temperature}
    meta = next(iter(colorizers.values())).net.meta
    print(f"auto weights: {a.weights or 'packaged'}; trained {meta.get('steps')} steps on {meta.get('photos')} photos; "
          f"{len(held)} held-out photos, long side <= {a.side}")
    names = ["gray"] + [f"auto T={t:g}" for t in a.temperature]
    rows, sheet, secs = [], [], []
    for p in held:
        rgb = read_image(p)
        if rgb.dtype != np.uint8:
            rgb = (rgb / 257).astype(np.uint8)
        s = a.side / max(rgb.shape[:2])
        if s < 1:
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_AREA)
        lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        L = lab[..., 0]
        outs = [lab_rgb8(L, np.zeros_like(lab[..., 1:]))]
        for c in colorizers.values():
            t0 = time.perf_counter()
            c.begin_shot(None)
            ab = c.colorize(torch.from_numpy(L)[None, None])[0].permute(1, 2, 0).numpy()
            secs.append(time.perf_counter() - t0)
            outs.append(lab_rgb8(L, ab))
        row = {"photo": p.name, "gt_cf": colorfulness(rgb)}
        for n, o in zip(names, outs):
            row[n] = (psnr(o, rgb), colorfulness(o))
        rows.append(row)
        if a.sheet:
            h = 160
            tiles = [cv2.resize(x, (round(x.shape[1] * h / x.shape[0]), h), interpolation=cv2.INTER_AREA)
                     for x in [rgb, *outs]]
            sheet.append(np.hstack(tiles))
    w = max(len(r["photo"]) for r in rows)
    print(f"{'photo':<{w}}  {'gt cf':>6}  " + "  ".join(f"{n + ' psnr/cf':>22}" for n in names))
    for r in rows:
        print(f"{r['photo']:<{w}}  {r['gt_cf']:6.1f}  " + "  ".join(f"{r[n][0]:12.2f} /{r[n][1]:7.1f}" for n in names))
    gt = np.mean([r["gt_cf"] for r in rows])
    print(f"MEAN ground truth: colourfulness {gt:.1f}")
    for n in names:
        ps = np.mean([r[n][0] for r in rows])
        cf = np.mean([r[n][1] for r in rows])
        print(f"MEAN {n}: psnr {ps:.2f} colourfulness {cf:.1f} ratio {cf / gt:.2f}")
    print(f"time per photo and temperature: {np.median(secs) * 1000:.0f} ms (median, CPU)")
    if a.sheet:
        wmax = max(x.shape[1] for x in sheet)
        sheet = [np.pad(x, ((0, 0), (0, wmax - x.shape[1]), (0, 0))) for x in sheet]
        cv2.imwrite(a.sheet, cv2.cvtColor(np.vstack(sheet), cv2.COLOR_RGB2BGR))
        print(f"contact sheet: {a.sheet} (columns: ground truth, {', '.join(names)})")


if __name__ == "__main__":
    sys.exit(main())
