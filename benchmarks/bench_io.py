"""I/O benchmark: vidcolor with the `transfer` colorizer against a plain PyAV
transcode of the same file, and peak memory against film length.

    python benchmarks/bench_io.py [--seconds 60] [--long-seconds 240] [--workdir DIR]

Generates a 480p and a 720p black-and-white clip with stereo AAC (24 fps),
then for each: a plain PyAV transcode (decode, libx264 at vidcolor's default
crf/preset, frame types left to the encoder as ffmpeg does, audio copied) and `vidcolor CLIP --reference STILL`, both run as
child processes; prints frames per second and their ratio. Then the peak RSS
of vidcolor on a 480p clip of --seconds and of --long-seconds, and their
ratio (memory must not grow with film length). Then what shot detection
costs: the 480p run again with ``--detector off`` and ``--detector
histogram``, against the default (TransNetV2) run above.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def transcode(src: str, dst: str, crf: str, preset: str) -> int:
    """The plain PyAV transcode vidcolor is compared with."""
    import av

    with av.open(src) as inp, av.open(dst, "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        others = [s for s in inp.streams if s is not vin]
        v = out.add_stream("libx264", rate=vin.average_rate)
        v.width, v.height, v.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        v.time_base = v.codec_context.time_base = vin.time_base
        v.options = {"crf": crf, "preset": preset}
        omap = {s.index: out.add_stream_from_template(s) for s in others}
        n = 0
        for pkt in inp.demux([vin, *others]):
            if pkt.stream is vin:
                for f in pkt.decode():
                    # as ffmpeg does: the encoder picks frame types itself (a decoded frame
                    # still carries the source's I/P/B type, which x264 would obey)
                    f.pict_type = av.video.frame.PictureType.NONE
                    out.mux(v.encode(f))
                    n += 1
            elif pkt.dts is not None and pkt.size:
                pkt.stream = omap[pkt.stream.index]
                out.mux(pkt)
        out.mux(v.encode())
    return n


def run(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of a child process."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{err}")
    return wall, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--long-seconds", type=int, default=240)
    ap.add_argument("--workdir")
    ap.add_argument("--transcode", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    from vidcolor.config import Config
    from vidcolor.io.encode import encoder_options

    opts = encoder_options(Config().encode)
    if a.transcode:
        transcode(*a.transcode, opts["crf"], opts["preset"])
        return
    from synth import make_clip, make_still

    work = Path(a.workdir or tempfile.mkdtemp(prefix="vidcolor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    fps = 24
    still = make_still(work / "still.png", 320, 180)
    clips = {
        "480p": (854, 480, a.seconds),
        "720p": (1280, 720, a.seconds),
        "480p-long": (854, 480, a.long_seconds),
    }
    paths = {}
    for name, (w, h, secs) in clips.items():
        p = work / f"{name}.mp4"
        if not p.exists():
            t0 = time.monotonic()
            make_clip(p, n=secs * fps, w=w, h=h, fps=fps, audio=True, options={"preset": "ultrafast", "crf": "18"})
            print(f"made {p.name}: {w}x{h}, {secs * fps} frames ({time.monotonic() - t0:.0f} s)", flush=True)
        paths[name] = p
    vidcolor = [sys.executable, "-m", "vidcolor"]
    print(f"encoder: libx264 crf {opts['crf']} preset {opts['preset']} (vidcolor's default, both sides); "
          f"{os.cpu_count()} CPUs")
    rss = {}
    for name in ("480p", "720p"):
        n = clips[name][2] * fps
        t_plain, _ = run([sys.executable, __file__, "--transcode", str(paths[name]), str(work / f"{name}_plain.mp4")])
        t_vc, rss[name] = run([*vidcolor, str(paths[name]), "--reference", str(still), "--colorizer", "transfer", "-o",
                               str(work / f"{name}_color.mp4"), "--overwrite", "-q"])
        print(f"{name}: plain transcode {n / t_plain:6.1f} fps | vidcolor transfer {n / t_vc:6.1f} fps | "
              f"ratio {t_plain / t_vc:.2f} (>= 0.5 wanted)", flush=True)
    n = clips["480p"][2] * fps
    t_det = {}
    for det in ("off", "histogram", "transnet"):
        t_det[det], _ = run([*vidcolor, str(paths["480p"]), "--reference", str(still), "--colorizer", "transfer", "-o",
                             str(work / f"480p_{det}.mp4"), "--overwrite", "-q", "--detector", det])
    for det in ("histogram", "transnet"):
        print(f"480p shot detection {det}: {n / t_det[det]:6.1f} fps against {n / t_det['off']:6.1f} fps with "
              f"--detector off: +{100 * (t_det[det] / t_det['off'] - 1):.1f}% run time (< 10% wanted)", flush=True)
    _, rss["480p-long"] = run([*vidcolor, str(paths["480p-long"]), "--reference", str(still), "--colorizer", "transfer", "-o",
                               str(work / "long_color.mp4"), "--overwrite", "-q"])
    r = rss["480p-long"] / rss["480p"]
    print(f"peak RSS 480p: {a.seconds} s film {rss['480p'] / 1024:.0f} MiB | {a.long_seconds} s film "
          f"{rss['480p-long'] / 1024:.0f} MiB | ratio {r:.3f} (<= 1.10 wanted)")


if __name__ == "__main__":
    main()
