"""Cross-fitting the ``auto`` decoding: choose it on out-of-fold predictions for all 81 non-test photos, not on 13.

    # per fold k = 0..4 (one heavy job at a time): train on the other folds, pick the checkpoint on an inner
    # validation split of them, score the fold's photos under every decoding of fit_auto_worst.py's grid
    python benchmarks/crossfit_auto.py run --name base --fold K [--minutes 10] [--recipe YAML] [--lam L] [--threads 1]
    # the same recipe on all 81 (the first 8 in hash order as the inner validation photos, 73 trained on)
    python benchmarks/crossfit_auto.py run --name base [--minutes 10] [--lam 0.5] [--threads 1]
    # then: the choice on all out-of-fold photos (in sample) and nested (chosen on 4 folds, scored on the 5th)
    python benchmarks/crossfit_auto.py fit --name base [--floor 0.5] [--write WEIGHTS]

The photos are ``configs/train-auto.yaml``'s: the ``test`` split is untouched
(never trained on, never scored here). The other 81 are dealt into 5 folds by
name hash (``TrainAutoConfig.folds``/``fold``: the i-th photo in hash order to
fold i % 5). For fold k, ``run`` writes ``runs/crossfit/NAME/fold_k/train.yaml``
(the shipped recipe's settings, ``minutes`` bounding the schedule as the
shipped run's 40 did, ``val`` 8: the inner validation photos, the first 8 in
hash order of the other folds), trains (``vidcolor train auto``), picks the
checkpoint on the inner validation photos (``pick_auto_checkpoint.py``, the
shipped weights' rule) and computes the logits of fold k's photos with the
picked weights, which never saw them; each photo's PSNR and colourfulness
under every decoding of ``fit_auto_worst.grid()`` (and under the shipped
weights' own decoding) go to ``oof.npz``.

``fit`` joins the folds' ``oof.npz`` and applies ``fit_auto_worst.choose``
(worst photo >= gray - 1 dB first, then colourfulness ratio in [floor, 1.1],
then mean PSNR) to all out-of-fold photos (in sample), and nested: for each
fold, the choice made on the other 4 folds' photos is scored on its photos.
``--write W`` stores the all-photo choice in weights file ``W``'s metadata (a
copy of the shipped weights, say; then ``bench_auto.py --weights W`` scores
the test split once).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_photos import ROOT, Scored, colorfulness, load_photo, psnr  # noqa: E402
from fit_auto_worst import choose, grid  # noqa: E402

FOLDS = 5
INNER_VAL = 8


def fold_dir(name: str, k: int | None) -> Path:
    return ROOT / "runs" / "crossfit" / name / (f"fold_{k}" if k is not None else "all")


def write_config(a, k: int) -> Path:
    """The fold's training config: configs/train-auto.yaml with the fold, the inner val and the overrides."""
    base = yaml.safe_load((ROOT / "configs" / "train-auto.yaml").read_text())
    if a.recipe:  # its training settings; the photos and their splits stay the cross-fitting's
        keep = {"data", "out", "test", "val", "exclude", "folds", "fold"}
        base.update({key: v for key, v in yaml.safe_load(Path(a.recipe).read_text()).items() if key not in keep})
    out = fold_dir(a.name, k)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {**base, "data": [str((ROOT / d).resolve()) for d in base["data"]], "out": str(out),
           "folds": FOLDS if k is not None else 0, "fold": k or 0, "val": INNER_VAL, "minutes": a.minutes,
           "threads": a.threads, **({"lam": a.lam} if a.lam is not None else {}),
           **({"seed": a.seed} if a.seed is not None else {})}
    path = out / "train.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run(a) -> None:
    k = a.fold
    cfg_path = write_config(a, k)
    out = cfg_path.parent
    py = sys.executable
    t0 = time.monotonic()
    if not (out / "auto.safetensors").is_file():
        subprocess.run([py, "-m", "vidcolor", "train", "auto", "--config", str(cfg_path), "--threads",
                        str(a.threads)], check=True)
    t1 = time.monotonic()
    pick = out / "pick.txt"
    if not pick.is_file() or "PICK" not in pick.read_text():
        res = subprocess.run([py, str(ROOT / "benchmarks" / "pick_auto_checkpoint.py"), "--config", str(cfg_path),
                              "--threads", str(a.threads)], check=True, capture_output=True, text=True)
        pick.write_text(res.stdout)
    print(pick.read_text())
    step = int(pick.read_text().split("PICK step ")[1].split()[0])
    t2 = time.monotonic()
    if k is None:  # all the non-test photos: no fold to score
        print(f"all: train {t1 - t0:.0f} s, pick {t2 - t1:.0f} s; weights {out / f'auto_step_{step}.safetensors'}")
        return
    oof(a, k, out / f"auto_step_{step}.safetensors", step)
    print(f"fold {k}: train {t1 - t0:.0f} s, pick {t2 - t1:.0f} s, out-of-fold scoring {time.monotonic() - t2:.0f} s")


