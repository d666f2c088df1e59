"""An image-level gate on ``auto``'s chroma, measured on out-of-fold photos (issue 21).

    # 1. per out-of-fold photo: the PSNR gain over gray and the colourfulness of the shipped decoding's
    #    output with its chroma scaled by s in S, and run-time features of the gray picture and the network
    python benchmarks/gate_auto.py collect --runs /work/wt21e/runs/crossfit/base --out runs/gate/oof_gate.npz
    # 2. fit a small gate s = f(features) in the issue's order of targets, in sample and nested (4 folds -> 5th)
    python benchmarks/gate_auto.py fit --npz runs/gate/oof_gate.npz

``--runs`` holds ``crossfit_auto.py run``'s folds: fold k's model (the
checkpoint its ``oof.npz`` names) never saw fold k's photos. The decoding is
the shipped weights' (``vidcolor/models/weights/auto.safetensors`` metadata),
so s = 1 is what ``auto`` ships today. The test split is not touched.

The ratio is ``crossfit_auto.py``'s: mean colourfulness of the outputs over
the mean of the truths'. The order: every photo >= gray - 1 dB, the ratio in
[floor, 1.1], then mean PSNR (``fit_auto_worst.choose``). ``probe``:
ridge regressions (all features, or the backbone's pooled embedding) of each
photo's largest s within 1 dB, nested, and their AUC for the photos below -1 dB.

Result (2026-12-05, the 5 ``base`` fold models of issue-21e, 81 photos, 29
features): nothing run-time tells the photos that need a gate from the rest.
Single features' AUC for the 12 photos below gray - 1 dB at s = 1: 0.34..0.64
(chance, with 12 of 81); ridge on all features or on the embedding: nested AUC
0.23..0.42 (below chance: no signal). Figures (mean - gray / worst - gray /
ratio): s = 1 (shipped) +0.70 / -8.15 / 0.52; best one-feature ramp in sample
+0.62 / -6.68 / 0.50, nested +0.40 / -9.16 / 0.53; step nested +0.31 / -10.03
/ 0.55; a two-feature step (6 features fixed beforehand) nested +0.26 / -9.79 /
0.56. Each photo at its own largest s within 1 dB (a perfect gate, s <= 1.2)
would give +1.16 / -0.99 / 0.57; a one-feature ramp on the truth's gray PSNR
(a perfect near-monochrome detector) +1.24 / -1.70 / 0.50 in sample, +1.20 /
-2.26 / 0.50 nested. Not shipped.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_photos import ROOT, colorfulness, lab_rgb8, load_photo, psnr  # noqa: E402

SCALES = np.round(np.arange(0.0, 1.501, 0.05), 3)


def shipped_decoding():
    from safetensors import safe_open

    from vidcolor.models.auto_decode import Decoding

    with safe_open(str(ROOT / "vidcolor" / "models" / "weights" / "auto.safetensors"), framework="pt") as fh:
        return Decoding.from_dict(json.loads(fh.metadata()["meta"])["decoding"])


def features(z: torch.Tensor, bins: torch.Tensor, L4: torch.Tensor, ab4: torch.Tensor, conf: torch.Tensor,
             rgb_out: np.ndarray, cls: torch.Tensor) -> dict:
    """Run-time features of one picture: the network's distribution (logits ``z`` (1, Q, h, w)), the decoded
    a/b and confidence at the logits' size, L at that size (``L4``, 0..100) and the output's colourfulness."""
    f = {}
    p = torch.softmax(z.float(), dim=1)
    b = bins.to(p)
    radius = b.norm(dim=1)
    for r in (10, 20):  # the network's own probability that a cell is (nearly) neutral
        f[f"p_neutral{r}"] = float(p[:, radius <= r].sum(1).mean())
    mean = torch.einsum("nqhw,qc->nchw", p, b)
    f["chroma_plain"] = float(mean.norm(dim=1).mean())
    f["chroma_expected"] = float(torch.einsum("nqhw,q->nhw", p, radius).mean())  # E|ab|
    ent = -(p * p.clamp(min=1e-12).log()).sum(1) / np.log(p.shape[1])
    f["entropy"] = float(ent.mean())
    f["pmax"] = float(p.amax(1).mean())
    f["conf_mean"] = float(conf.mean())
    f["conf_sure"] = float((conf > 0.5).float().mean())
    chroma = ab4.norm(dim=1)
    f["chroma_dec"] = float(chroma.mean())
    f["chroma_dec_p90"] = float(chroma.flatten().quantile(0.9))
    # hue concentration of the decoded colour (1: one hue everywhere)
    w = chroma.flatten() + 1e-6
    ang = torch.atan2(ab4[:, 1], ab4[:, 0]).flatten()
    f["hue_conc"] = float(torch.hypot((w * ang.cos()).sum(), (w * ang.sin()).sum()) / w.sum())
    f["cf_pred"] = colorfulness(rgb_out)
    q = torch.softmax(cls.float(), dim=1)  # the backbone's ImageNet classes on the gray picture
    f["cls_maxp"] = float(q.max())
    f["cls_ent"] = float(-(q * q.clamp(min=1e-12).log()).sum() / np.log(q.shape[1]))
    L = L4[0, 0].double()
    f["L_mean"], f["L_std"] = float(L.mean()), float(L.std())
    f["L_p5"], f["L_p95"] = float(L.flatten().quantile(0.05)), float(L.flatten().quantile(0.95))
    f["L_white"] = float((L > 90).double().mean())
    f["L_dark"] = float((L < 10).double().mean())
    hist = torch.histc(L.float(), bins=50, min=0, max=100)
    q = hist / hist.sum()
    f["L_hist_ent"] = float(-(q * q.clamp(min=1e-12).log()).sum() / np.log(50))
    gy, gx = L[1:, :-1] - L[:-1, :-1], L[:-1, 1:] - L[:-1, :-1]
    g = torch.hypot(gx, gy)
    f["grad_mean"] = float(g.mean())
    f["grad_flat"] = float((g < 1.0).double().mean())
    lap = (L[2:, 1:-1] + L[:-2, 1:-1] + L[1:-1, 2:] + L[1:-1, :-2] - 4 * L[1:-1, 1:-1]).abs()
    f["lap_over_grad"] = float(lap.mean() / (g.mean() + 1e-6))
    # smooth ramps: a gradient that is there but does not change (graphics, sky, studio backdrops)
    gi = g[:-1, :-1][: lap.shape[0], : lap.shape[1]]
    f["smooth_ramp"] = float(((gi > 0.3) & (lap < 0.3)).double().mean())
    return f


def collect(a) -> None:
    from vidcolor.config import AutoConfig
    from vidcolor.models import get_colorizer
    from vidcolor.models.auto import backbone_inputs
    from vidcolor.models.auto_decode import decode
    from vidcolor.ops import work_shape
    from vidcolor.train.auto import configured_splits, load_train_config

    torch.set_num_threads(a.threads)
    runs = Path(a.runs)
    dec = shipped_decoding()
    rows = {"names": [], "fold": [], "gain": [], "cf": [], "gt_cf": [], "gray": [], "feat": []}
    for k in range(5):
        d = runs / f"fold_{k}"
        oof = np.load(d / "oof.npz")
        step = int(oof["step"])
        cfg = load_train_config(d / "train.yaml")
        held = configured_splits(cfg)["fold"]
        c = get_colorizer("auto", device=torch.device("cpu"),
                          config=AutoConfig(weights=str(d / f"auto_step_{step}.safetensors"), decoding="legacy"))
        c.decoding = dec
        for p in held:
            rgb, L = load_photo(p, a.side)
            Lt = torch.from_numpy(L)[None, None]
            z, z2 = c.infer(Lt)
            c.begin_shot(None)
            ab = c.finish(Lt, z, z2)[0].permute(1, 2, 0).numpy()
            L4 = F.adaptive_avg_pool2d(Lt, z.shape[-2:])
            ab4, conf = decode(z, c.bins, L4, dec, z2)
            with torch.inference_mode():
                h, w = work_shape(*Lt.shape[-2:], c.cfg.work_size, minimum=32)
                pooled = backbone_inputs(c.backbone, F.interpolate(Lt, size=(h, w), mode="area"))["pooled"]
                cls = c.backbone._fc(pooled)
            rows.setdefault("emb", []).append(pooled[0].float().numpy())
            # the second view (mirrored, at 0.75): how much the colour changes with it, over the picture
            c.decoding = dec.with_(agree=1.0)
            _, zv = c.infer(Lt)
            c.decoding = dec
            ab4v, _ = decode(zv, c.bins, L4, dec, None)
            extra = {"view_dist": float((ab4 - ab4v).norm(dim=1).mean()),
                     "view_rel": float((ab4 - ab4v).norm(dim=1).mean() / (ab4.norm(dim=1).mean() + 1.0))}
            Lf = torch.from_numpy(L).double()  # full resolution (long side <= 512): fine texture and noise
            hp = Lf[1:-1, 1:-1] - 0.25 * (Lf[2:, 1:-1] + Lf[:-2, 1:-1] + Lf[1:-1, 2:] + Lf[1:-1, :-2])
            extra["hf_full"] = float(hp.abs().mean())
            extra["hf_over_std"] = float(hp.abs().mean() / (Lf.std() + 1e-6))
            gray = psnr(lab_rgb8(L, np.zeros_like(ab)), rgb)
            outs = [lab_rgb8(L, s * ab) for s in SCALES]
            rows["names"].append(p.name)
            rows["fold"].append(k)
            rows["gain"].append([psnr(o, rgb) - gray for o in outs])
            rows["cf"].append([colorfulness(o) for o in outs])
            rows["gt_cf"].append(colorfulness(rgb))
            rows["gray"].append(gray)
            rows["feat"].append({**features(z, c.bins, L4, ab4, conf, outs[int(np.argmin(abs(SCALES - 1)))], cls),
                                 **extra})
            i = list(oof["names"]).index(p.name)
            print(f"fold {k} {p.name:<58} gain@1 {rows['gain'][-1][20]:+6.2f} (oof.npz shipped {oof['gain'][-1, i]:+6.2f})"
                  f" gt_cf {rows['gt_cf'][-1]:5.1f}", flush=True)
    keys = sorted(rows["feat"][0])
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, names=np.array(rows["names"]), fold=np.array(rows["fold"]), scales=SCALES,
             gain=np.array(rows["gain"]), cf=np.array(rows["cf"]), gt_cf=np.array(rows["gt_cf"]),
             gray=np.array(rows["gray"]), feat_names=np.array(keys),
             feat=np.array([[f[key] for key in keys] for f in rows["feat"]]), decoding=json.dumps(dec.to_dict()),
             emb=np.array(rows["emb"]))
    print(f"wrote {out}: {len(rows['names'])} photos, {len(keys)} features, scales {SCALES[0]}..{SCALES[-1]}")


# -- fitting a gate ------------------------------------------------------------------------------
def at_scale(tab: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(P, S) per-photo values on SCALES, (..., P) scales -> (..., P), linearly interpolated."""
    x = np.clip(s, SCALES[0], SCALES[-1]) / (SCALES[1] - SCALES[0])
    i = np.minimum(np.floor(x).astype(int), len(SCALES) - 2)
    t = x - i
    cols = np.arange(tab.shape[0])
    return (1 - t) * tab[cols, i] + t * tab[cols, i + 1]


