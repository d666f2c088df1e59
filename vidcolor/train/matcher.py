"""Training the exemplar colorizer's similarity sub-net (``vidcolor train matcher``).

The head (:class:`vidcolor.models.matcher.MatcherHead`) learns a projection
of the frozen backbone's luminance features such that softmax attention from
a target's cells over a reference's cells carries the reference's colour to
the right places. Examples are pairs of crops of colour photos
(:func:`vidcolor.train.exemplar.make_example`) where the reference is a
transformed copy of the target, so the target's own chroma is the answer
(He et al.'s chrominance branch): ``keyframe`` (moved a little, small
elastic warp, luminance jitter), ``motion`` (objects moving on their own
between the two) and ``view`` (mirrored and re-framed: flow fails, only the
features can match). Loss: smooth L1 between the attended Cb/Cr and the
target's, per feature cell.

The backbone is frozen, so its features are computed once per example into a
pool; training then runs on the pool with random flips. Every fifth photo is
held out: its examples are the validation set, scored for the raw features
(an untrained head) and for the head at every checkpoint. Checkpoints
(``last.pt``) let a run resume; ``loss.csv`` logs; the weights are written as
safetensors with the config, data, steps and validation figures in their
metadata.
"""
from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..color import gray_to_l, rgb_to_cbcr, rgb_to_luma
from ..config import ExemplarConfig
from ..errors import ConfigError
from ..models.matcher import FeatureMatcher, MatcherHead, attend, matching_features, raw_features, save_matcher
from .common import (adam_cosine, loss_log, pool_cache, provenance, read_train_config, repo_paths, resume_from,
                     save_atomic, start_run)
from .exemplar import SPEC, to_tensor, list_photos, make_example

__all__ = ["TrainMatcherConfig", "load_train_config", "train_matcher", "build_pool", "validate"]

log = logging.getLogger("vidcolor")
KINDS = ("keyframe", "motion", "view")  # the reference is a transformed copy of the target: its colour is the answer


@dataclass(frozen=True)
class TrainMatcherConfig:
    """What ``vidcolor train matcher`` reads from its YAML file."""

    data: list[str] = field(default_factory=lambda: ["../shared/data/photos"])
    out: str = "runs/matcher"
    size: int = 224  # square crops, pixels (a multiple of 8)
    pool: int = 4000  # example pairs (every fifth photo's go to validation)
    kinds: dict[str, float] = field(default_factory=lambda: {"keyframe": 0.3, "motion": 0.4, "view": 0.3})
    steps: int = 3000
    batch: int = 16
    lr: float = 1e-3
    context: bool = False  # a 3x3 convolution too (a cell's neighbours; slower), off as in configs/train-matcher.yaml
    holdout: int = 5  # every holdout-th photo is held out for validation (0: none)
    seed: int = 0
    checkpoint_every: int = 250
    threads: int = 0
    exemplar: dict = field(default_factory=dict)  # ExemplarConfig overrides (temperature, tone_weight)


def load_train_config(path: str | os.PathLike) -> TrainMatcherConfig:
    from ..config import parse_section  # noqa: PLC0415

    cfg, p = read_train_config(path, TrainMatcherConfig)
    parse_section(ExemplarConfig, cfg.exemplar, "exemplar.", os.fspath(p))  # typos in the overrides are errors too
    if cfg.size % 8 or cfg.size < 32:
        raise ConfigError(f"size must be a multiple of 8 and at least 32, got {cfg.size}", p)
    if set(cfg.kinds) - set(KINDS) or not cfg.kinds or min(cfg.kinds.values()) < 0 or sum(cfg.kinds.values()) <= 0:
        raise ConfigError(f"kinds must weigh some of {', '.join(KINDS)}", p)
    if cfg.pool < 2 or cfg.steps < 1 or cfg.batch < 1 or cfg.holdout < 0 or cfg.holdout == 1:
        raise ConfigError("pool must be >= 2, steps and batch >= 1, holdout 0 or >= 2", p)
    return repo_paths(cfg, p)


def build_pool(cfg: TrainMatcherConfig, photos: list[Path], net, rng: random.Random) -> dict[str, torch.Tensor]:
    """``cfg.pool`` example pairs described once: raw features (fp16), cell tones and cell Cb/Cr x 255 of
    target (q) and reference (k), the kind, and whether the pair is held out (``val``)."""
    names, weights = zip(*cfg.kinds.items())
    held = [p for i, p in enumerate(photos) if cfg.holdout and i % cfg.holdout == 0]
    train = [p for p in photos if p not in held] or photos
    caches: dict[bool, dict] = {False: {}, True: {}}
    rows: dict[str, list] = {k: [] for k in ("fq", "fk", "tq", "tk", "abq", "abk", "kind", "val")}
    t0 = time.monotonic()
    for n in range(cfg.pool):
        val = bool(held) and len(held) >= 2 and n % cfg.holdout == 0
        kind = rng.choices(names, weights)[0]
        target, ref = make_example(held if val else train, cfg.size, kind, rng, caches[val])
        with torch.inference_mode():
            for side, img in (("q", target), ("k", ref)):
                t = to_tensor(img)
                L = gray_to_l(rgb_to_luma(t, SPEC))
                f = raw_features(net, L)
                cells = f.shape[-2:]
                rows["f" + side].append(f.half())
                rows["t" + side].append(FeatureMatcher.tones(L, cells))
                rows["ab" + side].append(F.adaptive_avg_pool2d(rgb_to_cbcr(t, SPEC) * 255.0, cells))
        rows["kind"].append(KINDS.index(kind))
        rows["val"].append(val)
        if (n + 1) % 500 == 0:
            log.info("pool: %d/%d examples described (%.0f s)", n + 1, cfg.pool, time.monotonic() - t0)
    return {k: torch.cat(v) if torch.is_tensor(v[0]) else torch.tensor(v) for k, v in rows.items()}


