"""Training the exemplar colorizer's fusion network (``vidcolor train exemplar``).

Data: colour photos (and frames of colour clips) from the configured folders.
Each example is a target crop, shown to the network as luminance only (the L
of its luma, as a film frame is), with its true Cb/Cr (BT.601, x 255) as the
answer, and a
reference still of one of four kinds (He et al. 2018's two branches, and a
film's moving objects):

- ``keyframe``: the same picture moved a little (shift, scale, small elastic
  warp, luminance jitter): what a hand-coloured keyframe of the shot is to
  the other frames. Loss: smooth L1 on a/b against the target's own.
- ``motion``: a keyframe of a shot with things moving in it: the camera moves
  a little as for ``keyframe`` and one to three objects (blobs cut from other
  photos) move on their own between the two, so parts of the target are
  hidden in the reference and parts of the reference are hidden in the
  target (occlusion and disocclusion, where flow to the keyframe goes wrong).
  Loss: smooth L1 on a/b.
- ``view``: the same picture mirrored and re-framed (another view of the
  scene; optical flow fails). Loss: smooth L1 on a/b.
- ``other``: another photo. The target's colour cannot be read off it, so the
  loss is perceptual: features of the frozen backbone on the Lab -> RGB
  result against those of the true colour image, which rewards plausible
  colour and punishes wrong colour, plus a light a/b term.

The frozen alignment (optical flow, feature attention) is computed once per
example into a pool; the fusion network then trains on the pool with random
flips. Checkpoints (``last.pt``: network, optimiser, step) let a run resume;
``loss.csv`` logs the losses; the final weights are written as safetensors
with the config, data and step count in their metadata.
"""
from __future__ import annotations

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

from ..color import BT601, YCbCrSpec, gray_to_l, rgb_to_cbcr, rgb_to_luma, ycbcr_to_rgb
from ..config import ExemplarConfig
from ..errors import ConfigError, InputError
from ..io.image import IMAGE_EXTENSIONS, read_image
from ..models.exemplar import ExemplarColorizer
from ..models.fusion import FusionNet, rule_blend, save_fusion
from .common import (adam_cosine, loss_log, pool_cache, provenance, read_train_config, repo_paths, resume_from,
                     save_atomic, start_run)

__all__ = ["TrainExemplarConfig", "train_exemplar", "make_example", "load_photo", "to_tensor"]

log = logging.getLogger("vidcolor")
KINDS = ("keyframe", "view", "other", "motion")
SPEC = YCbCrSpec(BT601, True, 8)  # the matrix training examples are expressed in


@dataclass(frozen=True)
class TrainExemplarConfig:
    """What ``vidcolor train exemplar`` reads from its YAML file."""

    data: list[str] = field(default_factory=lambda: ["../shared/data/photos"])
    out: str = "runs/exemplar"
    size: int = 176  # square crops, pixels (a multiple of 8)
    pool: int = 2400  # examples aligned once and trained on
    kinds: dict[str, float] = field(default_factory=lambda: {"keyframe": 0.4, "view": 0.35, "other": 0.25})
    steps: int = 1500
    batch: int = 16
    lr: float = 1e-3
    width: int = 24
    depth: int = 3
    perceptual: float = 0.05  # weight of the perceptual loss on `other` examples
    other_ab: float = 0.1  # weight of the a/b loss on `other` examples
    seed: int = 0
    checkpoint_every: int = 250
    threads: int = 0
    exemplar: dict = field(default_factory=dict)  # ExemplarConfig overrides for the alignment


def load_train_config(path: str | os.PathLike) -> TrainExemplarConfig:
    from ..config import parse_section  # noqa: PLC0415

    cfg, p = read_train_config(path, TrainExemplarConfig)
    parse_section(ExemplarConfig, cfg.exemplar, "exemplar.", os.fspath(p))  # typos in the overrides are errors too
    if cfg.size % 8 or cfg.size < 32:
        raise ConfigError(f"size must be a multiple of 8 and at least 32, got {cfg.size}", p)
    if set(cfg.kinds) - set(KINDS) or not cfg.kinds or min(cfg.kinds.values()) < 0:
        raise ConfigError(f"kinds must weigh some of {', '.join(KINDS)}", p)
    return repo_paths(cfg, p)


