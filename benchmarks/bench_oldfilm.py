"""Old film: what flicker, grain, dust, scratches, weave and soft focus cost colour.

    python benchmarks/bench_oldfilm.py --work /tmp/oldfilm [--configs clean,each,all]
        [--strength 1] [--crf 0,default] [--refs mid,alt,keys] [--clips montage,carphone,street] [--seed 0[,1,...]]

For each configuration (``clean``: no degradation; a degradation's name:
that one alone; ``each``: every one alone; ``all``: all together; several
joined by ``+``, e.g. ``flicker+grain``; ``long_scratches``, a projector's
running scratches, only when named: it is in neither) at ``--strength`` (1: the
default print, 2: twice as bad), this makes old-film copies of the colour
development clips (``oldfilm.degrade``: luma degraded, chroma, pts and audio
kept, so the copy's colour is the truth), builds an evaluation set from them
with ``../shared/eval/build_set.py`` under ``--work`` (never in the repo) and
scores vidcolor on it with ``../shared/eval/quality.py --mode map`` for each
``--refs`` still (``keys``: ``--mode keys``, each shot's first and last
frames as keyframes) and each ``--crf`` (``default``: vidcolor's own encoder
settings). Then it prints one row per configuration, still and crf: mean
PSNR, its difference from ``clean`` (when run), the tool's CDC and the
(degraded) ground truth's; the ceiling (the truth's own chroma on the set's
black-and-white input, whose luma build_set.py encoded at crf 12: grain
costs luma there that no colorizer can win back, and its gray conversion
clips a flickered luma to 16-235; ``--lossless-input`` builds sets whose
input is the degraded luma bit for bit, so that PSNR is the colour's alone); the PSNR of the output's
Cb/Cr alone against the truth's (what the colorizer decides); and, where
there are scratches or dust, the Cb/Cr error (8-bit codes) of the output
on those pixels against the ring of pixels 2-5 px around them ("no colour
streak along a scratch": the first no worse than the second); where ``clean``
is run too, the same two for the clean set's output on the same pixels
(``scr@clean``, ``ring@clean``): the tool's error where the scratches and
dust fall when there are none (on the development clips about 0.02 codes more
on them than around them: where they fall, not what they cost; counting only
the 4:2:0 chroma samples wholly on a scratch does not lower the scratch err,
it raises it), and under the row the worst single scratch or speck: of each
(a connected part of a frame's mask, 20 pixels or more), how much more its
error exceeds its ring's than the clean output's does there, the largest,
with its clip and frame (a streak on one scratch that the averages hide);
and the scratch err less the ring err with the range 95% of 1000 resamplings
of the row's 12-frame stretches (per clip, drawn with replacement) put it in:
how far it would move were the scratches to fall elsewhere on the same clips
(on the development clips, seeds 0-4 pooled at crf 0, +0.0050 within
-0.022 to +0.031: the last hundredth of a code is not told apart from none).
At a lossy crf one more line: the same figure for the truth itself (the
copy's own Cb/Cr, its scratches in the luma) through vidcolor's encoder at
that crf and the ``--config``, ``--codec`` and ``--preset`` of ``--extra``
(:func:`encoded_truth`): what coding the scratches the output keeps costs any
colour, a perfect colorizer's too; and the tool's figure less it, the two
resampled together (seeds 0-4 at the defaults: the truth +0.101, the tool's
less it -0.056 within -0.078 to -0.036).
``--seed 0,1,2`` scores each seed's copies and adds a pooled row per
configuration: where the scratches fall differs from seed to seed (on one
they fall on pixels the clean run itself colours worse than their ring, on
another better), so the defect figures of several seeds together say more
than one seed's.

Sets already built under --work are reused (same name, seed and strength),
and so are scores of the same ``--tag`` (give a new tag after changing the
code). ``--shots histogram`` also prints the cuts that detector finds on
each set's black-and-white input against the true ones.
A run on the three development clips takes a few minutes per
configuration, still and crf. ``--cmd`` changes the command scored
(quality.py's fields); ``--extra`` adds options to vidcolor's.
``--clean-stills`` gives the degraded sets the clean set's stills: a colour
reference of the scene, as an archivist's still is, rather than a frame of
the aged print (whose flicker is in its colour: see :func:`with_clean_stills`).
``--truth kept`` builds copies whose Cb/Cr are the clean clip's bit for bit
(``_v4`` folders; the default ``legal`` pulls out-of-gamut colour toward
neutral, ``_v3``): the truth is then the scene's colour itself, as the
issue asks, and the stills are the clean set's (a still cut from such a copy
could not carry its colour). ``--truth exposure`` (``_v5``) scales Cb/Cr about
neutral with the flicker's and vignette's gain, as a darker print of the same
scene shows them (a kept chroma under a luma darkened by 45% is a colour no
print has: out of gamut on a fifth of a saturated flower), clean stills too.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oldfilm import DEGRADATIONS, EXTRAS, TRUTHS, degrade, rewrite  # noqa: E402

HERE = Path(__file__).resolve().parent
EVAL = HERE.parent.parent / "shared" / "eval"
CMD = "vidcolor {input} --reference-map {map} -o {output} -q"
KEYS_CMD = "vidcolor {input} --keyframes {keys} -o {output} -q"


def config_strengths(name: str, strength: float) -> dict[str, float]:
    if name == "clean":
        return {}
    parts = DEGRADATIONS if name == "all" else name.split("+")
    bad = [p for p in parts if p not in DEGRADATIONS + EXTRAS]
    if bad:
        raise SystemExit(f"bench_oldfilm: unknown configuration '{name}' (clean, each, all, or "
                         f"+-joined: {', '.join(DEGRADATIONS + EXTRAS)})")
    return {p: strength for p in parts}


def lossless_gray(src: Path, dst: Path) -> None:
    """Replace a set's black-and-white input by a lossless one: the source's luma plane copied bit for
    bit (neutral chroma), pts and audio kept; build_set.py's crf 12 loses grain there."""
    tmp = dst.with_name("lossless_" + dst.name)
    rewrite(src, tmp, lambda t, y, u, v: (y, np.full_like(u, 128), np.full_like(v, 128)))
    os.replace(tmp, dst)


