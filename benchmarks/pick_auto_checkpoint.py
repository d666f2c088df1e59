"""Pick the ``auto`` checkpoint to ship on the validation photos, with decodings like the real one.

    python benchmarks/pick_auto_checkpoint.py [--config configs/train-auto.yaml] [--floor 0.6] [--side 512]

For every ``step_N.pt`` of the run folder (``vidcolor train auto`` keeps one
per validation step), the decoder is exported and scored on the ``val``
photos under a few decodings (the plain annealed mean and calibrated ones);
a checkpoint's score is its best mean PSNR whose colourfulness ratio is in
[floor, 1.1]. Prints the table and the command that exports the winner
(``vidcolor train auto --config ... --export step_N``); the decoding itself is
then fitted on the exported weights by ``fit_auto_decoding.py``.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_photos import ROOT, Scored, load_photo, split  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "train-auto.yaml"))
    ap.add_argument("--floor", type=float, default=0.55)
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--every", type=int, default=1, help="score every n-th checkpoint")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from vidcolor.config import AutoConfig
    from vidcolor.models import get_colorizer
    from vidcolor.models.auto_decode import LEGACY
    from vidcolor.train.auto import export_auto, load_train_config

    cfg = load_train_config(a.config)
    out = Path(cfg.out)
    steps = sorted(int(m.group(1)) for p in out.glob("step_*.pt") if (m := re.fullmatch(r"step_(\d+)\.pt", p.name)))
    steps = steps[::-1][::a.every][::-1]
    photos = [(p.name, *load_photo(p, a.side)) for p in split("val", a.config)]
    decodings = [LEGACY] + [LEGACY.with_(temperature=t, spread=sp, gain=g)
                            for t in (0.5, 0.7) for sp in (25.0, 40.0) for g in (1.0, 1.3, 1.6)]
    print(f"{len(photos)} val photos; {len(steps)} checkpoints; {len(decodings)} decodings each")
    print(f"{'step':>6} {'val_ce':>7} {'legacy psnr':>11} {'ratio':>6}   {'best psnr':>9} {'ratio':>6}  decoding")
    results = []
    cache_path = out / "pick_cache.json"  # a checkpoint is scored once (the run may go on)
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    for step in steps:
        if str(step) in cache and cache[str(step)]["floor"] == a.floor:
            print(cache[str(step)]["line"])
            results.append((cache[str(step)]["psnr"], step))
            continue
        weights = out / f"auto_step_{step}.safetensors"
        shutil.copyfile(export_auto(cfg, which=f"step_{step}"), weights)
        c = get_colorizer("auto", device=torch.device("cpu"),
                          config=AutoConfig(weights=str(weights), decoding="legacy"))
        s = Scored(c, photos)
        rs = [(d, s.score(d)) for d in decodings]
        good = [x for x in rs if a.floor <= x[1]["ratio"] <= 1.1] or [max(rs, key=lambda x: x[1]["ratio"])]
        d, r = max(good, key=lambda x: x[1]["psnr"])
        results.append((r["psnr"], step))
        line = (f"{step:6d} {c.net.meta.get('val_ce') or 0:7.4f} {rs[0][1]['psnr']:11.2f} {rs[0][1]['ratio']:6.2f}   "
                f"{r['psnr']:9.2f} {r['ratio']:6.2f}  T {d.temperature} spread {d.spread} gain {d.gain}  "
                f"(gray {s.gray.mean():.2f})")
        print(line, flush=True)
        cache[str(step)] = {"floor": a.floor, "psnr": r["psnr"], "line": line}
        cache_path.write_text(json.dumps(cache))
    psnr, step = max(results)
    print(f"PICK step {step} (val psnr {psnr:.2f}): vidcolor train auto --config configs/train-auto.yaml "
          f"--export step_{step}")


if __name__ == "__main__":
    sys.exit(main())