def oof(a, k: int, weights: Path, step: int) -> None:
    from safetensors import safe_open

    from vidcolor.config import AutoConfig
    from vidcolor.models import get_colorizer
    from vidcolor.models.auto_decode import Decoding
    from vidcolor.train.auto import configured_splits, load_train_config

    torch.set_num_threads(a.threads)
    cfg = load_train_config(fold_dir(a.name, k) / "train.yaml")
    held = configured_splits(cfg)["fold"]
    c = get_colorizer("auto", device=torch.device("cpu"), config=AutoConfig(weights=str(weights), decoding="legacy"))
    photos = [(p.name, *load_photo(p, a.side)) for p in held]
    s = Scored(c, photos)
    with safe_open(str(ROOT / "vidcolor" / "models" / "weights" / "auto.safetensors"), framework="pt") as fh:
        shipped = Decoding.from_dict(json.loads(fh.metadata()["meta"])["decoding"])
    decs = grid() + [shipped]  # the last row: the shipped weights' own decoding
    gain, cf = [], []
    for d in decs:
        outs = s.outputs(d)
        gain.append([psnr(o, rgb) - g for o, (_, rgb, _), g in zip(outs, photos, s.gray)])
        cf.append([colorfulness(o) for o in outs])
    np.savez(fold_dir(a.name, k) / "oof.npz", names=np.array([p[0] for p in photos]), gain=np.array(gain),
             cf=np.array(cf), gt_cf=s.gt_cf, gray=s.gray, step=step)


def summary(gain: np.ndarray, cf: np.ndarray, gt: np.ndarray) -> str:
    return f"{gain.mean():+.2f} / {gain.min():+.2f} / {cf.mean() / gt.mean():.2f}"