def ramp(x: np.ndarray, lo: float, hi: float, s_lo: float, s_hi: float) -> np.ndarray:
    """s_lo at or below ``lo``, s_hi at or above ``hi``, linear between (a step where lo == hi)."""
    if hi <= lo:
        return np.where(x >= lo, s_hi, s_lo)
    return s_lo + (s_hi - s_lo) * np.clip((x - lo) / (hi - lo), 0, 1)


def candidates(feat: np.ndarray, names: list[str], idx: np.ndarray, family: str, only: list[str] | None):
    """The gates of ``family`` with thresholds at quantiles of the photos ``idx``: (description, s (P,)) pairs."""
    qs = np.linspace(0.0, 0.6, 13)  # thresholds among the lower 60 % of the photos: a gate for the few
    s_his = [0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    s_los = [0.0, 0.2, 0.4]
    cols = [j for j, n in enumerate(names) if only is None or n in only]
    if family == "const":
        for sh in s_his:
            yield {"s_hi": sh}, np.full(feat.shape[0], sh)
        return
    pairs = [(j,) for j in cols] if family in ("step", "ramp") else list(itertools.combinations(cols, 2))
    for js in pairs:
        for signs in itertools.product((1, -1), repeat=len(js)):
            zs = [sg * feat[:, j] for sg, j in zip(signs, js)]
            if len(js) == 2:  # standardised on the fitting photos, summed with a weight
                zs = [(zz - zz[idx].mean()) / (zz[idx].std() + 1e-12) for zz in zs]
                combos = [(w, zs[0] + w * zs[1]) for w in (0.5, 1.0, 2.0)]
            else:
                combos = [(None, zs[0])]
            for w, x in combos:
                t = np.quantile(x[idx], qs)
                for a_i, lo in enumerate(t):
                    for hi in ([lo] if family in ("step", "pair") else t[a_i:]):
                        for sl in s_los:
                            for sh in s_his:
                                desc = {"features": [names[j] for j in js], "signs": list(signs), "w": w,
                                        "lo": float(lo), "hi": float(hi), "s_lo": sl, "s_hi": sh}
                                yield desc, ramp(x, lo, hi, sl, sh)


def choose_gate(G: np.ndarray, C: np.ndarray, gt: np.ndarray, idx: np.ndarray, floor: float) -> int:
    """``fit_auto_worst.choose`` over gates: (K, P) gains and colourfulness under each gate."""
    from fit_auto_worst import choose

    return choose(G, C, gt, idx, floor)


def evaluate(d: np.lib.npyio.NpzFile, family: str, floor: float, only, fold_ids) -> tuple:
    feat, names = d["feat"], [str(n) for n in d["feat_names"]]
    gain, cf, gt = d["gain"], d["cf"], d["gt_cf"]
    fold = d["fold"]
    P = len(gt)
    nest_s = np.zeros(P)
    chosen = []
    for f in fold_ids:
        idx = np.flatnonzero(fold != f)
        cands = list(candidates(feat, names, idx, family, only))
        S = np.array([s for _, s in cands])
        k = choose_gate(at_scale(gain, S), at_scale(cf, S), gt, idx, floor)
        m = fold == f
        nest_s[m] = S[k, m]
        chosen.append(cands[k][0])
    cands = list(candidates(feat, names, np.arange(P), family, only))
    S = np.array([s for _, s in cands])
    G, C = at_scale(gain, S), at_scale(cf, S)
    k = choose_gate(G, C, gt, np.arange(P), floor)
    return cands[k][0], S[k], nest_s, chosen, len(cands)


def summary(g: np.ndarray, c: np.ndarray, gt: np.ndarray) -> str:
    return f"{g.mean():+.2f} / {g.min():+.2f} / {c.mean() / gt.mean():.2f}"


def fit(a) -> None:
    d = np.load(a.npz)
    feat, names = d["feat"], [str(n) for n in d["feat_names"]]
    gain, cf, gt, pnames, fold = d["gain"], d["cf"], d["gt_cf"], d["names"], d["fold"]
    P = len(gt)
    one = np.ones(P)
    print(f"{P} out-of-fold photos, folds {sorted(set(fold.tolist()))}; decoding {d['decoding']}")
    print(f"figures: mean - gray / worst - gray / colourfulness ratio; order worst >= -1, ratio in [{a.floor}, 1.1], mean")
    print(f"s = 1 (the shipped decoding): {summary(at_scale(gain, one), at_scale(cf, one), gt)}")
    print(f"s = 0 (gray):                 {summary(at_scale(gain, 0 * one), at_scale(cf, 0 * one), gt)}")
    # the oracle: each photo's own best s under -1 dB, and how the features rank the photos that need a gate
    smax = np.array([SCALES[np.flatnonzero(gain[i] >= -1.0)].max() if (gain[i] >= -1.0).any() else 0.0
                     for i in range(P)])
    bad = at_scale(gain, one) < -1.0
    print(f"photos below gray - 1 dB at s = 1: {int(bad.sum())}; their largest s within 1 dB: "
          + ", ".join(f"{pnames[i].split('__')[-1][:18]} {smax[i]:.2f}" for i in np.flatnonzero(bad)))
    for sh in (1.0, 1.2, 1.5):  # a perfect gate: each photo at its own largest s within 1 dB, at most sh
        so = np.minimum(smax, sh)
        print(f"oracle (each photo's own largest s within 1 dB, at most {sh}): "
              f"{summary(at_scale(gain, so), at_scale(cf, so), gt)}")
    from scipy.stats import spearmanr

    print(f"{'feature':<16} {'AUC bad':>8} {'rho(smax)':>9} {'rho(gray)':>9} {'rho(gt_cf)':>10}   bad photos' ranks (of {P}, ascending)")
    for j, n in enumerate(names):
        x = feat[:, j]
        ranks = x.argsort().argsort()
        auc = (ranks[bad][:, None] > ranks[~bad][None, :]).mean()
        print(f"{n:<16} {auc:8.2f} {spearmanr(x, smax)[0]:+9.2f} {spearmanr(x, d['gray'])[0]:+9.2f} "
              f"{spearmanr(x, gt)[0]:+10.2f}   {sorted(ranks[bad].tolist())}")
    for family in a.families:
        desc, s_in, s_nest, chosen, n = evaluate(d, family, a.floor, a.only, sorted(set(fold.tolist())))
        print(f"\n== {family} ({n} gates)")
        print(f"in sample: {summary(at_scale(gain, s_in), at_scale(cf, s_in), gt)}   {json.dumps(desc)}")
        print(f"nested:    {summary(at_scale(gain, s_nest), at_scale(cf, s_nest), gt)}")
        for f, c in zip(sorted(set(fold.tolist())), chosen):
            m = fold == f
            print(f"  fold {f}: {summary(at_scale(gain[m], s_nest[m]), at_scale(cf[m], s_nest[m]), gt[m])}   {json.dumps(c)}")
        order = np.argsort(at_scale(gain, s_nest))[:8]
        print("  worst nested: " + ", ".join(f"{pnames[i].split('__')[-1][:18]} s {s_nest[i]:.2f} "
                                             f"{at_scale(gain[i:i + 1], s_nest[i:i + 1])[0]:+.2f}" for i in order))


def ridge_fit(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = (X - mu) / sd
    w = np.linalg.solve(Z.T @ Z + alpha * np.eye(Z.shape[1]), Z.T @ (y - y.mean()))
    return mu, sd, w, float(y.mean())


def ridge_predict(model, X: np.ndarray) -> np.ndarray:
    mu, sd, w, b = model
    return ((X - mu) / sd) @ w + b


def auc(score: np.ndarray, bad: np.ndarray) -> float:
    """P(a bad photo scores above a good one): 0.5 is chance."""
    return float((score[bad][:, None] > score[~bad][None, :]).mean() + 0.5 * (score[bad][:, None] == score[~bad][None, :]).mean())


def probe(a) -> None:
    """Can the photos that need a gate be told apart with many features at once? Ridge regressions, nested
    (fitted on 4 folds, scored on the 5th), of log(largest s within 1 dB) on the 25 run-time features or on
    the backbone's pooled embedding (PCA on the fitting photos); the nested AUC for the photos below -1 dB."""
    d = np.load(a.npz)
    gain, fold, gray, gt = d["gain"], d["fold"], d["gray"], d["gt_cf"]
    P = len(gt)
    smax = np.array([SCALES[np.flatnonzero(gain[i] >= -1.0)].max() if (gain[i] >= -1.0).any() else 0.0
                     for i in range(P)])
    y = np.log(smax + 0.05)
    bad = gain[:, 20] < -1.0
    for what in ("features", "embedding", "both"):
        for alpha in (1.0, 10.0, 100.0, 1000.0):
            pred = np.zeros(P)
            for f in sorted(set(fold.tolist())):
                tr, te = fold != f, fold == f
                X = d["feat"] if what == "features" else None
                if what != "features":
                    E = np.log1p(d["emb"])
                    mu = E[tr].mean(0)
                    _, _, vt = np.linalg.svd(E[tr] - mu, full_matrices=False)
                    pcs = (E - mu) @ vt[:16].T
                    X = pcs if what == "embedding" else np.hstack([pcs, d["feat"]])
                pred[te] = ridge_predict(ridge_fit(X[tr], y[tr], alpha), X[te])
            from scipy.stats import spearmanr

            print(f"ridge on {what:<9} alpha {alpha:6.0f}: nested AUC (low prediction = bad) {auc(-pred, bad):.2f}, "
                  f"rho(pred, log smax) {spearmanr(pred, y)[0]:+.2f}, rho(pred, gray psnr) {spearmanr(pred, -gray)[0]:+.2f}"
                  f"; bad photos' ranks {sorted(pred.argsort().argsort()[bad].tolist())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--runs", default=str(Path("/work/wt21e/runs/crossfit/base")))
    c.add_argument("--out", default=str(ROOT / "runs" / "gate" / "oof_gate.npz"))
    c.add_argument("--side", type=int, default=512)
    c.add_argument("--threads", type=int, default=1)
    f = sub.add_parser("fit")
    f.add_argument("--npz", default=str(ROOT / "runs" / "gate" / "oof_gate.npz"))
    f.add_argument("--floor", type=float, default=0.5)
    f.add_argument("--families", type=lambda t: t.split(","), default=["const", "step", "ramp"],
                   help="const, step, ramp (one feature), pair (a step on two features' weighted sum; use --only)")
    f.add_argument("--only", type=lambda t: t.split(","), help="these features only")
    pr = sub.add_parser("probe")
    pr.add_argument("--npz", default=str(ROOT / "runs" / "gate" / "oof_gate.npz"))
    a = ap.parse_args()
    {"collect": collect, "fit": fit, "probe": probe}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