def _attend(head: MatcherHead | None, b: dict[str, torch.Tensor], ecfg: ExemplarConfig) -> torch.Tensor:
    """Attended Cb/Cr of a batch's targets (N, 2, h, w); ``head`` None: the raw features."""
    q, k = matching_features(b["fq"].float(), head), matching_features(b["fk"].float(), head)
    return attend(q, k, b["abk"], b["tq"], b["tk"], temperature=ecfg.temperature, tone_weight=ecfg.tone_weight)[0]


def validate(head: MatcherHead | None, pool: dict[str, torch.Tensor], idx: torch.Tensor,
             ecfg: ExemplarConfig | None = None) -> dict[str, float]:
    """Mean squared Cb/Cr error (x 255 units, per cell) of the attention over ``idx``, overall and per
    kind; ``head`` None: the raw features; ``ecfg``: the attention's temperature and tone weight."""
    ecfg = ecfg or ExemplarConfig()
    errs = []
    with torch.no_grad():
        for s in range(0, len(idx), 64):
            b = {k: v[idx[s:s + 64]] for k, v in pool.items()}
            errs.append(((_attend(head, b, ecfg) - b["abq"]) ** 2).mean(dim=(1, 2, 3)))
    e = torch.cat(errs) if errs else torch.zeros(0)
    kinds = pool["kind"][idx]
    out = {"all": round(float(e.mean()), 3) if len(e) else float("nan")}
    for i, k in enumerate(KINDS):
        if (kinds == i).any():
            out[k] = round(float(e[kinds == i].mean()), 3)
    return out


def _batch(pool: dict[str, torch.Tensor], idx: torch.Tensor, flip: bool) -> dict[str, torch.Tensor]:
    b = {k: v[idx] for k, v in pool.items()}
    if flip:  # the same mirror for both sides and the answer
        b = {k: (v.flip(-1) if v.dim() == 4 else v) for k, v in b.items()}
        for t in ("tq", "tk"):  # (N, P) cell tones in row-major order: mirror each row
            h, w = pool["fq" if t == "tq" else "fk"].shape[-2:]
            b[t] = b[t].view(-1, h, w).flip(-1).reshape(-1, h * w)
    return b


def train_matcher(cfg: TrainMatcherConfig, *, device: torch.device | str = "cpu", resume: bool = True,
                  progress=None) -> Path:
    """Train the matcher head; returns the path of the exported safetensors."""
    from ..models.backbone import get_backbone

    device = torch.device(device)
    out = start_run(cfg)
    rng = random.Random(cfg.seed)
    photos = list_photos(cfg.data)
    ecfg = ExemplarConfig(**cfg.exemplar)
    pool = pool_cache(out / "pool.pt", resume, lambda: build_pool(cfg, photos, get_backbone(torch.device("cpu")), rng))
    pool = {k: v.to(device) for k, v in pool.items()}
    train_idx = torch.nonzero(~pool["val"]).flatten()
    val_idx = torch.nonzero(pool["val"]).flatten()
    head = MatcherHead(context=cfg.context).to(device)
    opt, sched = adam_cosine(head, cfg)
    ckpt = out / "last.pt"
    state = resume_from(ckpt, device, net=head, opt=opt, sched=sched) if resume else None
    step = int(state["step"]) if state else 0
    base = validate(None, pool, val_idx, ecfg)
    log.info("validation, raw features: %s", base)
    logf, writer = loss_log(out, ["step", "loss", "val_mse", "raw_val_mse", "seconds"], step)
    t0 = time.monotonic()
    val = base
    head.train()
    try:
        while step < cfg.steps:
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            idx = train_idx[torch.randint(0, len(train_idx), (cfg.batch,), generator=g)]
            b = _batch(pool, idx, flip=bool(step % 2))
            loss = F.smooth_l1_loss(_attend(head, b, ecfg), b["abq"], beta=2.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress is not None:
                progress(step, loss.item())
            row = [step, f"{loss.item():.4f}", "", "", f"{time.monotonic() - t0:.1f}"]
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                head.eval()
                val = validate(head, pool, val_idx, ecfg)
                head.train()
                row[2:4] = [val["all"], base["all"]]
                log.info("step %d: validation %s (raw features %s)", step, val, base["all"])
                save_atomic(ckpt, {"net": head.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                                   "step": step})
            writer.writerow(row)
    finally:
        logf.close()
    head.eval()
    weights = out / "exemplar_matcher.safetensors"
    save_matcher(head, weights, {"config": provenance(cfg), "steps": step, "photos": len(photos),
                                 "data": [os.path.basename(d) for d in cfg.data],
                                 "validation_mse": {"raw_features": base, "head": val},
                                 "command": "vidcolor train matcher --config configs/train-matcher.yaml"})
    return weights
