"""Training the automatic colorizer's decoder (``vidcolor train auto``).

Data: colour photos from the configured folders in three disjoint splits
(:func:`split_photos`, by a hash of the file name, the same whatever else is
in the folder): ``test`` (touched only to report, ``benchmarks/bench_auto.py``),
``val`` (checkpoint and decoding choice, ``benchmarks/fit_auto_decoding.py``)
and training; the ``exclude`` photos (the development clips' sources) are in
none. The split is written to ``OUT/splits.json`` and the weights' metadata.
Heavy augmentation, as the data are few: random crops from a third of the
picture to all of it, flips, luminance jitter toward old film (gain,
contrast, gamma, bias, the L of the luma instead of Lab's L, blur, grain,
vignetting) on the input only: the answer stays the photo's true a/b.

The backbone is frozen, so its feature maps are computed once for a pool of
augmented crops (``pool.pt``); a training step then costs the decoder alone
(with random mirroring of the cached maps). Loss: class-rebalanced
cross-entropy over the ab bins against soft-encoded targets (Zhang et al.:
5 nearest bins, sigma 5; weights from the pool's Gaussian-smoothed ab prior,
lambda 0.5). A validation pool of crops from the validation photos gives the
validation loss; every checkpoint's decoder is also kept (``step_N.pt``) so
that the one shipped can be picked on validation PSNR with the real decoding.
``minutes`` bounds the training time as well as ``steps`` (the learning-rate
schedule follows whichever runs out first), for a CPU shared with other work. Checkpoints (``last.pt``, ``best.pt``) let a run resume;
``loss.csv`` logs the losses; the weights are exported as safetensors with
the prior, the config, the data and the step count.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, InputError
from ..models.auto import AutoNet, ab_bins, backbone_inputs, rebalance_weights, save_auto, smooth_prior, soft_encode
from .common import loss_log, pool_cache, provenance, read_train_config, repo_paths, resume_from, save_atomic, start_run
from .exemplar import load_photo, list_photos

__all__ = ["TrainAutoConfig", "load_train_config", "train_auto", "export_auto", "split_photos", "configured_splits",
           "split_names", "make_crop", "old_film", "build_pool", "rebalanced_loss"]

log = logging.getLogger("vidcolor")
KEYS = ("s4", "s8", "s16", "s32", "pooled", "L4")


@dataclass(frozen=True)
class TrainAutoConfig:
    """What ``vidcolor train auto`` reads from its YAML file."""

    data: list[str] = field(default_factory=lambda: ["../shared/data/photos"])
    out: str = "runs/auto"
    test: int = 13  # photos only ever scored (benchmarks/bench_auto.py), lowest name hashes
    val: int = 13  # photos for the checkpoint and the decoding choice, the next hashes
    exclude: list[str] = field(default_factory=list)  # file names in no split (the development clips' sources)
    folds: int = 0  # > 1: cross-fitting; the non-test photos are dealt into this many folds by name hash
    fold: int = 0  # with folds: this fold's photos are held out (split "fold"); val and train come from the others
    size: int = 176  # square training crops, pixels (a multiple of 16)
    pool: int = 5000  # augmented crops whose backbone features are computed once
    val_pool: int = 192  # crops of the held-out photos for the validation loss
    steps: int = 4000
    minutes: float = 0.0  # > 0: also stop after this much training time; the schedule follows whichever ends first
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    width: int = 192
    dropout: float = 0.3  # on the pooled embedding and backbone channels (AutoNet)
    lam: float = 0.5  # class rebalancing (Zhang et al.)
    sigma: float = 5.0  # prior smoothing and soft encoding, ab units
    seed: int = 0
    checkpoint_every: int = 200
    threads: int = 0


def load_train_config(path: str | os.PathLike) -> TrainAutoConfig:
    cfg, p = read_train_config(path, TrainAutoConfig)
    if cfg.size % 16 or cfg.size < 64:
        raise ConfigError(f"size must be a multiple of 16 and at least 64, got {cfg.size}", p)
    if cfg.test < 0 or cfg.val < 0:
        raise ConfigError("test and val must be >= 0", p)
    if cfg.folds < 0 or cfg.folds == 1 or (cfg.folds and not 0 <= cfg.fold < cfg.folds):
        raise ConfigError(f"need folds 0 or >= 2 and 0 <= fold < folds, got folds {cfg.folds}, fold {cfg.fold}", p)
    if not 0 <= cfg.lam <= 1 or cfg.sigma <= 0 or cfg.steps < 1 or cfg.batch < 1 or cfg.pool < 1 or cfg.minutes < 0:
        raise ConfigError("need 0 <= lam <= 1, sigma > 0, steps, batch and pool >= 1, minutes >= 0", p)
    return repo_paths(cfg, p)


def split_photos(photos: list[Path], test: int, val: int = 0, exclude=(), folds: int = 0, fold: int = 0
                 ) -> dict[str, list[Path]]:
    """Three disjoint splits ``{"train", "val", "test"}`` (each in the folder's
    order): the ``test`` photos whose names hash lowest, the ``val`` next, the
    rest train; names in ``exclude`` are in none. A photo's split depends only
    on its name and the other names' hashes, not on the folder's order.

    ``folds`` > 1 (cross-fitting): the photos after the test ones, in hash
    order, are dealt into ``folds`` folds (the i-th to fold i % folds); fold
    ``fold`` is held out as a fourth split ``"fold"`` (in no other), and the
    ``val`` and train photos come from the other folds as above. The test
    split is the same as without folds."""
    key = lambda p: hashlib.sha1(p.name.encode()).hexdigest()  # noqa: E731
    skip = set(exclude)
    ranked = sorted((p for p in photos if p.name not in skip), key=key)
    te, rest = set(ranked[:test]), ranked[test:]
    held: set[Path] = set()
    if folds > 1:
        held = {p for i, p in enumerate(rest) if i % folds == fold}
        rest = [p for p in rest if p not in held]
    va = set(rest[:val])
    s = {"train": [p for p in rest[val:]], "val": [p for p in photos if p in va],
         "test": [p for p in photos if p in te]}
    if folds > 1:
        s["fold"] = [p for p in photos if p in held]
    return s


def configured_splits(cfg: TrainAutoConfig) -> dict[str, list[Path]]:
    """The splits of ``cfg``'s photos (train in the folder's order)."""
    photos = list_photos(cfg.data)
    s = split_photos(photos, cfg.test, cfg.val, cfg.exclude, cfg.folds, cfg.fold)
    s["train"] = [p for p in photos if p in set(s["train"])]
    return s


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def make_crop(img: np.ndarray, size: int, rng: random.Random, *, augment: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
    """An augmented ``size`` x ``size`` crop of the uint8 RGB ``img``: its input L
    (size, size) float32 in [0, 100], jittered, and its true Lab a/b (size, size, 2)."""
    h, w = img.shape[:2]
    short = min(h, w)
    span = round(short * (rng.uniform(0.35, 1.0) if augment else 0.8))
    x0, y0 = rng.randint(0, w - span), rng.randint(0, h - span)
    view = img[y0:y0 + span, x0:x0 + span]
    view = cv2.resize(view, (size, size), interpolation=cv2.INTER_AREA if span > size else cv2.INTER_LINEAR)
    if augment and rng.random() < 0.5:
        view = view[:, ::-1]
    view = np.ascontiguousarray(view)
    lab = _lab(view)
    ab = lab[..., 1:]
    if augment and rng.random() < 0.5:  # a film's gray is its luma, not Lab's L
        luma = view.astype(np.float32) @ np.float32([0.299, 0.587, 0.114]) / 255.0
        L = _lab(np.repeat(luma[..., None] * 255.0, 3, axis=-1))[..., 0]
    else:
        L = lab[..., 0].copy()
    if augment:
        L = old_film(L, rng)
    return L.astype(np.float32), np.ascontiguousarray(ab, dtype=np.float32)


def old_film(L: np.ndarray, rng: random.Random) -> np.ndarray:
    """``L`` (H, W) in [0, 100] made to look like an old film's gray, at random:
    gain and bias, contrast about the mean, gamma, blur, grain (partly
    clumped, as silver grain is) and vignetting."""
    h, w = L.shape
    y = L / 100.0
    m = float(y.mean())
    y = m + (y - m) * rng.uniform(0.6, 1.3)  # flat or hard prints
    y = np.clip(y * rng.uniform(0.8, 1.2) + rng.uniform(-0.08, 0.08) + (0.5 - m) * rng.uniform(0, 0.2), 0, 1)
    y = y ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.35:
        y = cv2.GaussianBlur(y, (0, 0), rng.uniform(0.5, 2.0))
    if rng.random() < 0.35:
        g = np.random.default_rng(rng.randrange(1 << 30))
        n = g.normal(0, 1, y.shape).astype(np.float32)
        if rng.random() < 0.5:
            n = cv2.GaussianBlur(n, (0, 0), 0.8) * 2.0
        y = y + n * rng.uniform(0.005, 0.04)
    if rng.random() < 0.3:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2
        y = y * (1 - rng.uniform(0.1, 0.4) * r2 / 2)
    return np.clip(y, 0, 1).astype(np.float32) * 100.0


@torch.inference_mode()
def build_pool(photos: list[Path], n: int, size: int, rng: random.Random, backbone, *, augment: bool = True,
               chunk: int = 32) -> dict[str, torch.Tensor]:
    """Backbone features (float16) of ``n`` augmented crops, their L at stride 4
    and their true a/b at stride 4 (``ab``)."""
    short = round(size / 0.35) if augment else round(size / 0.8)
    images = {}
    rows: dict[str, list] = {k: [] for k in (*KEYS, "ab")}
    t0 = time.monotonic()
    for start in range(0, n, chunk):
        Ls, abs_ = [], []
        for _ in range(min(chunk, n - start)):
            i = rng.randrange(len(photos))
            if i not in images:
                images[i] = load_photo(photos[i], min(short, 640))
            L, ab = make_crop(images[i], size, rng, augment=augment)
            Ls.append(torch.from_numpy(L)[None])
            abs_.append(torch.from_numpy(ab).permute(2, 0, 1))
        L = torch.stack(Ls)
        x = backbone_inputs(backbone, L)
        for k in KEYS:
            rows[k].append(x[k].half())
        rows["ab"].append(F.adaptive_avg_pool2d(torch.stack(abs_), x["s4"].shape[-2:]).half())
        if (start // chunk) % 20 == 19:
            log.info("pool: %d/%d crops (%.0f s)", start + chunk, n, time.monotonic() - t0)
    return {k: torch.cat(v) for k, v in rows.items()}


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """(N, 2, H, W) -> (N, H, W) index of the nearest bin (in chunks: memory stays small)."""
    x = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    b = bins.to(x.device, torch.float32)
    idx = torch.cat([torch.cdist(x[i:i + chunk].float(), b).argmin(dim=1) for i in range(0, len(x), chunk)])
    return idx.view(ab.shape[0], *ab.shape[-2:])


def rebalanced_loss(logits: torch.Tensor, ab: torch.Tensor, bins: torch.Tensor, weights: torch.Tensor,
                    sigma: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-rebalanced cross-entropy (Zhang et al. eq. 2): each pixel's CE against
    its soft-encoded ab, weighted by the weight of its nearest bin; mean over
    pixels. Returns (weighted, plain) losses."""
    target = soft_encode(ab, bins, sigma=sigma)
    ce = -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1)  # (N, H, W)
    w = weights.to(ce)[target.argmax(dim=1)]
    return (w * ce).mean(), ce.mean()


