"""The temporal smoother alone, per backend: ms/frame at a film size, and how far the torch backend's codes are from numpy's.

    python benchmarks/bench_smoother.py [--size 1080] [--frames 48] [--mode forward] [--device cpu|cuda]
                                        [--backends numpy,torch]

A synthetic pan (a smoothed random texture drifting 2 px a frame, its chroma moving with it, a
colour cast per frame) at the film's size, chroma 4:2:0, goes through ``TemporalSmoother`` in
batches of 8 as the pipeline feeds it, the flows computed first (not timed: they are the same
OpenCV DIS for both backends) so the figure is the smoothing itself, at the chroma size. The torch
backend runs on ``--device`` (the numpy one on the CPU, always) and is synchronised before the
clock stops. Printed per backend: ms/frame of ``push`` + ``end_shot``; for torch, the final 8-bit
codes' difference from numpy's (max, share of pixels within 1, mean).
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from vidcolor.color import YCbCrSpec, quantize_chroma
from vidcolor.temporal import TemporalSmoother

SIZES = {"480": (480, 854), "720": (720, 1280), "1080": (1080, 1920), "2160": (2160, 3840)}


def clip(n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    s = 4  # drawn small and enlarged: a smooth picture, quick to make at any size
    tex = cv2.resize(rng.uniform(0, 255, ((h + n) // s + 2, (w + 2 * n) // s + 2)).astype(np.float32),
                     None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
    col = cv2.resize(rng.uniform(-0.3, 0.3, ((h + n) // 16 + 2, (w + 2 * n) // 16 + 2, 2)).astype(np.float32),
                     None, fx=16, fy=16, interpolation=cv2.INTER_CUBIC)
    luma = np.stack([np.clip(tex[t // 2:t // 2 + h, 2 * t:2 * t + w], 0, 255).astype(np.uint8) for t in range(n)])
    chroma = np.stack([cv2.resize(col[t // 2:t // 2 + h, 2 * t:2 * t + w], (w // 2, h // 2),
                                  interpolation=cv2.INTER_AREA).transpose(2, 0, 1) for t in range(n)])
    chroma += rng.normal(0, 0.03, (n, 2, 1, 1)).astype(np.float32)
    return luma, np.clip(chroma, -0.5, 0.5).astype(np.float32)


def run(backend: str, device: str, luma, chroma, mode: str, batch: int = 8):
    sm = TemporalSmoother(mode=mode, threaded=False, backend=backend, device=device if backend == "torch" else None)
    size = chroma.shape[-2:]
    motions = [sm.motion(luma[a:a + batch], size) for a in range(0, len(luma), batch)]  # the flows: not timed
    dev = device if backend == "torch" else "cpu"
    batches = [torch.from_numpy(chroma[a:a + batch]).to(dev) for a in range(0, len(luma), batch)]
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = []
    for k, a in enumerate(range(0, len(luma), batch)):
        out += sm.push(list(range(a, a + len(batches[k]))), batches[k], motions[k])
    out += sm.end_shot()
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1000 / len(luma)
    return ms, np.stack([c.cpu().numpy() if isinstance(c, torch.Tensor) else c for _, c in out])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1080", choices=sorted(SIZES))
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--mode", default="forward", choices=("forward", "bidirectional"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--backends", default="numpy,torch")
    a = ap.parse_args()
    h, w = SIZES[a.size]
    luma, chroma = clip(a.frames, h, w)
    spec = YCbCrSpec(1, False, 8)
    results = {}
    for b in a.backends.split(","):
        ms, out = run(b, a.device, luma, chroma, a.mode)
        results[b] = out
        line = f"{a.size}p {a.mode} {b:5s} on {a.device if b == 'torch' else 'cpu':5s}: {ms:7.2f} ms/frame"
        if b != "numpy" and "numpy" in results:
            d = np.abs(quantize_chroma(torch.from_numpy(out), spec).numpy().astype(np.int16)
                       - quantize_chroma(torch.from_numpy(results["numpy"]), spec).numpy().astype(np.int16))
            line += f"  codes vs numpy: max {d.max()}, within 1: {np.mean(d <= 1):.6f}, mean {d.mean():.4f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
