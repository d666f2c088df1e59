"""Where ``auto``'s flicker comes from: CDC on the development clips with one part of auto or of the
temporal smoothing changed at a time.

    python benchmarks/auto_flicker.py [--clips street] [--variants shipped,no-hint,no-hint+no-consensus] [--set DIR]

Each variant renders every clip with ``vidcolor CLIP -o OUT --crf 0`` (no
reference: every shot goes to ``auto``), in this process, with the auto
colorizer's decoding, its temporal hint or the config changed as the
variant's parts say (:data:`PARTS`), and prints per clip and
variant: PSNR, colourfulness, CDC (``../shared/eval/quality.py``'s, lower
is steadier) beside the truth's CDC, and two plainer measures of the same
thing: ``jump``, the mean over a shot's consecutive frames of the change of
the frame's mean chroma (Lab a/b length), and ``dab``, the mean per-pixel
a/b change between consecutive frames. Needs ``../shared`` (the clips and
the scorer); not a test.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "eval"


def _quality():
    spec = importlib.util.spec_from_file_location("quality", SHARED / "quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: parts a variant is made of ("+"-joined: ``no-hint+no-consensus``): (changes to the fitted decoding,
#: changes to auto's temporal hint (None: no hint at all, the config's settings), config overrides)
PARTS: dict[str, tuple[dict, dict | None, dict]] = {
    "shipped": ({}, {}, {}),
    "no-hint": ({}, None, {}),  # auto's shots smoothed as the config says, as before the hint
    "hint-forward": ({}, {"mode": "forward"}, {}),  # the hint's strength and flow trust, one direction
    "hint-w48": ({}, {"window": 48}, {}),  # a shorter backward window (less memory)
    "legacy": ({"legacy": True}, {}, {}),  # the plain annealed mean at T 0.38
    "no-consensus": ({"consensus": "off"}, {}, {}),
    "no-conf-chroma": ({"power": 0.0}, {}, {}),  # chroma not scaled by confidence
    "no-spread": ({"spread": 0.0, "power": 0.0}, {}, {}),  # no confidence at all
    "temporal-off": ({}, {}, {"temporal.mode": "off"}),
    "bidirectional": ({}, {}, {"temporal.mode": "bidirectional"}),
    "detail-0": ({}, {}, {"temporal.detail": 0.0}),
    "s95": ({}, {}, {"temporal.strength": 0.95}),
    "s99": ({}, {}, {"temporal.strength": 0.99}),
    "loose": ({}, {}, {"temporal.fb_sigma": 3.0, "temporal.l_sigma_8bit": 24.0}),
}


def variant(name: str) -> tuple[dict, dict | None, dict]:
    """A "+"-joined list of :data:`PARTS` -> (decoding changes, hint, config overrides)."""
    from vidcolor.models.auto import AutoColorizer

    change, hint, over = {}, dict(AutoColorizer.temporal or {}), {}
    for part in name.split("+"):
        if part.startswith("dec.") and "=" in part:  # dec.NAME=VALUE: one decoding field
            k, v = part[4:].split("=", 1)
            change[k] = v if k == "consensus" else float(v)
            continue
        if part.startswith("hint.") and "=" in part and hint is not None:  # hint.NAME=VALUE: one hint setting
            k, v = part[5:].split("=", 1)
            hint[k] = v if k == "mode" else (int(v) if k in ("window", "overlap") else float(v))
            continue
        if part not in PARTS:
            sys.exit(f"unknown variant part {part!r} (valid: {', '.join(PARTS)})")
        c, h, o = PARTS[part]
        change.update(c)
        over.update(o)
        hint = None if h is None or hint is None else {**hint, **h}
    return change, hint, over


def patch(change: dict, hint: dict | None):
    """Make every AutoColorizer built from now on decode as the fitted decoding with ``change``
    and give the temporal smoother ``hint``."""
    from vidcolor.models import auto
    from vidcolor.models.auto_decode import LEGACY

    init = auto.AutoColorizer.__dict__["__init__"]
    orig = getattr(init, "_orig", init)

    def patched(self, *a, **kw):
        orig(self, *a, **kw)
        self.temporal = hint
        if change.get("legacy"):
            self.decoding = LEGACY
        elif change:
            self.decoding = self.decoding.with_(**change)

    patched._orig = orig
    auto.AutoColorizer.__init__ = patched


def chroma_stats(frames: list[np.ndarray], starts: list[int]) -> tuple[float, float]:
    """(jump, dab): mean |change| of the frame's mean a/b length, and mean per-pixel a/b change,
    between consecutive frames of a shot."""
    ab = [cv2.cvtColor(f, cv2.COLOR_RGB2LAB)[..., 1:].astype(np.float32) - 128 for f in frames]
    level = [float(np.linalg.norm(x, axis=-1).mean()) for x in ab]
    bounds = starts[1:] + [len(frames)]
    jumps, dabs = [], []
    for a, b in zip(starts, bounds):
        for i in range(a, b - 1):
            jumps.append(abs(level[i + 1] - level[i]))
            dabs.append(float(np.abs(ab[i + 1] - ab[i]).mean()))
    return float(np.mean(jumps)), float(np.mean(dabs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", help="comma-separated clip names (default: all)")
    ap.add_argument("--variants", default="shipped,no-hint,hint-forward,no-hint+temporal-off,no-hint+no-consensus,"
                    "no-hint+no-conf-chroma,no-hint+legacy",
                    help="comma-separated, each a '+'-joined list of: " + ", ".join(PARTS)
                    + ", dec.FIELD=VALUE or hint.NAME=VALUE")
    ap.add_argument("--set", type=Path, default=SHARED / "set")
    a = ap.parse_args()
    q = _quality()
    from vidcolor.config import load_config
    from vidcolor.pipeline import colorize_video

    names = a.clips.split(",") if a.clips else sorted(p.parent.name for p in a.set.glob("*/meta.json"))
    table = {v: variant(v) for v in a.variants.split(",")}
    means: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            clip = a.set / name
            meta = json.loads((clip / "meta.json").read_text())
            gt, _ = q.video(a.set.parent / "src" / meta["source"])
            starts = meta["shot_starts"]
            gt_cdc = q.cdc(gt, starts)
            gj, gd = chroma_stats(gt, starts)
            print(f"{name}: truth cdc {gt_cdc:.5f} jump {gj:.3f} dab {gd:.3f}", flush=True)
            for v in a.variants.split(","):
                change, hint, over = table[v]
                patch(dict(change), hint)
                out = Path(tmp) / f"{name}_{v}.mp4"
                t = time.perf_counter()
                colorize_video(clip / meta["gray"], out, config=load_config(None, {"encode.crf": 0, **over}),
                               overwrite=True)
                secs = time.perf_counter() - t
                frames, _ = q.video(out)
                s = q.score(frames, gt, starts)
                j, d = chroma_stats(frames, starts)
                means.setdefault(v, []).append((s["psnr"], s["colorful"], s["cdc"], s["cdc"] / gt_cdc))
                print(f"  {v:24s} psnr {s['psnr']:.2f} colorful {s['colorful']:.2f} cdc {s['cdc']:.5f} "
                      f"(x{s['cdc'] / gt_cdc:.2f} truth) jump {j:.3f} dab {d:.3f}  [{secs:.0f} s]", flush=True)
    print("MEAN over clips:")
    for v, rows in means.items():
        p, c, d, r = np.mean(rows, axis=0)
        print(f"  {v:24s} psnr {p:.2f} colorful {c:.2f} cdc {d:.5f} cdc/truth x{r:.2f}")


if __name__ == "__main__":
    main()