def _batch(pool: dict[str, torch.Tensor], idx: torch.Tensor, flip: bool) -> dict[str, torch.Tensor]:
    b = {k: v[idx].float() for k, v in pool.items()}
    if flip:
        b = {k: (v.flip(-1) if v.dim() == 4 else v) for k, v in b.items()}
    return b


def _pools(cfg: TrainAutoConfig, out: Path, resume: bool):
    from ..models.backbone import get_backbone

    splits = configured_splits(cfg)
    train, held = splits["train"], splits["val"]
    if len(train) < 2:
        raise InputError(f"need at least two training images once {cfg.test} test and {cfg.val} validation "
                         "photos are set aside", cfg.data[0])
    (out / "splits.json").write_text(json.dumps(split_names(splits), indent=1), encoding="utf-8")

    def build() -> dict:
        backbone = get_backbone("cpu")
        pools = {"train": build_pool(train, cfg.pool, cfg.size, random.Random(cfg.seed), backbone)}
        pools["val"] = build_pool(held, cfg.val_pool, cfg.size, random.Random(cfg.seed + 1), backbone,
                                  augment=False) if held and cfg.val_pool else {}
        return pools

    return pool_cache(out / "pool.pt", resume, build), train, held


def split_names(splits: dict[str, list[Path]]) -> dict[str, list[str]]:
    return {k: sorted(p.name for p in v) for k, v in splits.items()}


