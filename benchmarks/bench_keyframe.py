"""Keyframe propagation on the development clips, and where the encoder's share of the error goes.

    python benchmarks/bench_keyframe.py [--ref mid|alt] [--crf 0,16] [-- VIDCOLOR ARGS ...]

Each development clip (../shared/eval/set: black-and-white input, colour
source, a still per shot) is coloured by ``vidcolor --reference-map`` with
each shot's ``mid`` still (a hand-coloured keyframe of the shot) or ``alt``
still (another view), once per --crf (0: lossless; 16: x264's default here).
Per clip and on average it prints the PSNR of the output against the colour
source (as ../shared/eval/quality.py scores it: RGB, every frame) and splits
what the encoding costs in two, in the Y'CbCr 4:2:0 planes of the files:

- ``chroma``: the input's own luma with the output's chroma (what our
  colour, as coded, is worth on the luma we were given);
- ``luma vs input``: PSNR of the output's luma against the input's, which
  vidcolor passes through unchanged (pure generation loss of the encoder).

Extra arguments after ``--`` go to vidcolor (``-- -c configs/fine.yaml``).
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
DEV_SET = HERE.parent.parent / "shared" / "eval" / "set"


def planes(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]


def rgb(yuv: np.ndarray) -> np.ndarray:
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(yuv), format="yuv420p").to_ndarray(format="rgb24")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def with_luma(y_of: np.ndarray, c_of: np.ndarray) -> np.ndarray:
    """A 4:2:0 frame (stacked planes) with the luma of one and the chroma of the other."""
    h = y_of.shape[0] * 2 // 3
    out = c_of.copy()
    out[:h] = y_of[:h]
    return out


def colour(clip: Path, meta: dict, kind: str, crf: str, work: Path, extra: list[str]) -> Path:
    table = work / f"{clip.name}_{kind}.csv"
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["start", "reference"])
        for k, start in enumerate(meta["shot_starts"]):
            w.writerow([start, str(clip / "refs" / f"shot{k}_{kind}.png")])
    out = work / f"{clip.name}_{kind}_crf{crf}.mp4"
    subprocess.run([sys.executable, "-m", "vidcolor", str(clip / meta["gray"]), "--reference-map", str(table),
                    "-o", str(out), "--crf", crf, "--overwrite", "-q", *extra], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", choices=["mid", "alt"], default="mid")
    ap.add_argument("--crf", default="0,16", help="comma-separated x264 crf values (0: lossless)")
    ap.add_argument("--set", type=Path, default=DEV_SET)
    ap.add_argument("extra", nargs="*", help="vidcolor arguments (after --)")
    a = ap.parse_args()
    clips = sorted(p.parent for p in a.set.glob("*/meta.json"))
    if not clips:
        ap.error(f"no development set at {a.set}")
    crfs = a.crf.split(",")
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            meta = json.loads((clip / "meta.json").read_text())
            truth = planes(a.set.parent / "src" / meta["source"])
            truth_rgb = [rgb(f) for f in truth]
            gray = planes(clip / meta["gray"])
            h = gray[0].shape[0] * 2 // 3
            bound = np.mean([psnr(rgb(with_luma(g, t)), r) for g, t, r in zip(gray, truth, truth_rgb)])
            line = [f"{clip.name:10s} input luma + true chroma {bound:.2f}"]
            for crf in crfs:
                out = planes(colour(clip, meta, a.ref, crf, Path(tmp), a.extra))
                vals = [np.mean([psnr(rgb(o), r) for o, r in zip(out, truth_rgb)]),
                        np.mean([psnr(rgb(with_luma(g, o)), r) for g, o, r in zip(gray, out, truth_rgb)]),
                        np.mean([psnr(o[:h], g[:h]) for o, g in zip(out, gray)])]
                rows.setdefault(crf, []).append(vals)
                line.append(f"| crf {crf}: {vals[0]:.2f} (chroma {vals[1]:.2f}, luma vs input {vals[2]:.2f})")
            print(" ".join(line), flush=True)
    for crf, v in rows.items():
        m = np.mean(v, axis=0)
        print(f"MEAN --ref {a.ref} crf {crf}: psnr {m[0]:.2f} | input luma + our chroma {m[1]:.2f} | "
              f"luma vs input {m[2]:.2f}")


if __name__ == "__main__":
    main()
