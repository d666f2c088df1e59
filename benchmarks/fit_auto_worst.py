"""Fit the ``auto`` decoding on the validation photos in the issue's order of targets, with a leave-one-out check.

    python benchmarks/fit_auto_worst.py [--weights FILE] [--floor 0.5] [--side 512] [--threads 1] [--write]

``fit_auto_decoding.py`` maximises mean PSNR at a colourfulness floor and
charges the worst photo only a tenth of a dB per dB; issue 21's targets come
in another order: every photo within 1 dB of gray first, then colourfulness
(``--floor``..1.1 of the truth's), then mean PSNR. Here a grid of decodings
(temperature, spread, power, gain and the shot factor, an image-level gate on
mean confidence; no second view, no consensus) is scored on the ``val``
photos and one is chosen by that order: among those with the worst photo >=
gray - 1 dB and the ratio in [floor, 1.1], the highest mean PSNR; if none,
among those in the ratio band, the best worst photo. The choice made on 12
photos is scored on the 13th, for each photo in turn (leave one out): how far
the choice carries to a photo it was not made on. ``--write`` stores the
all-photo choice in the weights' metadata (``decoding``, ``decoding_fit``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_photos import Scored, colorfulness, load_photo, psnr, split  # noqa: E402


def grid() -> list:
    """The decodings tried (300): temperature x spread x power x gain x shot factor (and its reference)."""
    from vidcolor.models.auto_decode import LEGACY

    return [LEGACY.with_(temperature=t, spread=sp, power=pw, gain=g, shot=sh, reference=ref)
            for t, sp, pw, g, sh, ref in itertools.product([0.7, 1.0], [15.0, 25.0, 40.0], [0.5, 1.0],
                                                            [1.0, 1.3, 1.7, 2.2, 2.6], [0.0, 1.0, 2.0], [0.3, 0.5])
            if not (sh == 0 and ref != 0.5)]


def choose(gain: np.ndarray, cf: np.ndarray, gt_cf: np.ndarray, idx: np.ndarray, floor: float) -> int:
    """The decoding (row of the (D, P) per-photo PSNR gains over gray and colourfulness) chosen on photos ``idx``."""
    ratio = cf[:, idx].mean(1) / gt_cf[idx].mean()
    worst = gain[:, idx].min(1)
    mean = gain[:, idx].mean(1)
    band = (ratio >= floor) & (ratio <= 1.1)
    ok = band & (worst >= -1.0)
    if ok.any():
        return int(np.flatnonzero(ok)[np.argmax(mean[ok])])
    if band.any():
        return int(np.flatnonzero(band)[np.argmax(worst[band] + 1e-3 * mean[band])])
    return int(np.argmax(ratio))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="auto weights [default: the packaged file]")
    ap.add_argument("--floor", type=float, default=0.5, help="least mean colourfulness, of the truth's")
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="store the chosen decoding in the weights' metadata")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from vidcolor.config import AutoConfig
    from vidcolor.models import get_colorizer

    c = get_colorizer("auto", device=torch.device("cpu"), config=AutoConfig(weights=a.weights, decoding="legacy"))
    photos = [(p.name, *load_photo(p, a.side)) for p in split("val")]
    s = Scored(c, photos)
    decs = grid()
    gain, cf = [], []
    for d in decs:
        outs = s.outputs(d)
        gain.append([psnr(o, rgb) - g for o, (_, rgb, _), g in zip(outs, photos, s.gray)])
        cf.append([colorfulness(o) for o in outs])
    gain, cf = np.array(gain), np.array(cf)
    gt = s.gt_cf
    n = len(photos)
    k = choose(gain, cf, gt, np.arange(n), a.floor)
    ratio = cf[k].mean() / gt.mean()
    print(f"{n} val photos; weights {a.weights or 'packaged'} ({c.net.meta.get('steps')} steps); "
          f"{len(decs)} decodings; order: worst >= -1 dB, ratio in [{a.floor}, 1.1], then mean psnr")
    print(f"CHOSEN {json.dumps(decs[k].to_dict())}")
    print(f"validation (in sample): {gain[k].mean():+.2f} dB over gray (psnr {s.gray.mean() + gain[k].mean():.2f}), "
          f"worst photo {gain[k].min():+.2f} ({photos[int(np.argmin(gain[k]))][0]}), colourfulness ratio {ratio:.2f}")
    loo_gain, loo_cf, picks = np.zeros(n), np.zeros(n), []
    for i in range(n):
        rest = np.array([j for j in range(n) if j != i])
        ki = choose(gain, cf, gt, rest, a.floor)
        picks.append(ki)
        loo_gain[i], loo_cf[i] = gain[ki, i], cf[ki, i]
    print(f"validation (leave one out): {loo_gain.mean():+.2f} dB over gray, worst photo {loo_gain.min():+.2f} "
          f"({photos[int(np.argmin(loo_gain))][0]}), colourfulness ratio {loo_cf.mean() / gt.mean():.2f}; "
          f"{len(set(picks))} distinct choices")
    for (name, _, _), g, gl in zip(photos, gain[k], loo_gain):
        print(f"  {name:<66} {g:+6.2f} {gl:+6.2f}")
    if a.write:
        from fit_auto_decoding import write

        write(a.weights, decs[k], {"split": "val", "photos": n, "floor": a.floor, "order": "worst, ratio, psnr",
                                   "psnr": round(float(s.gray.mean() + gain[k].mean()), 3),
                                   "gray": round(float(s.gray.mean()), 3), "ratio": round(float(ratio), 3),
                                   "loo": {"gain": round(float(loo_gain.mean()), 3),
                                           "worst": round(float(loo_gain.min()), 3),
                                           "ratio": round(float(loo_cf.mean() / gt.mean()), 3)},
                                   "command": "python benchmarks/fit_auto_worst.py --write"})


if __name__ == "__main__":
    sys.exit(main())