def train_auto(cfg: TrainAutoConfig, *, device: torch.device | str = "cpu", resume: bool = True,
               progress=None) -> Path:
    """Train the decoder; returns the path of the exported safetensors (best checkpoint)."""
    device = torch.device(device)
    out = start_run(cfg)
    pools, train, held = _pools(cfg, out, resume)
    bins = ab_bins()
    pool = {k: v.to(device) for k, v in pools["train"].items()}
    counts = torch.bincount(nearest_bin(pools["train"]["ab"], bins).flatten(), minlength=bins.shape[0])
    prior = smooth_prior(counts, bins, cfg.sigma)
    weights = rebalance_weights(prior, cfg.lam).to(device)
    bins_d = bins.to(device)
    net = AutoNet(width=cfg.width, bins=bins.shape[0], dropout=cfg.dropout).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best, spent = 0, float("inf"), 0.0
    ckpt = out / "last.pt"
    state = resume_from(ckpt, device, net=net, opt=opt) if resume else None
    if state:
        step, best, spent = int(state["step"]), float(state["best"]), float(state.get("seconds", 0.0))
    logf, writer = loss_log(out, ["step", "loss", "ce", "val_loss", "val_ce", "seconds"], step)
    n = len(pool["ab"])
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    t0 = time.monotonic() - spent

    def progress_fraction() -> float:
        f = step / cfg.steps
        return max(f, (time.monotonic() - t0) / (cfg.minutes * 60)) if cfg.minutes > 0 else f

    try:
        while progress_fraction() < 1.0:
            for g in opt.param_groups:
                g["lr"] = learning_rate(cfg.lr, progress_fraction())
            net.train()
            idx = torch.randint(0, n, (cfg.batch,), generator=gen)
            b = _batch(pool, idx.to(device), bool(torch.rand((), generator=gen) < 0.5))
            logits = net(**{k: b[k] for k in KEYS})
            loss, ce = rebalanced_loss(logits, b["ab"], bins_d, weights, cfg.sigma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            last = progress_fraction() >= 1.0
            row = [step, f"{loss.item():.4f}", f"{ce.item():.4f}", "", "", f"{time.monotonic() - t0:.1f}"]
            if step % cfg.checkpoint_every == 0 or last:
                val = validate(net, pools.get("val") or {}, bins_d, weights, cfg.sigma, device)
                if val is not None:
                    row[3:5] = [f"{val[0]:.4f}", f"{val[1]:.4f}"]
                state = {"net": net.state_dict(), "opt": opt.state_dict(), "step": step, "best": best,
                         "prior": prior, "seconds": time.monotonic() - t0}
                save_atomic(out / f"step_{step}.pt", {"net": net.state_dict(), "step": step, "prior": prior,
                                                       "val": val[1] if val is not None else None})
                if val is None or val[1] < best:  # the plain CE: how likely the true colours are
                    best = val[1] if val is not None else best
                    state["best"] = best
                    save_atomic(out / "best.pt", {"net": net.state_dict(), "step": step, "val": best, "prior": prior})
                save_atomic(ckpt, state)
            writer.writerow(row)
            if step % cfg.checkpoint_every == 0:
                logf.flush()
            if progress is not None:
                progress(step, loss.item())
    finally:
        logf.close()
    return export_auto(cfg)


def learning_rate(peak: float, f: float) -> float:
    """Warm up over the first 3 % of training, then cosine down to 2 % of ``peak``."""
    if f < 0.03:
        return peak * (0.1 + 0.9 * f / 0.03)
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, (f - 0.03) / 0.97))))


