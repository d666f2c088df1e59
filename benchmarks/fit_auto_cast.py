"""Fit the ``auto`` decoding's gray-world ``cast`` (and gain again) on the validation photos, from the
fitted decoding in the weights; ``--write`` stores the choice there.

    python benchmarks/fit_auto_cast.py [--weights FILE] [--floor 0.55] [--side 512] [--write]

The same split, objective and colourfulness floor as ``fit_auto_decoding.py``
(whose stages this continues: a fifth), so the choice is never made on the
development clips or the test photos.
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
from fit_auto_decoding import best, show, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="auto weights [default: the packaged file]")
    ap.add_argument("--floor", type=float, default=0.55, help="least mean colourfulness, of the truth's")
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--write", action="store_true", help="store the chosen decoding in the weights' metadata")
    a = ap.parse_args()
    from vidcolor.config import AutoConfig
    from vidcolor.models import get_colorizer

    c = get_colorizer("auto", device=torch.device("cpu"), config=AutoConfig(weights=a.weights))
    dec = c.decoding
    photos = [(p.name, *load_photo(p, a.side)) for p in split("val")]
    s = Scored(c, photos)
    print(f"{len(photos)} val photos; gray psnr {s.gray.mean():.2f}; from {json.dumps(dec.to_dict())}")
    rows = [(dec.with_(cast=cast, gain=round(dec.gain * f, 3)), None)
            for cast, f in itertools.product([0.0, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0],
                                            [1.0, 1.05, 1.1, 1.15, 1.2, 1.3])]
    rows = [(d, s.score(d)) for d, _ in rows]
    show("5: gray-world cast x gain", rows, ["cast", "gain"])
    choice, r = best(rows, a.floor)
    print(f"\nCHOSEN {json.dumps(choice.to_dict())}")
    print(f"validation: psnr {r['psnr']:.2f} (gray {s.gray.mean():.2f}, {r['gain']:+.2f} dB; worst photo "
          f"{r['worst']:+.2f}), colourfulness ratio {r['ratio']:.2f}")
    if a.write:
        fit = dict(c.net.meta.get("decoding_fit", {}))
        fit.update({"psnr": round(r["psnr"], 3), "ratio": round(r["ratio"], 3),
                    "command": "python benchmarks/fit_auto_decoding.py --write; "
                               "python benchmarks/fit_auto_cast.py --write"})
        write(a.weights, choice, fit)


if __name__ == "__main__":
    sys.exit(main())
