"""Film-scale benchmark: a generated feature-like film through the default pipeline.

    python benchmarks/bench_film.py [--minutes 20] [--short-minutes 5] [--workdir DIR]
                                    [--config configs/fast.yaml] [--extra '--temporal off']

Generates (once; kept in --workdir and reused) a black-and-white 854x480,
24 fps film of --minutes with stereo AAC and a cut every 10-30 s (each shot
a panning textured scene with moving shapes, grain and flicker), written
frame by frame through PyAV so it is never held in memory, and a reference
map giving every shot a colour keyframe (its first frame with smooth random
colour regions on it: the exemplar works for real, flow and attention, and
no shot is gated to black and white as an unrelated still would be). Then,
for the --short-minutes film and the --minutes film:

- a plain PyAV transcode of the film (decode, libx264 with vidcolor's
  default crf and preset, audio copied), in a child process;
- ``vidcolor FILM --reference-map FILM_map.csv`` (the default exemplar
  pipeline, or --config / --extra), in a child process;

each timed (wall, CPU) with its peak RSS (``wait4``: the child alone, fresh
for every run). One line per run, then a summary: vidcolor's frames per
second and its ratio to the transcode, and the ratio of peak RSS of the long
film to the short one (memory must not grow with the film: <= 1.10 wanted).
``--minutes 0.2 --short-minutes 0.1`` is a smoke check of a minute or two.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

W, H, FPS, RATE = 854, 480, 24, 48000


# -- the film ---------------------------------------------------------------------------------

def _cuts(frames: int, rng: np.random.Generator) -> list[int]:
    """First frames of the shots: every 10-30 s (a short smoke-test film: 3-6 shots)."""
    total = frames / FPS
    lo, hi = (10.0, 30.0) if total >= 120 else (max(total / 6, 0.5), max(total / 3, 1.0))
    cuts, t = [0], 0.0
    while True:
        t += rng.uniform(lo, hi)
        if round(t * FPS) >= frames:
            return cuts
        cuts.append(round(t * FPS))


class _Shot:
    """A scene larger than the frame (panned over), with shapes moving across it."""

    def __init__(self, rng: np.random.Generator, pan: int = 96):
        import cv2

        self.rng = rng
        big = (W + pan, H + pan)
        coarse = cv2.resize(rng.normal(0, 1, (H // 24 + 2, W // 24 + 2)).astype(np.float32), big,
                            interpolation=cv2.INTER_CUBIC)
        fine = cv2.GaussianBlur(rng.normal(0, 1, (big[1], big[0])).astype(np.float32), (0, 0), 1.5)
        scene = 0.75 * coarse / (coarse.std() + 1e-6) + 0.25 * fine / (fine.std() + 1e-6)
        y = np.linspace(-1, 1, big[1], dtype=np.float32)[:, None]
        scene += rng.uniform(-0.8, 0.8) * y  # a sky-to-ground gradient
        lo, hi = np.percentile(scene, [1, 99])
        self.scene = np.clip(30 + 190 * (scene - lo) / (hi - lo + 1e-6), 16, 235).astype(np.uint8)
        for _ in range(int(rng.integers(3, 8))):  # buildings, furniture: hard edges
            x0, y0 = int(rng.integers(0, big[0] - 80)), int(rng.integers(0, big[1] - 80))
            cv2.rectangle(self.scene, (x0, y0), (x0 + int(rng.integers(30, 200)), y0 + int(rng.integers(30, 200))),
                          int(rng.integers(20, 235)), -1)
        self.pan = pan
        self.velocity = rng.uniform(-0.6, 0.6, 2)  # pixels a frame
        self.shapes = [(rng.uniform(0, W), rng.uniform(0, H), rng.uniform(-4, 4), rng.uniform(-3, 3),
                        int(rng.integers(15, 70)), int(rng.integers(16, 235))) for _ in range(int(rng.integers(1, 4)))]
        self.tone = float(rng.uniform(110, 440))

    def luma(self, i: int, grain: np.ndarray, flicker: float) -> np.ndarray:
        import cv2

        ox = int(self.pan / 2 + self.velocity[0] * i) % self.pan
        oy = int(self.pan / 2 + self.velocity[1] * i) % self.pan
        y = self.scene[oy:oy + H, ox:ox + W].copy()
        for x0, y0, vx, vy, r, g in self.shapes:
            cx, cy = int(x0 + vx * i) % W, int(y0 + vy * i) % H
            cv2.ellipse(y, (cx, cy), (r, int(r * 0.7)), (i * 2) % 360, 0, 360, g, -1)
        out = cv2.add(y.astype(np.int16), grain, dtype=cv2.CV_16S)
        return np.clip(out * flicker, 16, 235).astype(np.uint8)


def make_film(path: Path, minutes: float, seed: int = 0) -> tuple[int, int]:
    """Write the film (streaming) under a temporary name, then rename. Returns (frames, shots)."""
    import av

    frames = max(2, round(minutes * 60 * FPS))
    rng = np.random.default_rng(seed)
    cuts = _cuts(frames, rng)
    grain = [rng.normal(0, 3, (H, W)).astype(np.int16) for _ in range(8)]
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    stills = path.parent / "stills"
    stills.mkdir(exist_ok=True)
    rows: list[tuple[int, Path]] = []
    per_frame = RATE // FPS
    with av.open(str(tmp), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, FPS)
        v.options = {"preset": "ultrafast", "crf": "18"}
        a = c.add_stream("aac", rate=RATE)
        a.layout = "stereo"
        pending = np.zeros((2, 0), np.float32)
        sent = 0
        shot = None
        for i in range(frames):
            if i in cuts:
                shot, start = _Shot(rng), i
            y = shot.luma(i - start, grain[i % len(grain)], 1 + 0.03 * np.sin(i * 0.7) + rng.normal(0, 0.01))
            if i == start:  # the shot's colour keyframe: its first frame with colour on it
                rows.append((i, _keyframe(y, rng, stills / f"{path.stem}_shot{len(rows)}.png")))
            f = av.VideoFrame(W, H, "yuv420p")
            for k, plane in enumerate(f.planes):
                arr = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                arr[:, : plane.width] = y if k == 0 else 128
            f.pts = i
            c.mux(v.encode(f))
            t = np.arange(i * per_frame, (i + 1) * per_frame) / RATE
            tone = 0.15 * np.sin(2 * np.pi * shot.tone * t) + 0.02 * rng.normal(0, 1, len(t))
            pending = np.concatenate([pending, np.stack([tone, tone * 0.8]).astype(np.float32)], axis=1)
            while pending.shape[1] >= 1024:
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pending[:, :1024]), format="fltp", layout="stereo")
                af.sample_rate, af.pts = RATE, sent
                c.mux(a.encode(af))
                sent += 1024
                pending = pending[:, 1024:]
        c.mux(v.encode())
        c.mux(a.encode())
    with open(map_path(path), "w", encoding="utf-8") as fh:
        fh.write("start,reference\n" + "".join(f"{i},{still.relative_to(path.parent)}\n" for i, still in rows))
    os.replace(tmp, path)
    return frames, len(cuts)


def map_path(film: Path) -> Path:
    """The film's reference map: a colour keyframe (its first frame, coloured) for every shot."""
    return film.with_name(f"{film.stem}_map.csv")


