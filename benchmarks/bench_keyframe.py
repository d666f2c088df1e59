"""Keyframe propagation on the development clips, where the encoder's share of the error goes, and the flow floor written alike.

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

Beside it, the ``flow_map`` floor of ../shared/eval/quality.py (each
shot's still carried to its frames by DIS optical flow) is scored twice:
``raw`` as quality.py scores it, RGB frames that were never encoded, and
``written alike``: the same frames stored the way vidcolor stores its
output (Y'CbCr 4:2:0, x264 with vidcolor's options at that crf). Only the
second is on equal terms with the tool: 4:2:0 and the encoder's noise alone
raise CDC (colour distribution consistency: JS divergence of the frames'
RGB histograms; lower is steadier). Both sides are scored by quality.py's own
``score`` (PSNR, SSIM, colourfulness, CDC), so it needs scikit-image.

Extra arguments after ``--`` go to vidcolor (``-- -c configs/fine.yaml``);
the floor is written with the codec's archival options at each crf.
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
import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
EVAL = HERE.parent.parent / "shared" / "eval"
DEV_SET = EVAL / "set"
sys.path.insert(0, str(HERE.parent))
from vidcolor.config import EncodeConfig  # noqa: E402
from vidcolor.io.encode import encoder_options  # noqa: E402


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


def write_alike(frames: list[np.ndarray], rate, crf: str, work: Path) -> list[np.ndarray]:
    """RGB frames stored as vidcolor stores its output (x264 4:2:0, its options at ``crf``), decoded back."""
    path = work / "floor.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = encoder_options(EncodeConfig(crf=int(crf)))
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def flow_floor(quality, clip: Path, meta: dict, kind: str, gray_rgb: list[np.ndarray]) -> list[np.ndarray]:
    starts = meta["shot_starts"]
    bounds = starts[1:] + [len(gray_rgb)]
    out = []
    for k, (a, b) in enumerate(zip(starts, bounds)):
        still = cv2.cvtColor(cv2.imread(str(clip / "refs" / f"shot{k}_{kind}.png")), cv2.COLOR_BGR2RGB)
        out += [quality.flow_carry(g, still) for g in gray_rgb[a:b]]
    return out


def fmt(m: dict) -> str:
    return f"psnr {m['psnr']:.2f} ssim {m['ssim']:.3f} cdc {m['cdc']:.5f}"


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
    sys.path.insert(0, str(EVAL))
    import quality  # the evaluation's own floor and scores

    crfs = a.crf.split(",")
    rows: dict[str, list[float]] = {}
    scores: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            meta = json.loads((clip / "meta.json").read_text())
            starts = meta["shot_starts"]
            truth = planes(a.set.parent / "src" / meta["source"])
            truth_rgb = [rgb(f) for f in truth]
            gray = planes(clip / meta["gray"])
            with av.open(str(clip / meta["gray"])) as c:
                rate = c.streams.video[0].average_rate
            h = gray[0].shape[0] * 2 // 3
            bound = np.mean([psnr(rgb(with_luma(g, t)), r) for g, t, r in zip(gray, truth, truth_rgb)])
            print(f"{clip.name:10s} input luma + true chroma {bound:.2f}", flush=True)
            floor = flow_floor(quality, clip, meta, a.ref, [rgb(g) for g in gray])
            m = quality.score(floor, truth_rgb, starts)
            scores.setdefault("raw", []).append(m)
            print(f"{'':10s} flow_map raw (quality.py's floor, never encoded): {fmt(m)}", flush=True)
            for crf in crfs:
                out = planes(colour(clip, meta, a.ref, crf, Path(tmp), a.extra))
                out_rgb = [rgb(o) for o in out]
                vals = [np.mean([psnr(o, r) for o, r in zip(out_rgb, truth_rgb)]),
                        np.mean([psnr(rgb(with_luma(g, o)), r) for g, o, r in zip(gray, out, truth_rgb)]),
                        np.mean([psnr(o[:h], g[:h]) for o, g in zip(out, gray)])]
                rows.setdefault(crf, []).append(vals)
                tool = quality.score(out_rgb, truth_rgb, starts)
                alike = quality.score(write_alike(floor, rate, crf, Path(tmp)), truth_rgb, starts)
                scores.setdefault(f"tool {crf}", []).append(tool)
                scores.setdefault(f"alike {crf}", []).append(alike)
                print(f"{'':10s} crf {crf}: tool {fmt(tool)} (chroma {vals[1]:.2f}, luma vs input {vals[2]:.2f}) | "
                      f"flow_map written alike {fmt(alike)}", flush=True)

    def mean(key: str) -> dict:
        return {k: float(np.mean([m[k] for m in scores[key]])) for k in ("psnr", "ssim", "cdc")}

    print(f"MEAN --ref {a.ref} flow_map raw (quality.py's floor): {fmt(mean('raw'))}")
    for crf, v in rows.items():
        m = np.mean(v, axis=0)
        print(f"MEAN --ref {a.ref} crf {crf}: tool {fmt(mean(f'tool {crf}'))} | input luma + our chroma {m[1]:.2f} | "
              f"luma vs input {m[2]:.2f} | flow_map written alike {fmt(mean(f'alike {crf}'))}")


if __name__ == "__main__":
    main()
