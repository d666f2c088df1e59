"""Speed of the default pipeline on films made of photographs: frames/s, CPU use, ms/frame per stage.

    python benchmarks/bench_speed.py [--sizes 480,720] [--configs default,fast] [--seconds 60] [--tree DIR ...]
                                     [--repeat 1] [--workdir DIR] [--photos ../shared/data/photos]
                                     [--extra '--temporal off'] [--quality]

For each size, a black-and-white 24 fps film of --seconds is generated (once; kept in --workdir):
a slow pan over a photograph (with a slight push-in), a cut every 10 s to the next photograph,
and a colour still per shot (the shot's middle frame in colour, as a colourist's keyframe still)
in a reference map. Then for each size x config (interleaved over --repeat rounds, so a noisy
machine spreads its noise over every variant), ``vidcolor FILM --reference-map MAP`` runs in a
child process and one line is printed:

    480p default   1440 frames  96.1 s  15.0 fps (the run's own, without Python's start-up: 15.3)  CPU 190% ...
        ms/frame: colorize 40.1 | reference flow (thread) 21.0 | frame flow (thread) 12.0 | ...

(the stages from the run's report: main-thread stages and the worker threads' busy time beside
them; the threads overlap the main thread, so the slowest of them sets the pace).

--quality also runs ``../shared/eval/quality.py --mode map --ref mid`` on the development clips
with this tree's vidcolor at ``--crf 0`` and prints its MEAN line, so speed is never bought
silently with colour. --extra adds options to every vidcolor run. --tree DIR, given twice or more,
runs each source tree's vidcolor (and its own configs/) in turn on the same films: an A/B.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FPS = 24
SIZES = {"480": (854, 480), "720": (1280, 720), "1080": (1920, 1080), "2160": (3840, 2160)}
CONFIGS = {"default": None, "fast": Path("configs") / "fast.yaml"}  # a named one: the tree's own


def _photos(folder: Path, width: int, height: int) -> list[Path]:
    """The photographs of at least 640 px a side, in name order, preferring those as large as the
    film's frame with room for the push-in (1.15x); smaller ones are enlarged (1080p and 2160p)."""
    import cv2

    large, other = [], []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        im = cv2.imread(str(p), cv2.IMREAD_REDUCED_COLOR_2)
        if im is None or min(im.shape[:2]) * 2 < 640:
            continue
        fits = im.shape[1] * 2 >= width * 1.15 and im.shape[0] * 2 >= height * 1.15
        (large if fits else other).append(p)
    if not large + other:
        raise SystemExit(f"{folder}: no photograph of at least 640 px a side")
    return large or other