def _keyframe(y: np.ndarray, rng: np.random.Generator, path: Path) -> Path:
    """A colour still of luma ``y``: smooth random Cb/Cr (regions of different colour) on it
    (BT.601, limited range, as an untagged 480-line film), written as a PNG."""
    import cv2

    h, w = y.shape
    chroma = [cv2.resize(rng.normal(0, 1, (4, 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
              for _ in range(2)]
    cb, cr = (np.clip(40 * c, -100, 100) for c in chroma)
    yf = (y.astype(np.float32) - 16) * (255 / 219)
    r = yf + 1.596 * 255 / 224 * cr
    g = yf - 0.392 * 255 / 224 * cb - 0.813 * 255 / 224 * cr
    b = yf + 2.017 * 255 / 224 * cb
    bgr = np.clip(np.stack([b, g, r], axis=-1), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), bgr)
    return path


# -- the runs ---------------------------------------------------------------------------------

def encoder_settings() -> tuple[str, str]:
    """vidcolor's default x264 crf and preset (read in the parent: the transcode child imports no torch)."""
    from vidcolor.config import Config
    from vidcolor.io.encode import encoder_options

    opts = encoder_options(Config().encode)
    return opts["crf"], opts["preset"]


def child(argv: list[str]) -> dict:
    """Run a child process: wall seconds, CPU seconds and peak RSS (MiB) of it alone."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"failed: {shlex.join(argv)}\n{err.read().decode(errors='replace')}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def film_path(work: Path, minutes: float) -> Path:
    return work / f"film_{minutes:g}min_{W}x{H}.mp4"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0, help="the long film")
    ap.add_argument("--short-minutes", type=float, default=5.0, help="the short film, for peak RSS")
    ap.add_argument("--workdir", help="where the films are generated and kept [default: a new temporary folder]")
    ap.add_argument("--config", help="vidcolor -c FILE (e.g. configs/fast.yaml)")
    ap.add_argument("--extra", default="", help="more vidcolor arguments, one string: --extra '--temporal off'")
    ap.add_argument("--no-transcode", action="store_true", help="skip the plain transcodes (vidcolor's runs only)")
    ap.add_argument("--transcode", nargs=4, metavar=("SRC", "DST", "CRF", "PRESET"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.transcode:  # the plain PyAV transcode, in its own process: decode, x264, audio copied
        from bench_io import transcode

        transcode(*a.transcode)
        return
    work = Path(a.workdir or tempfile.mkdtemp(prefix="vidcolor-film-"))
    work.mkdir(parents=True, exist_ok=True)
    films = []
    for minutes in (a.short_minutes, a.minutes):
        path = film_path(work, minutes)
        if path.exists() and map_path(path).exists():
            print(f"film {path.name}: cached", flush=True)
        else:
            t0 = time.monotonic()
            n, shots = make_film(path, minutes)
            print(f"film {path.name}: made, {n} frames, {shots} shots, with sound ({time.monotonic() - t0:.0f} s)",
                  flush=True)
        films.append((minutes, path))
    extra = shlex.split(a.extra) + (["-c", a.config] if a.config else [])
    crf, preset = encoder_settings()
    print(f"{os.cpu_count()} CPUs; encoder libx264 crf {crf} preset {preset} both sides; vidcolor "
          f"{shlex.join(['--reference-map', 'FILM_map.csv', *extra])} (a colour keyframe per shot)", flush=True)
    results = []
    for minutes, path in films:
        import av

        with av.open(str(path)) as c:
            frames = c.streams.video[0].frames or sum(1 for _ in c.demux(c.streams.video[0]))
        plain = None if a.no_transcode else child([sys.executable, __file__, "--transcode", str(path),
                                                   str(work / f"{path.stem}_plain.mp4"), crf, preset])
        run = child([sys.executable, "-m", "vidcolor", str(path), "--reference-map", str(map_path(path)), "-o",
                     str(work / f"{path.stem}_color.mp4"), "--overwrite", "-q", *extra])
        fps_run = frames / run["wall"]
        fps_plain = frames / plain["wall"] if plain else float("nan")
        results.append({"minutes": minutes, "frames": frames, "plain": plain, "run": run, "fps_plain": fps_plain,
                        "fps": fps_run})
        plain_s = f"transcode {fps_plain:.1f} fps ({plain['wall']:.1f} s, RSS {plain['rss']:.0f} MiB)" if plain else \
            "transcode skipped"
        print(f"RUN film {minutes:g} min ({frames} frames): {plain_s} | vidcolor {fps_run:.2f} fps ({run['wall']:.1f} s, CPU "
              f"{100 * run['cpu'] / run['wall']:.0f}%, peak RSS {run['rss']:.0f} MiB) | ratio {fps_run / fps_plain:.3f}",
              flush=True)
    short, long = results
    frames = sum(r["frames"] for r in results)
    wall = sum(r["run"]["wall"] for r in results)
    plain_wall = sum(r["plain"]["wall"] for r in results) if not a.no_transcode else float("nan")
    print(f"MEAN vidcolor {frames / wall:.2f} fps over {frames} frames (long film {long['fps']:.2f}, short "
          f"{short['fps']:.2f}); transcode {frames / plain_wall:.1f} fps; ratio {plain_wall / wall:.3f} | peak RSS "
          f"{a.minutes:g} min {long['run']['rss']:.0f} MiB / {a.short_minutes:g} min {short['run']['rss']:.0f} MiB "
          f"= {long['run']['rss'] / short['run']['rss']:.3f} (<= 1.10 wanted)", flush=True)


if __name__ == "__main__":
    main()
