"""Fit the ``auto`` colorizer's decoding on the validation photos, and (``--write``) store it in the weights.

    python benchmarks/fit_auto_decoding.py [--weights FILE] [--floor 0.6] [--side 512] [--write]

The validation photos are ``configs/train-auto.yaml``'s ``val`` split (never
trained on, never the test split). Their logits are computed once (the
photo, and the mirrored view at 0.75 of the working size); then a staged grid
search over :class:`vidcolor.models.auto_decode.Decoding`:

1. temperature x spread x power x gain, no consensus, one view;
2. the second view's agreement scale;
3. each consensus (``grid``, ``superpixel``, ``guided``) x cell x luminance
   scale x keep, measured against each other (PSNR, colourfulness, ms per photo);
4. gain and power again, and the shot factor.

The objective: the highest mean PSNR (less a tenth of a dB for each dB the
worst photo falls under gray - 1 dB) whose mean colourfulness is at least
``--floor`` of the truth's (and at most 1.1). A second view is taken only if
it gains ``--view-gain`` dB (it costs time at every frame); a consensus if it
costs at most ``--consensus-cost`` dB (it removes hue patches that PSNR hardly
sees: ``patch``, the a/b spread where L is even). Every stage's table is printed.
``--write`` puts the chosen decoding (and the figures) in the weights'
metadata (``decoding``, ``decoding_fit``), where the colorizer reads it.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_photos import Scored, load_photo, split  # noqa: E402


WORST = 0.1  # objective: mean PSNR + WORST * (how far the worst photo falls under gray - 1 dB, negative)


def ok(r: dict, floor: float) -> bool:
    return floor <= r["ratio"] <= 1.1


def objective(r: dict) -> float:
    return r["psnr"] + WORST * min(0.0, r["worst"] + 1.0)


def best(rows: list[tuple], floor: float):
    good = [x for x in rows if ok(x[1], floor)]
    if not good:  # nothing reaches the floor: the most colourful
        return max(rows, key=lambda x: x[1]["ratio"])
    return max(good, key=lambda x: objective(x[1]))


def show(title: str, rows: list[tuple], keys: list[str]) -> None:
    print(f"\n== {title}")
    print("  ".join(f"{k:>10}" for k in keys)
          + f"  {'psnr':>7} {'d_gray':>6} {'worst':>6} {'ratio':>6} {'patch':>6} {'ms':>6}")
    for dec, r in rows:
        d = dec.to_dict()
        print("  ".join(f"{str(d[k]):>10}" for k in keys) + f"  {r['psnr']:7.2f} {r['gain']:+6.2f} {r['worst']:+6.2f}"
              f" {r['ratio']:6.2f} {r['patch']:6.2f} {r['ms']:6.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="auto weights [default: the packaged file]")
    ap.add_argument("--split", default="val", choices=["val", "train"], help="never test")
    ap.add_argument("--floor", type=float, default=0.55, help="least mean colourfulness, of the truth's")
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--view-gain", type=float, default=0.2, help="least PSNR gain that pays for a second view")
    ap.add_argument("--consensus-cost", type=float, default=0.1, help="most PSNR a consensus may cost")
    ap.add_argument("--write", action="store_true", help="store the chosen decoding in the weights' metadata")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from vidcolor.config import AutoConfig
    from vidcolor.models import get_colorizer
    from vidcolor.models.auto_decode import LEGACY

    c = get_colorizer("auto", device=torch.device("cpu"), config=AutoConfig(weights=a.weights, decoding="legacy"))
    photos = [(p.name, *load_photo(p, a.side)) for p in split(a.split)]
    s = Scored(c, photos)
    print(f"{len(photos)} {a.split} photos; gray psnr {s.gray.mean():.2f}; weights {a.weights or 'packaged'} "
          f"({c.net.meta.get('steps')} steps); objective: best psnr with colourfulness ratio in [{a.floor}, 1.1]")
    legacy = s.score(LEGACY)
    show("legacy (annealed mean T 0.38)", [(LEGACY, legacy)], ["temperature"])

    keys = ["temperature", "spread", "power", "gain"]
    rows = [(LEGACY.with_(temperature=t, spread=sp, power=pw, gain=g), None)
            for t, sp, pw, g in itertools.product([0.38, 0.5, 0.7, 1.0], [0.0, 15.0, 25.0, 40.0], [0.5, 1.0],
                                                  [1.0, 1.3, 1.7])]
    rows = [(d, s.score(d)) for d, _ in rows if not (d.spread == 0 and d.power != 1.0)]
    rows.sort(key=lambda x: -x[1]["psnr"])
    show("1: temperature x spread x power x gain (best 25 by psnr)", rows[:25], keys)
    dec = best(rows, a.floor)[0]
    print(f"-> {dec}")

    rows = [(dec.with_(agree=ag), None) for ag in [0.0, 10.0, 20.0, 40.0]]
    rows = [(d, s.score(d)) for d, _ in rows]
    show("2: second view (mirrored, 0.75x; costs about half as much again): agreement scale", rows, ["agree"])
    second = best(rows, a.floor)
    if second[1]["psnr"] >= rows[0][1]["psnr"] + a.view_gain:
        dec = second[0]
    print(f"-> agree {dec.agree} (a second view must gain >= {a.view_gain} dB: it costs time at every frame)")

    keys = ["consensus", "cell", "lum", "keep"]
    rows = [(dec, s.score(dec))]
    for kind, cell, lum, keep in itertools.product(["grid", "superpixel", "guided"], [4, 8], [5.0, 10.0], [0.0, 0.3]):
        d = dec.with_(consensus=kind, cell=cell, lum=lum, keep=keep)
        rows.append((d, s.score(d)))
    show("3: consensus (one object, one colour; patch: a/b spread where L is even)", rows, keys)
    pooled = best(rows[1:], a.floor)
    if pooled[1]["psnr"] >= rows[0][1]["psnr"] - a.consensus_cost:  # fewer hue patches for at most this much PSNR
        dec = pooled[0]
    print(f"-> consensus {dec.consensus} (taken if within {a.consensus_cost} dB of none)")

    keys = ["gain", "power", "shot", "reference"]
    rows = [(dec.with_(gain=round(g, 3), power=pw, shot=sh, reference=ref), None)
            for g, pw, sh, ref in itertools.product([dec.gain * f for f in (0.85, 1.0, 1.15, 1.3, 1.5)], [0.5, 1.0],
                                                    [0.0, 1.0, 2.0, 4.0], [0.3, 0.5, 0.7])]
    rows = [(d, s.score(d)) for d, _ in rows if not (d.shot == 0 and d.reference != 0.5)]
    show("4: gain, power, shot factor", rows, keys)
    choice, r = best(rows, a.floor)
    print(f"\nCHOSEN {json.dumps(choice.to_dict())}")
    print(f"validation: psnr {r['psnr']:.2f} (gray {s.gray.mean():.2f}, {r['gain']:+.2f} dB; worst photo "
          f"{r['worst']:+.2f}), colourfulness ratio {r['ratio']:.2f}; legacy: psnr {legacy['psnr']:.2f} "
          f"({legacy['gain']:+.2f}), ratio {legacy['ratio']:.2f}")
    if a.write:
        write(a.weights, choice, {"split": a.split, "photos": len(photos), "floor": a.floor,
                                  "psnr": round(r["psnr"], 3),
                                  "gray": round(float(s.gray.mean()), 3), "ratio": round(r["ratio"], 3),
                                  "command": "python benchmarks/fit_auto_decoding.py --write"})


def write(weights: str | None, dec, fit: dict) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from vidcolor.weights import resolve

    path = resolve("auto.weights", weights).require()
    with safe_open(str(path), framework="pt") as fh:
        md = dict(fh.metadata() or {})
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    meta = json.loads(md.get("meta", "{}"))
    meta["decoding"], meta["decoding_fit"] = dec.to_dict(), fit
    md["meta"] = json.dumps(meta)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=md)
    tmp.replace(path)
    print(f"wrote the decoding into {path}")


if __name__ == "__main__":
    sys.exit(main())