@torch.inference_mode()
def validate(net: AutoNet, pool: dict[str, torch.Tensor], bins, weights, sigma, device) -> tuple[float, float] | None:
    if not pool:
        return None
    net.eval()
    tot = [0.0, 0.0]
    n = len(pool["ab"])
    for s in range(0, n, 32):
        b = {k: v[s:s + 32].to(device).float() for k, v in pool.items()}
        loss, ce = rebalanced_loss(net(**{k: b[k] for k in KEYS}), b["ab"], bins, weights, sigma)
        tot[0] += loss.item() * len(b["ab"])
        tot[1] += ce.item() * len(b["ab"])
    return tot[0] / n, tot[1] / n


def export_auto(cfg: TrainAutoConfig, *, which: str = "best") -> Path:
    """Write ``OUT/auto.safetensors`` from the ``best`` (lowest validation CE), ``last``
    or ``step_N`` checkpoint."""
    out = Path(cfg.out)
    path = out / f"{which}.pt"
    if not path.is_file():
        raise InputError("no checkpoint to export yet", path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = AutoNet(width=cfg.width, bins=ab_bins().shape[0], dropout=cfg.dropout)
    net.load_state_dict(state["net"])
    splits = split_names(configured_splits(cfg))
    weights = out / "auto.safetensors"
    save_auto(net.eval(), weights, state["prior"], {
        "config": provenance(cfg), "steps": int(state["step"]), "val_ce": state.get("val"),
        "photos": len(splits["train"]), "held_out": sum(len(v) for k, v in splits.items() if k != "train"),
        "splits": splits,
        "data": [os.path.basename(d) for d in cfg.data], "checkpoint": which,
        "command": f"vidcolor train auto --config configs/train-auto.yaml{_flags(cfg)}"
                   + (f"; vidcolor train auto --config configs/train-auto.yaml --export {which}"
                      if which != "best" else "")})
    return weights


def _flags(cfg: TrainAutoConfig) -> str:
    return (f" --minutes {cfg.minutes:g}" if cfg.minutes else "") + (f" --threads {cfg.threads}" if cfg.threads else "")
