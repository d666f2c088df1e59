"""Colour from a still framed otherwise than the shot: the bundled samples against their colour truth.

    python benchmarks/bench_reframed.py [--photos DIR] [-- VIDCOLOR ARGS ...]

The samples (samples/README.md) are 16:9 camera moves over photos, and
each still is the photo framed otherwise: the whole (square) astronaut photo
for ``sample.mp4``, whose frames push in from 0.56 to 0.46 of its height;
shifted 4:3-ish crops for the two shots of ``montage.mp4``. The colour truth is the same camera move over the
colour photo (samples/make_samples.py, from ../shared/data/photos). Each clip
is coloured as the README does it, losslessly (``--crf 0``, so only the
colour is scored), and its PSNR against the truth (RGB, every frame) printed,
with its quarters: a push-in drifts further from the still's framing as it
goes. ``-- -c FILE`` compares a setting, e.g. a config with
``exemplar: {prealign: false}``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "samples"))
import make_samples  # noqa: E402

CLIPS = {
    "sample": (["--reference", "samples/reference.jpg"], [make_samples.SAMPLE]),
    "montage": (["--reference-map", "samples/montage_map.csv"], list(make_samples.MONTAGE)),
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=make_samples.DEFAULT_PHOTOS)
    ap.add_argument("extra", nargs="*", help="vidcolor arguments (after --)")
    a = ap.parse_args()
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (refs, shots) in CLIPS.items():
            truth = [f for s in shots for f in make_samples.camera_move(make_samples.load_rgb(a.photos, s.photo), s)]
            out = Path(tmp) / f"{name}.mp4"
            subprocess.run([sys.executable, "-m", "vidcolor", f"samples/{name}.mp4", *refs, "-o", str(out), "--crf", "0",
                            "-q", *a.extra], check=True, cwd=ROOT)
            with av.open(str(out)) as c:
                p = [psnr(f.to_ndarray(format="rgb24"), t) for f, t in zip(c.decode(video=0), truth)]
            q = [np.mean(p[k * len(p) // 4:(k + 1) * len(p) // 4]) for k in range(4)]
            scores.append(np.mean(p))
            print(f"{name:8s} psnr {np.mean(p):.2f}  quarters {' '.join(f'{v:.2f}' for v in q)}", flush=True)
    print(f"MEAN psnr {np.mean(scores):.2f}")


if __name__ == "__main__":
    main()