def list_photos(folders: list[str]) -> list[Path]:
    out = []
    for d in folders:
        p = Path(d)
        if not p.is_dir():
            raise InputError("training data folder not found", p)
        out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
    if len(out) < 2:
        raise InputError("need at least two training images", folders[0] if folders else None)
    return out


def load_photo(path: Path, short: int) -> np.ndarray:
    """A training photo as 8-bit RGB (H, W, 3), its short side scaled to ``short``."""
    img = read_image(path)
    if img.dtype != np.uint8:
        img = (img / 257).astype(np.uint8)
    s = short / min(img.shape[:2])
    return cv2.resize(img, (max(short, round(img.shape[1] * s)), max(short, round(img.shape[0] * s))),
                      interpolation=cv2.INTER_AREA)


def _crop(img: np.ndarray, size: int, rng: random.Random, scale: float = 1.0, centre=None) -> tuple[np.ndarray, tuple]:
    """A size x size view of ``img`` covering ``size * scale`` pixels around ``centre`` (random if None)."""
    h, w = img.shape[:2]
    span = min(h, w, max(8, round(size * scale)))
    if centre is None:
        cx, cy = rng.uniform(span / 2, w - span / 2), rng.uniform(span / 2, h - span / 2)
    else:
        cx = min(max(centre[0], span / 2), w - span / 2)
        cy = min(max(centre[1], span / 2), h - span / 2)
    x0, y0 = int(round(cx - span / 2)), int(round(cy - span / 2))
    view = img[y0:y0 + span, x0:x0 + span]
    return cv2.resize(view, (size, size), interpolation=cv2.INTER_AREA if span > size else cv2.INTER_LINEAR), (cx, cy)


