"""Reference retrieval on the development set: does each shot get its own still?

    python benchmarks/bench_retrieval.py [--set ../shared/eval/set] [--kinds mid alt]
                                         [--frames 1] [--distractors ../shared/data/photos]

For every clip of the set (``meta.json``: ``shot_starts``, ``refs``), the
middle frame of each shot is read from ``gray.mp4`` (PyAV ``gray`` frames,
L = the Lab L of that gray) and ranked by :class:`vidcolor.references.retrieval.ReferenceIndex`
against the stills of one kind (``mid``: the shot's keyframe, ``alt``: the
same still mirrored and re-framed) of ALL the clips pooled together,
optionally with a folder of unrelated photos added as distractors. Prints,
per kind, each shot's top match, its own still's rank and score, how many
shots got their own still first, the best score among the OTHER stills (what
a shot with no good reference in the folder would get, against
``DEFAULT_THRESHOLD``), and the time per still (indexing) and per query.
``--frames N`` represents a shot by N frames spread over it instead of one.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vidcolor.color import gray_to_l  # noqa: E402
from vidcolor.references import ReferenceStore, list_images  # noqa: E402
from vidcolor.references.retrieval import DEFAULT_THRESHOLD, ReferenceIndex  # noqa: E402


def read_frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    out = {}
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in wanted:
                out[i] = f.to_ndarray(format="gray")
            if len(out) == len(wanted):
                break
    return out


def shot_frames(meta: dict, n: int) -> list[list[int]]:
    starts = list(meta["shot_starts"]) + [meta["frames"]]
    shots = []
    for a, b in zip(starts[:-1], starts[1:]):
        if n == 1:
            shots.append([(a + b) // 2])
        else:
            shots.append([a + round((b - 1 - a) * (k + 1) / (n + 1)) for k in range(n)])
    return shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", type=Path, default=HERE.parent.parent / "shared" / "eval" / "set")
    ap.add_argument("--kinds", nargs="+", default=["mid", "alt"])
    ap.add_argument("--frames", type=int, default=1, help="frames per shot in the query")
    ap.add_argument("--distractors", type=Path, default=None, help="folder of unrelated stills added to the pool")
    ap.add_argument("--top-k", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    device = torch.device("cpu")
    store = ReferenceStore(device)

    clips = sorted(p for p in args.set.iterdir() if (p / "meta.json").is_file())
    queries = []  # (clip, shot, L)
    for clip in clips:
        meta = json.loads((clip / "meta.json").read_text())
        shots = shot_frames(meta, args.frames)
        frames = read_frames(clip / meta["gray"], {i for s in shots for i in s})
        for k, idx in enumerate(shots):
            g = torch.from_numpy(np.stack([frames[i] for i in idx])).float().div(255)[:, None]
            queries.append((clip.name, k, gray_to_l(g)))
    extra = list_images(args.distractors) if args.distractors else []
    print(f"{len(queries)} shots in {len(clips)} clips; {len(extra)} distractor stills")

    for kind in args.kinds:
        own: dict[tuple[str, int], Path] = {}
        for clip in clips:
            meta = json.loads((clip / "meta.json").read_text())
            for r in meta["refs"]:
                if r["kind"] == kind:
                    own[(clip.name, r["shot"])] = clip / r["path"]
        paths = list(own.values()) + extra
        t = time.perf_counter()
        stills = [(p, store.get(p)) for p in paths]
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        index = ReferenceIndex(stills, device, top_k=args.top_k)
        t_index = time.perf_counter() - t
        hits, times, own_scores, other_best = 0, [], [], []
        print(f"\n== {kind}: {len(paths)} stills (load {t_load / len(paths) * 1000:.0f} ms/still, "
              f"features {t_index / len(paths) * 1000:.0f} ms/still)")
        for clip, k, L in queries:
            target = own.get((clip, k))
            index.rank(L)  # warm
            t = time.perf_counter()
            ranked = index.rank(L, k=len(index))
            times.append(time.perf_counter() - t)
            names = [m.path for m in ranked]
            pos = names.index(target) + 1 if target in names else None
            hits += pos == 1
            mine = ranked[pos - 1] if pos else None
            others = [m for m in ranked if m.path != target]
            own_scores.append(mine.score if mine else float("nan"))
            other_best.append(others[0].score if others else float("nan"))
            top = ranked[0]
            print(f"  {clip}/shot{k}: top {top.path.parent.parent.name}/{top.path.name} "
                  f"score {top.score:.3f} (g {top.global_score:.3f} l {top.local_score:.3f}); "
                  f"own rank {pos} score {mine.score if mine else float('nan'):.3f}; "
                  f"best other {others[0].score if others else float('nan'):.3f}")
        print(f"  own still first: {hits}/{len(queries)}; own score min {np.nanmin(own_scores):.3f}, "
              f"best other max {np.nanmax(other_best):.3f} (threshold {DEFAULT_THRESHOLD}); "
              f"query {np.median(times) * 1000:.0f} ms (median, {args.frames} frame(s), ranking all stills)")


if __name__ == "__main__":
    main()
