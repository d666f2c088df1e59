"""A PNG contact sheet to look at results: one row per picked frame, columns
input | output(s) | ground truth (when given).

    python benchmarks/contact_sheet.py INPUT OUTPUT [OUTPUT ...] [--truth GT.mp4] [--frames 6] [-o sheet.png]
"""
from __future__ import annotations

import argparse

import av
import cv2
import numpy as np


def frames_at(path: str, picks: list[int]) -> dict[int, np.ndarray]:
    out = {}
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in picks:
                out[i] = f.to_ndarray(format="rgb24")
    return out


def count(path: str) -> int:
    with av.open(path) as c:
        return sum(1 for _ in c.decode(video=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="+", help="input, then one or more outputs")
    ap.add_argument("--truth")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--width", type=int, default=320, help="width of one cell")
    ap.add_argument("-o", "--output", default="sheet.png")
    a = ap.parse_args()
    n = count(a.videos[0])
    picks = sorted({round(i) for i in np.linspace(0, n - 1, a.frames)})
    cols = [frames_at(v, picks) for v in [*a.videos, *([a.truth] if a.truth else [])]]
    rows = []
    for i in picks:
        cells = []
        for col in cols:
            f = col.get(i, np.zeros_like(cols[0][i]))
            h = round(f.shape[0] * a.width / f.shape[1])
            cell = cv2.resize(f, (a.width, h), interpolation=cv2.INTER_AREA)
            cv2.putText(cell, str(i), (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1)
            cells.append(cell)
        rows.append(np.hstack(cells))
    cv2.imwrite(a.output, cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"wrote {a.output}: {len(picks)} frames x {len(cols)} columns")


if __name__ == "__main__":
    main()
