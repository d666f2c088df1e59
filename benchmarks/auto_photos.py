"""Shared by the ``auto`` benchmarks: the photo splits of ``configs/train-auto.yaml``,
photos reduced to their L, the network's logits cached, scoring against the truth.

Not a benchmark itself; ``bench_auto.py`` (test split, report only) and
``fit_auto_decoding.py`` (validation split, the decoding's choice) import it.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk 2003 on 8-bit RGB (as ``../shared/eval/quality.py``)."""
    r, g, b = [rgb[..., i].astype(np.float64) for i in range(3)]
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def lab_rgb8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    lab = np.dstack([L, ab]).astype(np.float32)
    return (np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1) * 255 + 0.5).astype(np.uint8)


def patchiness(rgb: np.ndarray, L_true: np.ndarray, k: int = 15) -> float:
    """Hue patches: the mean local (k x k) standard deviation of the output's a/b where the
    picture's L is even (local L standard deviation under 1.5): sky, walls, uniforms."""
    def local_sd(x):
        m = cv2.boxFilter(x, -1, (k, k))
        return np.sqrt(np.maximum(cv2.boxFilter(x * x, -1, (k, k)) - m * m, 0))

    flat = local_sd(L_true.astype(np.float32)) < 1.5
    if not flat.any():
        return 0.0
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    sd = np.hypot(local_sd(lab[..., 1]), local_sd(lab[..., 2]))
    return float(sd[flat].mean())


def split(name: str, config: str | None = None, data: str | None = None) -> list[Path]:
    """The photos of split ``name`` (train, val, test) as ``configs/train-auto.yaml`` splits them."""
    import dataclasses

    from vidcolor.train.auto import configured_splits, load_train_config

    cfg = load_train_config(config or ROOT / "configs" / "train-auto.yaml")
    if data:
        cfg = dataclasses.replace(cfg, data=[data])
    return configured_splits(cfg)[name]


def load_photo(p: Path, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 at most ``side`` px on its long side, its Lab L float32)."""
    from vidcolor.io.image import read_image

    rgb = read_image(p)
    if rgb.dtype != np.uint8:
        rgb = (rgb / 257).astype(np.uint8)
    s = side / max(rgb.shape[:2])
    if s < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(rgb)
    return rgb, cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 0].copy()


class Scored:
    """Photos with their logits computed once (both views), scored under any decoding."""

    def __init__(self, colorizer, photos: list[tuple[str, np.ndarray, np.ndarray]]):
        from vidcolor.models.auto_decode import Decoding

        self.c = colorizer
        self.photos = photos
        keep = colorizer.decoding
        colorizer.decoding = Decoding(agree=1.0, view_scale=keep.view_scale)  # both views' logits
        self.logits = []
        for _, _, L in photos:
            self.logits.append(colorizer.infer(torch.from_numpy(L)[None, None]))
        colorizer.decoding = keep
        self.gt_cf = np.array([colorfulness(rgb) for _, rgb, _ in photos])
        self.gray = np.array([psnr(lab_rgb8(L, np.zeros((*L.shape, 2), np.float32)), rgb) for _, rgb, L in photos])

    def outputs(self, dec) -> list[np.ndarray]:
        """Each photo decoded by ``dec``, or by its own of a list of decodings (one per photo)."""
        decs = dec if isinstance(dec, list) else [dec] * len(self.photos)
        out = []
        keep = self.c.decoding
        for (_, _, L), (z, z2), dec in zip(self.photos, self.logits, decs):
            self.c.decoding = dec
            self.c.begin_shot(None)  # each photo is a shot of its own
            ab = self.c.finish(torch.from_numpy(L)[None, None], z, z2 if dec.agree > 0 else None)
            out.append(lab_rgb8(L, ab[0].permute(1, 2, 0).numpy()))
        self.c.decoding = keep
        return out

    def score(self, dec) -> dict:
        t0 = time.perf_counter()
        outs = self.outputs(dec)
        secs = (time.perf_counter() - t0) / len(outs)
        ps = np.array([psnr(o, rgb) for o, (_, rgb, _) in zip(outs, self.photos)])
        cf = np.array([colorfulness(o) for o in outs])
        patch = np.mean([patchiness(o, L) for o, (_, _, L) in zip(outs, self.photos)])
        return {"patch": float(patch), "psnr": float(ps.mean()), "gain": float((ps - self.gray).mean()),
                "worst": float((ps - self.gray).min()), "ratio": float(cf.mean() / self.gt_cf.mean()), "per_photo": ps, "cf": cf, "ms": secs * 1000}