def build(name: str, strength: float, clips: list[str], seed: int, work: Path, lossless: bool = False,
          truth: str = "legal") -> Path:
    """Degraded sources, masks and the evaluation set of one configuration; its folder."""
    # v3: legal degraded copies (oldfilm.legal_chroma, by the exposure); v4: Cb/Cr kept bit for bit;
    # v5: Cb/Cr scaled with the exposure (oldfilm.exposed_chroma); v6: its legal pull measured against
    # the clean picture's colour (oldfilm.legal_chroma's ``clean``)
    version = {"legal": "v3", "kept": "v4", "exposure": "v6"}[truth]
    d = work / ((f"{name}_s{strength:g}_seed{seed}_{version}" if name != "clean" else "clean")
                + ("_lossless" if lossless else ""))
    spec_all = json.loads((EVAL / "spec.json").read_text())
    todo = [c for c in clips if not (d / "set" / c / "meta.json").exists()]
    if not todo:
        return d
    (d / "src").mkdir(parents=True, exist_ok=True)
    (d / "masks").mkdir(exist_ok=True)
    for k, c in enumerate(clips):
        if c not in todo:
            continue
        src = EVAL / "src" / spec_all[c][0]
        masks = degrade(src, d / "src" / spec_all[c][0], config_strengths(name, strength), seed + 1000 * k, truth)
        np.savez_compressed(d / "masks" / f"{c}.npz", masks=np.packbits(masks, axis=-1), width=masks.shape[2])
    spec = d / "spec.json"
    spec.write_text(json.dumps({c: spec_all[c] for c in todo}))
    subprocess.run([sys.executable, str(EVAL / "build_set.py"), str(spec), str(d / "src"), str(d / "set")],
                   check=True, stdout=subprocess.DEVNULL)
    if lossless:
        for c in todo:
            meta = json.loads((d / "set" / c / "meta.json").read_text())
            lossless_gray(d / "src" / spec_all[c][0], d / "set" / c / meta["gray"])
    return d