def fit(a) -> None:
    ks = [k for k in (a.only or range(FOLDS)) if (fold_dir(a.name, k) / "oof.npz").is_file()]  # or those done
    parts = [np.load(fold_dir(a.name, k) / "oof.npz") for k in ks]
    gain = np.concatenate([p["gain"] for p in parts], axis=1)  # (D + 1, P): the grid, then the shipped decoding
    cf = np.concatenate([p["cf"] for p in parts], axis=1)
    gt = np.concatenate([p["gt_cf"] for p in parts])
    names = np.concatenate([p["names"] for p in parts])
    fold = np.concatenate([np.full(len(p["gt_cf"]), k) for k, p in zip(ks, parts)])
    decs = grid()
    D = len(decs)
    if a.with_shipped:
        from safetensors import safe_open

        from vidcolor.models.auto_decode import Decoding

        with safe_open(str(ROOT / "vidcolor" / "models" / "weights" / "auto.safetensors"), framework="pt") as fh:
            decs.append(Decoding.from_dict(json.loads(fh.metadata()["meta"])["decoding"]))
    g, c = gain[:len(decs)], cf[:len(decs)]
    n = len(gt)
    print(f"folds {ks}: {n} out-of-fold photos ({', '.join(str(len(p['gt_cf'])) for p in parts)} per fold; checkpoints "
          f"{', '.join(str(int(p['step'])) for p in parts)}); {D} decodings; order: worst >= -1 dB, "
          f"ratio in [{a.floor}, 1.1], then mean psnr. Figures: mean - gray / worst - gray / colourfulness ratio")
    print(f"shipped decoding:           {summary(gain[D], cf[D], gt)}")
    k = choose(g, c, gt, np.arange(n), a.floor)
    print(f"cross-fitted, in sample:    {summary(g[k], c[k], gt)}   CHOSEN {json.dumps(decs[k].to_dict())}")
    nest_g, nest_c, picks = np.zeros(n), np.zeros(n), []
    for f in ks:
        kf = choose(g, c, gt, np.flatnonzero(fold != f), a.floor)
        picks.append(kf)
        m = fold == f
        nest_g[m], nest_c[m] = g[kf, m], c[kf, m]
        d = decs[kf]
        print(f"  fold {f}: chosen on the others T {d.temperature} spread {d.spread} power {d.power} gain {d.gain} "
              f"shot {d.shot} ref {d.reference}; on fold {f}: {summary(g[kf, m], c[kf, m], gt[m])} "
              f"(others in sample {summary(g[kf, ~m], c[kf, ~m], gt[~m])})")
    print(f"cross-fitted, nested:       {summary(nest_g, nest_c, gt)}   {len(set(picks))} distinct choices")
    for f in ks:
        m = fold == f
        print(f"  fold {f}: shipped {summary(gain[D, m], cf[D, m], gt[m])}  in-sample choice "
              f"{summary(g[k, m], c[k, m], gt[m])}  nested {summary(nest_g[m], nest_c[m], gt[m])}")
    ratio, worst = c.mean(1) / gt.mean(), g.min(1)
    print("the trade-off in sample: the best worst photo of the decodings at each colourfulness floor")
    for fl in (0.0, 0.2, 0.3, 0.4, 0.5):
        m = (ratio >= fl) & (ratio <= 1.1)
        if m.any():
            j = np.flatnonzero(m)[np.argmax(worst[m] + 1e-3 * g[m].mean(1))]
            print(f"  ratio >= {fl:.1f}: {summary(g[j], c[j], gt)}  (T {decs[j].temperature} spread {decs[j].spread} "
                  f"power {decs[j].power} gain {decs[j].gain} shot {decs[j].shot} ref {decs[j].reference})")
    order = np.argsort(nest_g)
    print("worst photos (nested gain, in-sample choice, shipped decoding):")
    for i in order[:8]:
        print(f"  {names[i]:<60} fold {fold[i]}  {nest_g[i]:+6.2f} {g[k, i]:+6.2f} {gain[D, i]:+6.2f}")
    if a.write:
        from fit_auto_decoding import write

        write(a.write, decs[k], {"split": f"crossfit {a.name}: out-of-fold, {FOLDS} folds", "photos": n,
                                 "floor": a.floor, "order": "worst, ratio, psnr",
                                 "in_sample": summary(g[k], c[k], gt), "nested": summary(nest_g, nest_c, gt),
                                 "command": f"python benchmarks/crossfit_auto.py fit --name {a.name} --write W"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train fold K, pick its checkpoint, score its photos")
    r.add_argument("--fold", type=int, help="0..4; left out: train on all 81 (inner val 8), no scoring")
    r.add_argument("--minutes", type=float, default=10.0, help="training time (the schedule follows it)")
    r.add_argument("--recipe", help="YAML whose training settings (width, lam, ...) replace configs/train-auto.yaml's")
    r.add_argument("--lam", type=float, help="class rebalancing [default: the recipe's]")
    r.add_argument("--seed", type=int, help="[default: the recipe's]")
    f = sub.add_parser("fit", help="choose the decoding on all folds' out-of-fold photos; nested check")
    f.add_argument("--floor", type=float, default=0.5)
    f.add_argument("--write", help="weights file to store the all-photo choice in")
    f.add_argument("--only", type=lambda t: [int(x) for x in t.split(",")], help="these folds (e.g. 0,1,2) only")
    f.add_argument("--with-shipped", action="store_true", help="the shipped decoding as one more candidate")
    for p in (r, f):
        p.add_argument("--name", default="base", help="runs/crossfit/NAME")
        p.add_argument("--side", type=int, default=512)
        p.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    run(a) if a.cmd == "run" else fit(a)


if __name__ == "__main__":
    sys.exit(main())
