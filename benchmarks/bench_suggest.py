"""Does ``vidcolor keyframes --suggest`` name better frames than a fixed choice?

    python benchmarks/bench_suggest.py [--crf 0] [--clips carphone,montage,street] [--work DIR]

On each development clip (../shared/eval/set: black-and-white input, colour
source, a mid still per shot), starting from each shot's mid still as its
one keyframe, it adds to every shot one more keyframe, its colour taken
from the clip's colour source (what a colourist would paint), either

- ``first``: the shot's first frame (a fixed choice), or
- ``suggest``: the frame ``suggest_keyframes(..., per_shot=1)`` names,

colours the clip with ``vidcolor --keyframes`` and prints the PSNR against
the colour source (RGB, every frame, as ../shared/eval/quality.py scores),
per clip and the mean, for mid alone, mid + first and mid + suggest, and the
gain of each over mid alone.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import cv2

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "eval"


def _quality():
    spec = importlib.util.spec_from_file_location("quality", SHARED / "quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _frames(path: Path, wanted: set[int]) -> dict:
    out = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in wanted:
                out[i] = f.to_ndarray(format="rgb24")
    return out


def _keys(path: Path, rows: list[tuple[int, Path]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "reference"])
        for f, p in sorted(rows):
            w.writerow([f, str(p)])
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crf", type=int, default=0)
    ap.add_argument("--clips", default="")
    ap.add_argument("--set", type=Path, default=SHARED / "set")
    ap.add_argument("--src", type=Path, default=SHARED / "src")
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    q = _quality()
    sys.path.insert(0, str(HERE.parent))
    from vidcolor.suggest import suggest_keyframes

    names = a.clips.split(",") if a.clips else sorted(p.parent.name for p in a.set.glob("*/meta.json"))
    work = a.work or Path(tempfile.mkdtemp(prefix="bench_suggest_"))
    work.mkdir(parents=True, exist_ok=True)
    table = {}
    for name in names:
        clip = a.set / name
        meta = json.loads((clip / "meta.json").read_text())
        gray, src = clip / meta["gray"], a.src / meta["source"]
        mids = [(r["frame"], clip / r["path"]) for r in meta["refs"] if r["kind"] == "mid"]
        base = _keys(work / f"{name}_mid.csv", mids)
        picks, plan = suggest_keyframes(gray, keyframes=base, per_shot=1)
        firsts = [s.first_frame for s in plan]
        suggested = [p.frame for p in picks]
        colour = _frames(src, set(firsts) | set(suggested))
        stills = {}
        for f, img in colour.items():
            stills[f] = work / f"{name}_src_{f:06d}.png"
            cv2.imwrite(str(stills[f]), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        sheets = {"mid": base,
                  "mid+first": _keys(work / f"{name}_first.csv", mids + [(f, stills[f]) for f in firsts
                                                                         if f not in dict(mids)]),
                  "mid+suggest": _keys(work / f"{name}_suggest.csv", mids + [(f, stills[f]) for f in suggested])}
        gt, _ = q.video(src)
        row = {"first": firsts, "suggested": suggested}
        for kind, sheet in sheets.items():
            out = work / f"{name}_{kind}.mp4"
            subprocess.run([sys.executable, "-m", "vidcolor", str(gray), "--keyframes", str(sheet), "-o", str(out),
                            "-q", "--overwrite", "--crf", str(a.crf)], check=True)
            frames, _ = q.video(out)
            row[kind] = float(sum(q.psnr(x, y) for x, y in zip(frames, gt)) / len(gt))
        table[name] = row
        print(name, json.dumps(row), flush=True)
    kinds = ("mid", "mid+first", "mid+suggest")
    print(f"\n{'clip':<10}" + "".join(f"{k:>13}" for k in kinds) + f"{'first gain':>12}{'suggest gain':>14}")
    for name, r in table.items():
        print(f"{name:<10}" + "".join(f"{r[k]:13.2f}" for k in kinds) +
              f"{r['mid+first'] - r['mid']:12.2f}{r['mid+suggest'] - r['mid']:14.2f}")
    mean = {k: sum(r[k] for r in table.values()) / len(table) for k in kinds}
    print(f"{'MEAN':<10}" + "".join(f"{mean[k]:13.2f}" for k in kinds) +
          f"{mean['mid+first'] - mean['mid']:12.2f}{mean['mid+suggest'] - mean['mid']:14.2f}  (crf {a.crf})")


if __name__ == "__main__":
    main()