def with_clean_stills(d: Path, clean: Path, clips: list[str]) -> Path:
    """A view of the degraded set ``d`` whose stills are the clean set's (same frames, same files):
    a colour reference of the scene, not of the aged print. A still cut from the degraded copy carries
    that one frame's exposure: where a flicker brightened it, its saturated colours were pulled toward
    neutral (``legal_chroma``), and the whole shot would be given that frame's pulled colour. The
    view's black-and-white input, truth and masks are ``d``'s (links); its scores are its own."""
    if d == clean:
        return d
    v = d.with_name(d.name + "_cleanstills")
    for part in ("src", "masks"):
        if not (v / part).exists():
            v.mkdir(exist_ok=True)
            (v / part).symlink_to(d / part)
    for c in clips:
        dst, ds, cs = v / "set" / c, d / "set" / c, clean / "set" / c
        if (dst / "meta.json").exists():
            continue
        meta, cmeta = json.loads((ds / "meta.json").read_text()), json.loads((cs / "meta.json").read_text())
        if [(r["kind"], r["frame"], r["path"]) for r in meta["refs"]] != [(r["kind"], r["frame"], r["path"]) for r in cmeta["refs"]]:
            raise SystemExit(f"bench_oldfilm: {ds} and {cs} have different stills")
        (dst / "refs").mkdir(parents=True)
        (dst / meta["gray"]).symlink_to(ds / meta["gray"])
        for r in meta["refs"]:
            (dst / r["path"]).write_bytes((cs / r["path"]).read_bytes())
        (dst / "meta.json").write_text(json.dumps(meta))  # last: the view is complete
    return v


def score(d: Path, clips: list[str], ref: str, crf: str, cmd: str, extra: str, tag: str) -> dict:
    """quality.py's rows for one set, still and crf (cached in the set's folder under ``tag``);
    outputs kept under d/out_*. ``ref`` mid or alt: ``--mode map`` with that still; keys:
    ``--mode keys`` (each shot's first and last frames as keyframes; ``cmd`` takes ``{keys}``)."""
    tag = f"{tag}{ref}_crf{crf}"
    res = d / f"quality_{tag}.json"
    keep = d / f"out_{tag}"  # tag includes ref and crf
    if res.exists():
        rows = json.loads(res.read_text())
        if all(c in rows for c in clips):
            return rows
    keep.mkdir(exist_ok=True)
    tool = cmd + (f" {extra}" if extra else "") + ("" if crf == "default" else f" --crf {crf}")
    # keep the output for the scratch check: quality.py scores it in a temporary folder
    wrapped = f"sh -c {shlex.quote(tool + ' && cp {output} ' + str(keep) + '/$(basename $(dirname {input})).mp4')}"
    mode = ["--mode", "keys"] if ref == "keys" else ["--mode", "map", "--ref", ref]
    argv = [sys.executable, str(EVAL / "quality.py"), *mode, "--set", str(d / "set"),
            "--src", str(d / "src"), "--clips", ",".join(clips), "--json", str(res), "--cmd", wrapped]
    print("#", " ".join(shlex.quote(a) for a in argv), flush=True)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return json.loads(res.read_text())


def ceiling(d: Path, clip: str, src_name: str) -> float:
    """Mean PSNR (RGB, as quality.py) of the truth's own chroma on the set's black-and-white input:
    the most any colorizer can score there (the input's luma lost what build_set.py's encoder lost)."""
    cache = d / f"ceiling_{clip}.json"
    if cache.exists():
        return json.loads(cache.read_text())["psnr"]
    meta = json.loads((d / "set" / clip / "meta.json").read_text())
    vals = []
    with av.open(str(d / "set" / clip / meta["gray"])) as g, av.open(str(d / "src" / src_name)) as t:
        for fg, ft in zip(g.decode(video=0), t.decode(video=0)):
            a, b = fg.to_ndarray(format="yuv420p"), ft.to_ndarray(format="yuv420p")
            h = a.shape[0] * 2 // 3
            mix = av.VideoFrame.from_ndarray(np.concatenate([a[:h], b[h:]]), format="yuv420p")
            x, y = mix.to_ndarray(format="rgb24").astype(np.float64), ft.to_ndarray(format="rgb24")
            mse = np.mean((x - y) ** 2)
            vals.append(99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse))
    p = float(np.mean(vals))
    cache.write_text(json.dumps({"psnr": p}))
    return p