def _cover(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """The photo enlarged (bicubic) where it is smaller than the frame with room for the push-in."""
    import cv2

    s = max(width * 1.15 / photo.shape[1], height * 1.15 / photo.shape[0])
    if s <= 1:
        return photo
    return cv2.resize(photo, (int(np.ceil(photo.shape[1] * s)), int(np.ceil(photo.shape[0] * s))),
                      interpolation=cv2.INTER_CUBIC)


def _view(photo: np.ndarray, t: float, width: int, height: int, rng_pan: tuple[float, float, float]) -> np.ndarray:
    """The frame of a shot at time ``t`` in [0, 1]: a window that pans across the photo and pushes in."""
    import cv2

    H, W = photo.shape[:2]
    direction, vertical, zoom = rng_pan
    scale = 1.15 - zoom * t  # the window shrinks: a push-in
    ww, wh = width * scale * min(W / (width * 1.15), H / (height * 1.15)), height * scale * min(W / (width * 1.15), H / (height * 1.15))
    x = (W - ww) * (0.5 + direction * (t - 0.5) * 0.9)
    y = (H - wh) * (0.5 + vertical * (t - 0.5) * 0.5)
    m = np.float32([[ww / width, 0, x], [0, wh / height, y]])
    return cv2.warpAffine(photo, m, (width, height), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def make_film(folder: Path, size: str, seconds: float, photos: Path) -> tuple[Path, Path, int]:
    """The film, its reference map and its frame count (made once, under a temporary name first)."""
    import av
    import cv2

    width, height = SIZES[size]
    film, csv = folder / f"pan{size}.mp4", folder / f"pan{size}_map.csv"
    frames = round(seconds * FPS)
    if film.exists() and csv.exists():
        return film, csv, frames
    folder.mkdir(parents=True, exist_ok=True)
    stills = folder / f"stills{size}"
    stills.mkdir(exist_ok=True)
    rng = np.random.default_rng(int(size))
    sources = _photos(photos, width, height)
    shot_len = 10 * FPS
    rows = []
    tmp = film.with_name(f".{film.stem}.tmp.mp4")
    with av.open(str(tmp), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, FPS)
        v.options = {"preset": "fast", "crf": "16"}
        photo = pan = None
        for i in range(frames):
            k, j = divmod(i, shot_len)
            n = min(shot_len, frames - k * shot_len)
            if j == 0:
                src = sources[int(rng.integers(len(sources)))]
                photo = _cover(cv2.imread(str(src)), width, height)
                pan = (float(rng.choice([-1, 1])) * rng.uniform(0.3, 1.0), rng.uniform(-1, 1), rng.uniform(0.0, 0.1))
                still = _view(photo, (n // 2) / max(n - 1, 1), width, height, pan)
                path = stills / f"shot{k:03d}.png"
                cv2.imwrite(str(path), still)
                rows.append((k * shot_len, path))
            bgr = _view(photo, j / max(n - 1, 1), width, height, pan)
            y = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(cv2.merge([y, y, y]), cv2.COLOR_BGR2RGB), format="rgb24")
            frame.pts = i
            for p in v.encode(frame):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    os.replace(tmp, film)
    csv.write_text("start,reference\n" + "".join(f"{s},{p.relative_to(folder)}\n" for s, p in rows))
    return film, csv, frames


def run_once(film: Path, csv: Path, frames: int, config: Path | None, extra: str, workdir: Path,
             tree: Path = ROOT) -> dict:
    out, report = workdir.resolve() / "out.mp4", workdir.resolve() / "report.json"
    cmd = [sys.executable, "-m", "vidcolor", str(film.resolve()), "--reference-map", str(csv.resolve()), "-o", str(out.resolve()),
           "--overwrite", "-q", "--report", str(report)]
    if config is not None:
        cmd += ["-c", str(config.resolve())]
    cmd += shlex.split(extra)
    env = {**os.environ, "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t = time.perf_counter()
    # run from the tree: ``python -m`` puts the working directory first on the path
    proc = subprocess.Popen(cmd, env=env, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    log = proc.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"vidcolor failed:\n{log}")
    rep = json.loads(report.read_text())
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "frames": rep["frames"], "stages": rep.get("stages", {}), "device": rep.get("device", ""),
            "run_fps": rep.get("fps", 0.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="480,720")
    ap.add_argument("--configs", default="default,fast")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vidcolor_bench_speed"))
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "photos")
    ap.add_argument("--extra", default="", help="options added to every vidcolor run")
    ap.add_argument("--tree", action="append", type=Path, default=None,
                    help="the vidcolor source tree to run (default: this one); given twice or more, an A/B")
    ap.add_argument("--json", type=Path, default=None, help="write every run's figures here")
    ap.add_argument("--quality", action="store_true", help="also the dev-set map/mid PSNR (quality.py, --crf 0)")
    args = ap.parse_args()
    print(f"# cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f} at the start; extra: {args.extra!r}")
    films = {s: make_film(args.workdir, s, args.seconds, args.photos) for s in args.sizes.split(",")}
    results: dict[tuple[str, str], list[dict]] = {}
    trees = args.tree or [ROOT]
    for _ in range(args.repeat):
        for size, (film, csv, frames) in films.items():
            for name in args.configs.split(","):
                for tree in trees:
                    config = CONFIGS[name] if name in CONFIGS else Path(name)
                    if config is not None and not config.is_absolute():
                        config = tree / config
                    r = run_once(film, csv, frames, config, args.extra, args.workdir, tree)
                    tag = name if len(trees) == 1 else f"{name}@{tree.name}"
                    results.setdefault((size, tag), []).append(r)
                    fps = r["frames"] / r["wall"]
                    print(f"{size}p {tag:8s} {r['frames']:5d} frames {r['wall']:6.1f} s {fps:6.1f} fps "
                          f"(the run's own, without Python's start-up: {r['run_fps']:.1f})  "
                          f"CPU {100 * r['cpu'] / r['wall']:4.0f}%  peak RSS {r['rss_mb']:.0f} MB  {r['device']}")
                    stages = sorted(r["stages"].items(), key=lambda kv: -kv[1])
                    print("    ms/frame: " + " | ".join(f"{k} {1000 * v / r['frames']:.1f}" for k, v in stages))
                    sys.stdout.flush()
                    if args.json is not None:
                        args.json.write_text(json.dumps({f"{s} {n}": v for (s, n), v in results.items()}, indent=1))
    if args.repeat > 1:
        for (size, name), rs in results.items():
            fps = [r["frames"] / r["wall"] for r in rs]
            print(f"{size}p {name:8s} fps over {len(rs)} runs: " + ", ".join(f"{f:.1f}" for f in fps))
    if args.quality:
        cmd = [sys.executable, str(ROOT.parent / "shared" / "eval" / "quality.py"), "--mode", "map", "--ref", "mid",
               "--cmd", f"{sys.executable} -m vidcolor {{input}} --reference-map {{map}} -o {{output}} -q --crf 0 "
               + args.extra]
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [ln for ln in out.stdout.splitlines() if "MEAN" in ln or "psnr" in ln.lower()]
        print("quality (dev clips, map/mid, --crf 0):")
        print("\n".join(lines[-6:]) or out.stdout[-2000:] + out.stderr[-2000:])


if __name__ == "__main__":
    main()