def _elastic(img: np.ndarray, rng: random.Random, amount: float) -> np.ndarray:
    h, w = img.shape[:2]
    g = np.random.default_rng(rng.randrange(1 << 30))
    d = [cv2.resize(g.normal(0, amount, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
         for _ in range(2)]
    x, y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, x + d[0], y + d[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _jitter_luma(img: np.ndarray, rng: random.Random) -> np.ndarray:
    gain, bias = rng.uniform(0.85, 1.15), rng.uniform(-12, 12)
    return np.clip(img.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def _blob(size: int, rng: random.Random) -> np.ndarray:
    """A random smooth-edged object mask, float32 (size, size) in [0, 1]."""
    g = np.random.default_rng(rng.randrange(1 << 30))
    noise = cv2.resize(g.normal(0, 1, (5, 5)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2) / (size / 2)
    ax = rng.uniform(0.5, 1.0)
    field = 1.0 - np.sqrt((xx / ax) ** 2 + (yy * ax) ** 2) + 0.2 * noise
    m = (field > 0.2).astype(np.float32)
    return cv2.GaussianBlur(m, (0, 0), rng.uniform(0.5, 1.2))


def _paste(img: np.ndarray, obj: np.ndarray, mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """``obj`` over ``img`` through ``mask``, its top-left corner at (x, y) (clipped to the frame)."""
    h, w = img.shape[:2]
    s = obj.shape[0]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + s, w), min(y + s, h)
    if x1 <= x0 or y1 <= y0:
        return img
    out = img.astype(np.float32)
    m = mask[y0 - y:y1 - y, x0 - x:x1 - x, None]
    out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - m) + obj[y0 - y:y1 - y, x0 - x:x1 - x] * m
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def make_example(photos: list[Path], size: int, kind: str, rng: random.Random, cache: dict | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(target, reference) RGB uint8 (size, size, 3) pair of the given kind."""
    cache = {} if cache is None else cache

    def get(i):
        if i not in cache:
            cache[i] = load_photo(photos[i], round(size * 1.6))
        return cache[i]

    i = rng.randrange(len(photos))
    img = get(i)
    target, centre = _crop(img, size, rng, scale=rng.uniform(0.8, 1.2))
    if kind == "keyframe":
        s = rng.uniform(0.9, 1.1)
        c = (centre[0] + rng.uniform(-0.12, 0.12) * size, centre[1] + rng.uniform(-0.12, 0.12) * size)
        ref, _ = _crop(img, size, rng, scale=s * rng.uniform(0.8, 1.2), centre=c)
        ref = _elastic(ref, rng, rng.uniform(0, 2.5))
    elif kind == "motion":
        c = (centre[0] + rng.uniform(-0.08, 0.08) * size, centre[1] + rng.uniform(-0.08, 0.08) * size)
        ref, _ = _crop(img, size, rng, scale=rng.uniform(0.95, 1.05) * rng.uniform(0.8, 1.2), centre=c)
        for _ in range(rng.choice((1, 1, 2, 3))):
            s = rng.randrange(size // 4, size * 3 // 5)
            j = rng.randrange(len(photos) - 1)
            obj, _ = _crop(get(j + (j >= i)), s, rng, scale=rng.uniform(0.5, 1.5))
            mask = _blob(s, rng)
            x, y = rng.randrange(-s // 4, size - s * 3 // 4), rng.randrange(-s // 4, size - s * 3 // 4)
            ang, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0.05, 0.3) * size
            dx, dy = round(dist * math.cos(ang)), round(dist * math.sin(ang))
            target = _paste(target, obj, mask, x, y)
            ref = _paste(ref, obj, mask, x + dx, y + dy)
        ref = _elastic(ref, rng, rng.uniform(0, 1.5))
    elif kind == "view":
        c = (centre[0] + rng.uniform(-0.3, 0.3) * size, centre[1] + rng.uniform(-0.3, 0.3) * size)
        ref, _ = _crop(img, size, rng, scale=rng.uniform(0.8, 1.4), centre=c)
        ref = _elastic(ref[:, ::-1], rng, rng.uniform(0, 3))
    else:
        j = rng.randrange(len(photos) - 1)
        ref, _ = _crop(get(j + (j >= i)), size, rng, scale=rng.uniform(0.8, 1.4))
    ref = _jitter_luma(np.ascontiguousarray(ref), rng) if kind != "other" else ref
    return np.ascontiguousarray(target), np.ascontiguousarray(ref)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


INPUTS = ("L", "ab_flow", "conf_flow", "ab_att", "sim")


def build_pool(cfg: TrainExemplarConfig, photos: list[Path], colorizer: ExemplarColorizer,
               rng: random.Random) -> dict[str, torch.Tensor]:
    """Align ``cfg.pool`` examples once: the fusion network's inputs, the true a/b and RGB, the kind."""
    names, weights = zip(*cfg.kinds.items())
    cache: dict = {}
    rows: dict[str, list] = {k: [] for k in (*INPUTS, "ab", "rgb", "kind")}
    t0 = time.monotonic()
    for n in range(cfg.pool):
        kind = rng.choices(names, weights)[0]
        target, ref = make_example(photos, cfg.size, kind, rng, cache)
        t = to_tensor(target)
        colorizer.begin_shot(to_tensor(ref))
        inputs = colorizer.align(gray_to_l(rgb_to_luma(t, SPEC)))
        for k in INPUTS:
            rows[k].append(inputs[k].half())
        rows["ab"].append((rgb_to_cbcr(t, SPEC) * 255).half())
        rows["rgb"].append(torch.from_numpy(target).permute(2, 0, 1)[None])
        rows["kind"].append(torch.tensor([KINDS.index(kind)]))
        if (n + 1) % 200 == 0:
            log.info("pool: %d/%d examples aligned (%.0f s)", n + 1, cfg.pool, time.monotonic() - t0)
    return {k: torch.cat(v) for k, v in rows.items()}


def _batch(pool: dict[str, torch.Tensor], idx: torch.Tensor, rng: random.Random) -> dict[str, torch.Tensor]:
    b = {k: v[idx].float() for k, v in pool.items()}
    b["rgb"] = b["rgb"] / 255.0
    if rng.random() < 0.5:  # the same flip for inputs and truth
        b = {k: (v.flip(-1) if v.dim() == 4 else v) for k, v in b.items()}
    return b


def _perceptual(backbone, rgb_pred: torch.Tensor, rgb_true: torch.Tensor) -> torch.Tensor:
    fp = backbone.features(rgb_pred, upto=8).maps
    with torch.no_grad():
        ft = backbone.features(rgb_true, upto=8).maps
    return sum(F.mse_loss(a, b) for a, b in zip(fp[1:], ft[1:]))


def train_exemplar(cfg: TrainExemplarConfig, *, device: torch.device | str = "cpu", resume: bool = True,
                   progress=None) -> Path:
    """Train the fusion network; returns the path of the exported safetensors."""
    from ..models.backbone import efficientnet_lite0

    device = torch.device(device)
    out = start_run(cfg)
    rng = random.Random(cfg.seed)
    photos = list_photos(cfg.data)
    ecfg = ExemplarConfig(**{**cfg.exemplar, "weights": "rule"})

    def align() -> dict[str, torch.Tensor]:
        colorizer = ExemplarColorizer(device=torch.device("cpu"), config=ecfg)
        colorizer.set_ycbcr(SPEC)
        return build_pool(cfg, photos, colorizer, rng)

    pool = {k: v.to(device) for k, v in pool_cache(out / "pool.pt", resume, align).items()}
    net = FusionNet(width=cfg.width, depth=cfg.depth).to(device)
    opt, sched = adam_cosine(net, cfg)
    backbone = efficientnet_lite0(pretrained=True).to(device).requires_grad_(False)
    ckpt = out / "last.pt"
    state = resume_from(ckpt, device, net=net, opt=opt, sched=sched) if resume else None
    step = int(state["step"]) if state else 0
    logf, writer = loss_log(out, ["step", "loss", "ab_same", "ab_other", "perceptual", "rule_ab_same", "seconds"], step)
    n = len(pool["kind"])
    other = KINDS.index("other")
    t0 = time.monotonic()
    net.train()
    try:
        while step < cfg.steps:
            idx = torch.randint(0, n, (cfg.batch,), generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + step))
            b = _batch(pool, idx.to(device), rng)
            pred = net(**{k: b[k] for k in INPUTS})
            same = b["kind"] != other
            err = F.smooth_l1_loss(pred, b["ab"], reduction="none", beta=2.0).mean(dim=(1, 2, 3))
            ab_same = err[same].mean() if same.any() else pred.new_zeros(())
            ab_other = err[~same].mean() if (~same).any() else pred.new_zeros(())
            perc = pred.new_zeros(())
            if (~same).any() and cfg.perceptual > 0:
                y = rgb_to_luma(b["rgb"][~same], SPEC)
                rgb = ycbcr_to_rgb(y, pred[~same] / 255.0, SPEC)
                perc = _perceptual(backbone, rgb, b["rgb"][~same])
            loss = ab_same + cfg.other_ab * ab_other + cfg.perceptual * perc
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            with torch.no_grad():  # the untrained rule on the same batch, for comparison
                base = rule_blend(b["ab_flow"], b["conf_flow"], b["ab_att"], b["sim"])
                rule_err = F.smooth_l1_loss(base, b["ab"], reduction="none", beta=2.0).mean(dim=(1, 2, 3))
                rule_same = rule_err[same].mean().item() if same.any() else math.nan
            writer.writerow([step, f"{loss.item():.4f}", f"{ab_same.item():.4f}", f"{ab_other.item():.4f}",
                             f"{perc.item():.4f}", f"{rule_same:.4f}", f"{time.monotonic() - t0:.1f}"])
            if progress is not None:
                progress(step, loss.item())
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                logf.flush()
                save_atomic(ckpt, {"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                                   "step": step})
    finally:
        logf.close()
    net.eval()
    weights = out / "exemplar_fusion.safetensors"
    save_fusion(net, weights, {"config": provenance(cfg), "steps": step, "photos": len(photos),
                               "data": [os.path.basename(d) for d in cfg.data],
                               "command": "vidcolor train exemplar --config configs/train-exemplar.yaml"})
    return weights
