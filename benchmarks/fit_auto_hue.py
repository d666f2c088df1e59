"""Fit the ``auto`` decoding's chroma gain per hue (and gain and cast again) on the validation photos,
worst photo first; ``--write`` stores the choice in the weights' metadata.

    python benchmarks/fit_auto_hue.py [--weights FILE] [--sectors 8] [--floor 0.6] [--limit -1.0] [--write]

Continues ``fit_auto_decoding.py`` and ``fit_auto_cast.py`` (a sixth stage,
on the same ``val`` split: never the test photos, never the development
clips). From the decoding in the weights, with no hue gains:

1. the network's a/b at its cells and the truth's there; each hue sector's
   gain by least squares (the gains interpolated around the circle as
   :func:`vidcolor.models.auto_decode.hue_gain` applies them), each photo
   weighted by 1 / its gray error (so a dB on a nearly gray photo counts as
   much as on a colourful one: the PSNR gain over gray, linearised), ridge
   ``shrink`` toward 1 (no change);
2. shrink x gain x cast scored on the photos (PSNR, colourfulness). The
   choice, the issue's targets in their order: of the rows whose worst
   photo is at least ``--limit`` dB from gray, the most colourful up to
   ``--floor`` of the truth's, then the highest mean PSNR (where no row
   reaches the limit: the best worst photo);
   Every photo is scored with hue gains fitted on the other photos (leave
   one out): the figures are what a photo the fit never saw can expect, and
   the shrink is chosen on them (the in-sample figures are printed beside).

Measured, not shipped (README: "Gains per hue"): the gains it chose lost
colour on the test photos and the development clips. Write them into a copy
(``--weights runs/auto_hue.safetensors --write``) to compare.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_photos import Scored, load_photo, split  # noqa: E402
from fit_auto_decoding import write  # noqa: E402


def cells(s: Scored, dec) -> list[tuple[torch.Tensor, np.ndarray, float]]:
    """Per photo: (the decoded a/b at the network's cells (2, h, w), the truth's a/b there (h, w, 2),
    the photo's weight: 1 / (its gray error x cells))."""
    from vidcolor.models.auto_decode import decode

    out = []
    for (_, rgb, L), (z, _) in zip(s.photos, s.logits):
        L4 = F.adaptive_avg_pool2d(torch.from_numpy(L)[None, None], z.shape[-2:])
        ab, _ = decode(z, s.c.bins, L4, dec)
        lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        t = cv2.resize(lab[..., 1:], (ab.shape[-1], ab.shape[-2]), interpolation=cv2.INTER_AREA)
        out.append((ab[0], t, 1.0 / (float(np.square(t).sum(-1).mean()) + 1.0) / t[..., 0].size))
    return out


def fit_hue(data, k: int, shrink: float) -> tuple:
    """Least-squares hue gains (k sectors), ridge ``shrink`` (of the mean diagonal) toward 1."""
    A, b = np.zeros((k, k)), np.zeros(k)
    for ab, t, w in data:
        p = ab.permute(1, 2, 0).reshape(-1, 2).double().numpy()
        tt = t.reshape(-1, 2).astype(np.float64)
        x = np.mod(np.arctan2(p[:, 1], p[:, 0]) / (2 * np.pi / k), k)
        lo = np.floor(x).astype(int) % k
        frac = x - np.floor(x)
        phi = np.zeros((len(p), k))
        np.add.at(phi, (np.arange(len(p)), lo), 1 - frac)
        np.add.at(phi, (np.arange(len(p)), (lo + 1) % k), frac)
        pp = np.square(p).sum(1)
        A += w * (phi * pp[:, None]).T @ phi
        b += w * phi.T @ (p * tt).sum(1)
    reg = shrink * np.trace(A) / k
    g = 1 + np.linalg.solve(A + reg * np.eye(k), b - A @ np.ones(k))
    return tuple(round(float(x), 3) for x in np.clip(g, 0.0, 2.0))


def choose(rows: list[tuple], floor: float, limit: float):
    """Of the rows whose worst photo is at least ``limit`` dB from gray: the most colourful up to ``floor``
    of the truth's colourfulness (to the hundredth), then the best PSNR; where none is, the best worst photo."""
    good = [x for x in rows if x[1]["worst"] >= limit and x[1]["ratio"] <= 1.1]
    if not good:
        return max(rows, key=lambda x: x[1]["worst"])
    return max(good, key=lambda x: (round(min(x[1]["ratio"], floor), 2), x[1]["psnr"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="auto weights [default: the packaged file]")
    ap.add_argument("--sectors", type=int, default=8)
    ap.add_argument("--floor", type=float, default=0.6, help="colourfulness (of the truth's) sought first")
    ap.add_argument("--limit", type=float, default=-1.0, help="least PSNR of the worst photo, dB from gray")
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="store the chosen decoding in the weights' metadata")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from vidcolor.config import AutoConfig
    from vidcolor.models import get_colorizer

    c = get_colorizer("auto", device=torch.device("cpu"), config=AutoConfig(weights=a.weights))
    base = c.decoding.with_(hue=())
    photos = [(p.name, *load_photo(p, a.side)) for p in split("val")]
    s = Scored(c, photos)
    data = cells(s, base.with_(cast=0.0))
    print(f"{len(photos)} val photos; gray psnr {s.gray.mean():.2f}; from {json.dumps(base.to_dict())}")
    shrinks = [0.03, 0.1, 0.3, 1.0, 3.0, 0.0]  # 0.0 stands for no hue gains
    hues = {sh: (fit_hue(data, a.sectors, sh) if sh else ()) for sh in shrinks}
    loo = {sh: ([fit_hue(data[:i] + data[i + 1:], a.sectors, sh) for i in range(len(data))] if sh
                else [()] * len(data)) for sh in shrinks}
    for sh in shrinks:
        print(f"shrink {sh:g}: hue gains {hues[sh]}")
    rows = []
    for sh, f, cast in itertools.product(shrinks, [0.9, 1.0, 1.1, 1.2, 1.3, 1.45, 1.6, 1.8], [0.0, 0.25]):
        d = base.with_(hue=hues[sh], gain=round(base.gain * f, 3), cast=cast)
        r = s.score([d.with_(hue=h) for h in loo[sh]])  # each photo with hue gains fitted without it
        r["shrink"], r["fit"] = sh, s.score(d)
        rows.append((d, r))
    rows.sort(key=lambda x: (-round(x[1]["ratio"], 2), -x[1]["psnr"]))
    print("\n== 6: hue gains (shrink; 0: none) x gain x cast, scored leaving each photo out of the hue fit;"
          f" best 30 by ratio with the worst photo >= {a.limit}")
    print(f"{'shrink':>7} {'gain':>6} {'cast':>5}   {'psnr':>6} {'d_gray':>6} {'worst':>6} {'ratio':>5}   "
          "in-sample: d_gray worst ratio")
    for d, r in [x for x in rows if x[1]["worst"] >= a.limit][:30]:
        q = r["fit"]
        print(f"{r['shrink']:7g} {d.gain:6.3f} {d.cast:5.2f}   {r['psnr']:6.2f} {r['gain']:+6.2f} {r['worst']:+6.2f} "
              f"{r['ratio']:5.2f}   {q['gain']:+6.2f} {q['worst']:+6.2f} {q['ratio']:5.2f}")
    choice, r = choose(rows, a.floor, a.limit)
    print(f"\nCHOSEN shrink {r['shrink']:g} {json.dumps(choice.to_dict())}")
    for what, q in (("leave one photo out", r), ("in-sample", r["fit"])):
        print(f"validation, {what}: psnr {q['psnr']:.2f} (gray {s.gray.mean():.2f}, {q['gain']:+.2f} dB; worst photo "
              f"{q['worst']:+.2f}), colourfulness ratio {q['ratio']:.2f}; per photo "
              + " ".join(f"{x:+.2f}" for x in q["per_photo"] - s.gray))
    if a.write:
        fit = dict(c.net.meta.get("decoding_fit", {}))
        fit.update({"psnr": round(r["psnr"], 3), "ratio": round(r["ratio"], 3), "worst": round(r["worst"], 3),
                    "floor": a.floor, "limit": a.limit,
                    "command": "python benchmarks/fit_auto_decoding.py --write; "
                               "python benchmarks/fit_auto_cast.py --write; python benchmarks/fit_auto_hue.py --write"})
        write(a.weights, choice, fit)


if __name__ == "__main__":
    sys.exit(main())