def cuts_found(d: Path, clips: list[str], detector: str) -> dict[str, tuple[list[int], list[int]]]:
    """Per clip: the cuts ``detector`` finds on the set's black-and-white input, and the true ones."""
    from vidcolor.shots import get_detector

    out = {}
    for c in clips:
        meta = json.loads((d / "set" / c / "meta.json").read_text())
        det = get_detector(detector)
        with av.open(str(d / "set" / c / meta["gray"])) as f:
            thumbs = [cv2.resize(fr.to_ndarray(format="gray"), det.thumb_size, interpolation=cv2.INTER_AREA)
                      for fr in f.decode(video=0)]
        out[c] = ([t.boundary for t in det.detect(thumbs)], meta["shot_starts"][1:])
    return out


def _cbcr(path: Path) -> list[np.ndarray]:
    """Each frame's Cb/Cr planes brought to the luma's size (each sample repeated 2x2), float32 (H, W, 2)."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            a = f.to_ndarray(format="yuv420p")
            h, w = a.shape[0] * 2 // 3, a.shape[1]
            uv = a[h:].reshape(2, h // 2, w // 2).astype(np.float32)
            out.append(uv.repeat(2, axis=1).repeat(2, axis=2).transpose(1, 2, 0))
    return out


_K5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))
_K2 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
WORST_MIN_PX = 20  # a scratch or speck of fewer pixels in a frame is too small a sample to stand out


def chroma(d: Path, clip: str, src_name: str, ref: str, crf: str, tag: str, clean: Path | None = None,
           out: Path | None = None) -> dict:
    """Of the kept output against the truth: PSNR of Cb/Cr alone (what a colorizer decides; the luma
    is the input's), and the Cb/Cr error (8-bit codes) on scratch/dust pixels and on the ring of
    pixels 2-5 px around them (None where there are none). ``clean``: the clean set's folder, whose
    output (same still, crf and tag) is measured on the same pixels too, against the clean clip's colour
    (``on_clean``, ``ring_clean``): what the tool's error there is without any scratch or dust; then also ``worst`` (and its frame):
    of each scratch or speck in a frame (a connected part of the mask, at least :data:`WORST_MIN_PX`
    pixels), how much more its error exceeds its own ring's than the clean output's does there, the
    largest: a colour streak, were there one, stands out there even where the averages hide it.
    ``out``: the video measured instead of the tool's kept output (:func:`encoded_truth`)."""
    z = np.load(d / "masks" / f"{clip}.npz")
    masks = np.unpackbits(z["masks"], axis=-1, count=int(z["width"])).astype(bool)
    truth = _cbcr(d / "src" / src_name)
    got = _cbcr(out if out is not None else d / f"out_{tag}{ref}_crf{crf}" / f"{clip}.mp4")
    mse = float(np.mean([np.mean((t - g) ** 2) for t, g in zip(truth, got)]))
    res = {"cbcr_psnr": 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse), "on": None, "ring": None, "n": 0,
           "on_clean": None, "ring_clean": None}
    if not masks.any():
        return res
    base = _cbcr(clean / f"out_{tag}{ref}_crf{crf}" / f"{clip}.mp4") if clean is not None else [None] * len(got)
    # measured against the clean clip's own colour: a flickered copy's truth is another colour there
    plain = _cbcr(clean / "src" / src_name) if clean is not None else truth
    on, ring, on_b, ring_b, frames = [], [], [], [], []
    worst = (-np.inf, -1)
    for i, (m, t, g, b, tb) in enumerate(zip(masks, truth, got, base, plain)):
        if not m.any():
            continue
        r = _ring(m)
        e = np.sqrt(((t - g) ** 2).sum(axis=-1))
        on.append(e[m])
        ring.append(e[r])
        frames.append((i, float(e[m].sum()), int(m.sum()), float(e[r].sum()), int(r.sum())))
        if b is not None:
            eb = np.sqrt(((tb - b) ** 2).sum(axis=-1))
            on_b.append(eb[m])
            ring_b.append(eb[r])
            n, labels = cv2.connectedComponents(m.view(np.uint8))
            for j in range(1, n):  # each scratch and speck on its own: how much it stands out of its ring
                mj = labels == j
                if mj.sum() < WORST_MIN_PX:
                    continue
                rj = _ring(mj) & ~m
                x = (e[mj].mean() - e[rj].mean()) - (eb[mj].mean() - eb[rj].mean())
                worst = max(worst, (float(x), i))
    on_, ring_ = np.concatenate(on), np.concatenate(ring)
    res.update(on=float(on_.mean()), ring=float(ring_.mean()), n=int(on_.size), frames=frames)
    if on_b:
        res.update(on_clean=float(np.concatenate(on_b).mean()), ring_clean=float(np.concatenate(ring_b).mean()))
        res.update(worst=worst[0], worst_frame=worst[1])
    return res


