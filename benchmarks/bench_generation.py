"""Generation loss of the encoder on the luma vidcolor passes through unchanged.

    python benchmarks/bench_generation.py [FILM ...] [--crf 16,12,10]

vidcolor never touches a film's luma, so whatever the encoder loses of it is
pure generation loss. For each film (default: the development clips'
black-and-white inputs in ../shared/eval/set) this re-encodes the decoded
YUV 4:2:0 frames with libx264 (preset medium) at each --crf and prints the
luma PSNR against the input's luma and the file size against the input's.
The figures behind the default crf and the advice for masters (vidcolor/io/encode.py).
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
DEV_SET = HERE.parent.parent / "shared" / "eval" / "set"


def measure(path: Path, crfs: list[str], work: Path) -> None:
    with av.open(str(path)) as src:
        vs = src.streams.video[0]
        rate, w, h = vs.average_rate, vs.width, vs.height
        planes = [f.to_ndarray(format="yuv420p") for f in src.decode(vs)]
    size_in = os.path.getsize(path)
    for crf in crfs:
        out = work / f"{path.parent.name}_{path.stem}_{crf}.mp4"
        with av.open(str(out), "w") as dst:
            s = dst.add_stream("libx264", rate=rate)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.options = {"crf": crf, "preset": "medium"}
            for a in planes:
                for pk in s.encode(av.VideoFrame.from_ndarray(a, format="yuv420p")):
                    dst.mux(pk)
            for pk in s.encode():
                dst.mux(pk)
        with av.open(str(out)) as c:
            ys = [f.to_ndarray(format="yuv420p")[:h] for f in c.decode(video=0)]
        mse = np.mean([np.mean((a[:h].astype(np.float64) - b) ** 2) for a, b in zip(planes, ys)])
        psnr = 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
        print(f"{path.parent.name}/{path.name} {w}x{h} {len(planes)} frames | crf {crf}: luma PSNR vs input "
              f"{psnr:.2f} dB | size {os.path.getsize(out) / size_in:.2f}x the input's", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("films", nargs="*", type=Path)
    ap.add_argument("--crf", default="16,12,10", help="comma-separated x264 crf values")
    a = ap.parse_args()
    films = a.films or sorted(DEV_SET.glob("*/gray.mp4"))
    if not films:
        ap.error(f"no films given and no development set at {DEV_SET}")
    with tempfile.TemporaryDirectory() as tmp:
        for f in films:
            measure(f, a.crf.split(","), Path(tmp))


if __name__ == "__main__":
    main()