def encoded_truth(d: Path, src_name: str, crf: str, extra: str = "") -> Path:
    """The truth itself (the set's source: its luma, scratches included, with the true Cb/Cr) through
    vidcolor's own encoder as the scored output went through it: ``crf`` (``default``: none given) and
    the ``-c/--config``, ``--codec`` and ``--preset`` in ``extra``. A perfect colorizer's output
    coded so: what coding the film's own scratches costs the colour on them and around them, the floor
    under the tool's figure at that crf. Cached in ``d`` per encoder settings."""
    from vidcolor.config import load_config
    from vidcolor.io.encode import VideoWriter
    from vidcolor.io.probe import describe

    args, cfg, over = shlex.split(extra), None, {"encode.crf": None if crf == "default" else int(crf)}
    for flag, value in itertools.pairwise(args):
        if flag in ("-c", "--config"):
            cfg = value
        elif flag in ("--codec", "--preset"):
            over[f"encode.{flag[2:]}"] = value
    enc = load_config(cfg, over).encode
    key = hashlib.sha1(json.dumps(dataclasses.asdict(enc), sort_keys=True).encode()).hexdigest()[:10]
    out = d / f"out_truth_{key}" / src_name
    if out.exists():
        return out
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_name("partial_" + out.name)
    with av.open(str(d / "src" / src_name)) as c:
        stream = c.streams.video[0]
        frames = c.decode(stream)
        first = next(frames)
        info = describe(str(d / "src" / src_name), c, stream, first)
        if info.pix_fmt != "yuv420p":
            raise SystemExit(f"bench_oldfilm: {d / 'src' / src_name}: the truth is {info.pix_fmt}, not yuv420p")
        w, h = VideoWriter(tmp, info, enc), info.height
        try:
            for f in itertools.chain([first], frames):
                a = f.to_ndarray(format="yuv420p")
                w.write(a[None, :h], a[h:].reshape(1, 2, h // 2, info.width // 2), [f.pts])
            w.close()
        except BaseException:
            w.abort()
            raise
    os.replace(tmp, out)
    return out


def _ring(m: np.ndarray) -> np.ndarray:
    """The pixels 2-5 px around the bool mask ``m``."""
    mu = m.view(np.uint8)
    return (cv2.dilate(mu, _K5) > 0) & ~(cv2.dilate(mu, _K2) > 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the degraded sets and outputs (not the repo)")
    ap.add_argument("--configs", default="clean,each,all")
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--crf", default="0,default", help="comma-separated: vidcolor --crf values, 'default' for none")
    ap.add_argument("--refs", default="mid,alt", help="mid, alt (--mode map with that still), keys (--mode keys: "
                    "each shot's first and last frames as keyframes, scored with --keys-cmd)")
    ap.add_argument("--clips", default="montage,carphone,street")
    ap.add_argument("--seed", default="0", help="the degradations' seed; several, comma-separated: each scored, then pooled (the defect pixels of all the seeds: where scratches fall varies)")
    ap.add_argument("--cmd", default=CMD, help="the command scored (quality.py's {input} {map} {output} fields)")
    ap.add_argument("--keys-cmd", default=KEYS_CMD, help="the command scored for --refs keys ({input} {keys} {output})")
    ap.add_argument("--extra", default="", help="options added to the command, e.g. '--deflicker'")
    ap.add_argument("--tag", default="", help="name of this scoring (results are cached per set, still, crf and tag)")
    ap.add_argument("--shots", default="", help="also check the cuts this shot detector finds (e.g. histogram)")
    ap.add_argument("--lossless-input", action="store_true",
                    help="sets whose black-and-white input is the degraded luma bit for bit (own folders): "
                         "the PSNR then measures the colour alone, no input coding loss")
    ap.add_argument("--clean-stills", action="store_true",
                    help="give every degraded set the clean set's stills (a colour reference of the scene, not of the "
                         "aged print, whose flicker would be in its colour); scored in their own folders")
    ap.add_argument("--truth", choices=TRUTHS, default="legal",
                    help="legal: the copy's Cb/Cr pulled toward neutral where the aged luma takes a colour out of "
                         "gamut (so a still cut from the copy carries it); kept: Cb/Cr bit for bit, the scene's own "
                         "colour (implies --clean-stills: no still cut from the copy can carry it); exposure: Cb/Cr "
                         "scaled about neutral with the flicker's and vignette's gain, as a darker print of the scene "
                         "shows them (implies --clean-stills)")
    ap.add_argument("--generate-only", action="store_true", help="build the sets, score nothing")
    a = ap.parse_args()
    a.clean_stills = a.clean_stills or a.truth != "legal"
    if set(a.refs.split(",")) - {"mid", "alt", "keys"}:
        raise SystemExit(f"bench_oldfilm: --refs takes mid, alt and keys, not {a.refs!r}")
    if HERE.parent in a.work.resolve().parents or a.work.resolve() == HERE.parent:
        raise SystemExit("bench_oldfilm: --work must be outside the repository")
    configs = []
    for c in a.configs.split(","):
        configs += list(DEGRADATIONS) if c == "each" else [c]
    for c in configs:
        config_strengths(c, a.strength)
    clips = a.clips.split(",")
    spec_all = json.loads((EVAL / "spec.json").read_text())
    a.work.mkdir(parents=True, exist_ok=True)
    try:
        seeds = [int(x) for x in a.seed.split(",")]
    except ValueError:
        raise SystemExit(f"bench_oldfilm: --seed takes whole numbers, comma-separated, not {a.seed!r}")
    sets = {}  # (config, seed) -> folder; the clean set has no seed
    for seed in seeds:
        for c in configs:
            sets[c, seed] = build(c, a.strength, clips, seed, a.work, a.lossless_input, a.truth)
    if a.clean_stills:
        clean_set = build("clean", a.strength, clips, seeds[0], a.work, a.lossless_input)
        sets = {k: with_clean_stills(d, clean_set, clips) for k, d in sets.items()}
    shown = {k: d for k, d in sets.items() if k[0] != "clean" or k[1] == seeds[0]}  # one clean set for all seeds
    if a.shots:
        for (c, seed), d in shown.items():
            found = cuts_found(d, clips, a.shots)
            ok = all(f == t for f, t in found.values())
            print(f"cuts ({a.shots}) {_label(c, seed, seeds):<16} {'same as truth' if ok else 'DIFFER'}: "
                  + "  ".join(f"{k} {f}" + ("" if f == t else f" (truth {t})") for k, (f, t) in found.items()), flush=True)
    if a.generate_only:
        for (c, seed), d in shown.items():
            print(_label(c, seed, seeds), d)
        return
    print(f"{'config':<22}{'ref':<5}{'crf':<9}{'psnr':>7}{'vs clean':>9}{'cdc':>9}{'gt cdc':>9}{'cdc/gt':>7}"
          f"{'ceiling':>8}{'cbcr psnr':>10}{'scratch err':>13}{'ring err':>11}{'scr@clean':>11}{'ring@clean':>11}")
    clean = {}
    for c in configs:
        for ref in a.refs.split(","):
            for crf in a.crf.split(","):
                rows = []
                for seed in seeds if c != "clean" else seeds[:1]:
                    row = _scored(sets, c, seed, seeds, clips, ref, crf, a, spec_all)
                    if row is None:
                        continue
                    if c == "clean":
                        clean[(ref, crf)] = row["psnr"]
                    rows.append(row)
                    _print_row(_label(c, seed, seeds), ref, crf, row, clean.get((ref, crf)))
                    print(f"{'':<22}" + "  ".join(f"{k} {v:.2f}" for k, v in row["per"].items()), flush=True)
                if len(rows) > 1:
                    _print_row(f"{c} pooled", ref, crf, _pooled(rows), clean.get((ref, crf)))


def _label(c: str, seed: int, seeds: list[int]) -> str:
    return c if len(seeds) == 1 or c == "clean" else f"{c} seed {seed}"


def _scored(sets: dict, c: str, seed: int, seeds: list[int], clips: list[str], ref: str, crf: str, a,
            spec_all: dict) -> dict | None:
    """One configuration, seed, still and crf scored: mean PSNR, CDC, the truth's CDC, the ceiling,
    Cb/Cr PSNR, per clip PSNR and the defect pixels' figures (pixel-weighted over the clips)."""
    d = sets[c, seed]
    rows = score(d, clips, ref, crf, a.keys_cmd if ref == "keys" else a.cmd, a.extra, a.tag)
    bad = [k for k in clips if "psnr" not in rows[k].get("tool", {})]
    if bad:
        print(f"{_label(c, seed, seeds):<22}{ref:<5}{crf:<9} tool failed on {', '.join(bad)}: "
              f"{rows[bad[0]].get('tool')}")
        return None
    base = sets["clean", seed] if ("clean", seed) in sets and c != "clean" else None
    ch = [chroma(d, k, spec_all[k][0], ref, crf, a.tag, base) for k in clips]
    st = [x for x in ch if x["n"]]
    n = sum(x["n"] for x in st)
    px = {k: sum(x[k] * x["n"] for x in st) / n for k in ("on", "ring", "on_clean", "ring_clean")
          if st and st[0][k] is not None}
    worst = max(((x["worst"], k, x["worst_frame"]) for k, x in zip(clips, ch) if x.get("worst") is not None),
                default=None)
    # the truth through the same encoder, at a lossy crf: what coding the scratches costs any colour
    enc = ([chroma(d, k, spec_all[k][0], ref, crf, a.tag, out=encoded_truth(d, spec_all[k][0], crf, a.extra))
            for k in clips] if crf != "0" and n else None)
    return {"psnr": float(np.mean([rows[k]["tool"]["psnr"] for k in clips])),
            "cdc": float(np.mean([rows[k]["tool"]["cdc"] for k in clips])),
            "gt": float(np.mean([rows[k]["gt_cdc"] for k in clips])),
            "top": float(np.mean([ceiling(d, k, spec_all[k][0]) for k in clips])),
            "cbcr": float(np.mean([x["cbcr_psnr"] for x in ch])), "n": n, "px": px, "worst": worst,
            "per": {k: rows[k]["tool"]["psnr"] for k in clips},
            "blocks": _blocks(ch), "enc_blocks": _blocks(enc) if enc else None}


def _blocks(ch: list[dict]) -> np.ndarray:
    """Rows (clip, scratch error sum and pixels, ring error sum and pixels), one per clip and stretch of
    :data:`STRETCH` frames, from :func:`chroma`'s per-frame sums of each clip in ``ch``."""
    blocks = {}
    for j, x in enumerate(ch):
        for i, *sums in x.get("frames", []):
            blocks.setdefault((j, i // STRETCH), np.array([j, 0.0, 0, 0.0, 0]))[1:] += sums
    return np.array(list(blocks.values())).reshape(-1, 5)


def _pooled(rows: list[dict]) -> dict:
    """Seeds' rows as one: means, the defect pixels' figures weighted by their pixels, the worst."""
    n = sum(r["n"] for r in rows)
    px = {k: sum(r["px"][k] * r["n"] for r in rows) / n for k in rows[0]["px"]} if n else {}
    worst = max((r["worst"] for r in rows if r["worst"] is not None), default=None)

    def joined(key: str) -> np.ndarray | None:  # each seed's clips their own groups
        if any(r[key] is None for r in rows):
            return None
        return np.concatenate([r[key] + [[len(r["per"]) * k, 0, 0, 0, 0]] for k, r in enumerate(rows)])

    return {**{k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "cdc", "gt", "top", "cbcr")},
            "n": n, "px": px, "worst": worst, "blocks": joined("blocks"), "enc_blocks": joined("enc_blocks")}


STRETCH = 12  # frames: a benchmark scratch lives 3-12, so a stretch this long holds most of one's life
RESAMPLES = 1000


def streak_interval(blocks: np.ndarray, seed: int = 0, minus: np.ndarray | None = None) -> tuple[float, float, float]:
    """The scratch pixels' Cb/Cr error less their rings', as the rows give it (per clip and seed, each
    pooled by its scratch pixels), and the 2.5 and 97.5 percentiles of it over :data:`RESAMPLES`
    resamplings of the ``blocks`` (rows: clip and seed, scratch error sum and pixels, ring error sum
    and pixels, per :data:`STRETCH` frames of a clip; drawn with replacement): how far the figure would
    move were other scratches to fall on the same pictures (a scratch's frames are not independent of
    each other; stretches as long as a scratch's life are more nearly so). ``minus``: blocks of the
    same stretches (row for row) of another video; then the figure is this one's less that one's,
    the two resampled together (paired: where the scratches fall moves both alike)."""
    group = blocks[:, 0].astype(np.intp)
    g = group.max() + 1
    if minus is not None and (minus.shape != blocks.shape or not np.array_equal(minus[:, 0], blocks[:, 0])):
        raise ValueError("minus must hold the same stretches as blocks, row for row")

    def one(b: np.ndarray, pick: np.ndarray) -> float:
        on, n, ring, nr = (np.bincount(group[pick], b[pick, c], g) for c in (1, 2, 3, 4))
        ok = (n > 0) & (nr > 0)
        return float(((on[ok] / n[ok] - ring[ok] / nr[ok]) * n[ok]).sum() / n[ok].sum())

    def diff(pick: np.ndarray) -> float:
        return one(blocks, pick) - (one(minus, pick) if minus is not None else 0.0)

    rng = np.random.default_rng(seed)
    draws = [diff(rng.integers(0, len(blocks), len(blocks))) for _ in range(RESAMPLES)]
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return diff(np.arange(len(blocks))), float(lo), float(hi)


def _print_row(label: str, ref: str, crf: str, r: dict, clean: float | None) -> None:
    delta = f"{r['psnr'] - clean:+9.2f}" if clean is not None else f"{'':>9}"
    sc = "".join(f"{r['px'][k]:{w}.2f}" for k, w in (("on", 13), ("ring", 11), ("on_clean", 11), ("ring_clean", 11))
                 if k in r["px"])
    print(f"{label:<22}{ref:<5}{crf:<9}{r['psnr']:7.2f}{delta}{r['cdc']:9.5f}{r['gt']:9.5f}{r['cdc'] / r['gt']:7.2f}"
          f"{r['top']:8.2f}{r['cbcr']:10.2f}{sc}", flush=True)
    if len(r.get("blocks", ())) > 1:
        d, lo, hi = streak_interval(r["blocks"])
        print(f"{'':<22}scratch err - ring err {d:+.4f} codes; 95% of {RESAMPLES} resamplings of its {len(r['blocks'])} "
              f"{STRETCH}-frame stretches within {lo:+.4f} to {hi:+.4f}", flush=True)
    if r.get("enc_blocks") is not None and len(r["enc_blocks"]) > 1:
        e, elo, ehi = streak_interval(r["enc_blocks"])
        x, xlo, xhi = streak_interval(r["blocks"], minus=r["enc_blocks"])
        print(f"{'':<22}the truth itself through the same encoder {e:+.4f} ({elo:+.4f} to {ehi:+.4f}); "
              f"the tool's less it {x:+.4f} within {xlo:+.4f} to {xhi:+.4f}", flush=True)
    if r["worst"] is not None:
        x, clip, frame = r["worst"]
        print(f"{'':<22}worst scratch or speck: {x:+.2f} codes over its ring beyond the clean output's "
              f"({clip}, frame {frame})", flush=True)

if __name__ == "__main__":
    main()
