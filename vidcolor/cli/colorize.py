"""``vidcolor INPUT``: colourise a film or a photograph (also a part, a preview,
a side-by-side review; ``--jobs``/``--ray`` hand the film to the render farm)."""
from __future__ import annotations

import os
import sys

import click

from ..timecode import format_timecode
from .common import (HELP, FiniteFloat, call, print_shots, print_table, setup_logging, warn_damage,
                     write_json)
from .farm import farm_run

__all__ = ["colorize_cmd", "model_overrides"]


@click.command("colorize", context_settings=HELP)
@click.argument("input", type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(path_type=str), help="Output file [default: INPUT_color.EXT beside the input].")
@click.option("-r", "--reference", type=click.Path(path_type=str), help="A colour still, or a folder of stills.")
@click.option("-m", "--reference-map", type=click.Path(path_type=str), help="CSV 'start,reference': a still per shot.")
@click.option("-k", "--keyframes", type=click.Path(path_type=str), help="CSV 'frame,reference': frames coloured by "
              "hand (frame index or HH:MM:SS[.fff]), any number per shot; colour is carried both ways between them.")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=str), help="YAML config (see configs/).")
@click.option("--colorizer", help="Colorizer by name: exemplar (default) or transfer (fast).")
@click.option("--detector", help="Shot detector: auto (default: transnet on a GPU, histogram on a CPU), transnet, "
              "histogram, or off.")
@click.option("--report", "report_path", type=click.Path(path_type=str),
              help="Write a JSON report: shots, their references and scores, time per stage.")
@click.option("--explain", is_flag=True, help="Print which still each shot got, its score and (where it scored short) its view.")
@click.option("--profile", is_flag=True, help="Print the time spent in each stage (main thread and worker threads).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where the model runs [default: auto].")
@click.option("--batch-size", type=click.IntRange(0, 1024), help="Frames per model batch [default: 8; 0: sized to the GPU's free memory].")
@click.option("--saturation", type=FiniteFloat(0, 4), help="Colour strength of the exemplar colorizer "
              "[default: 1.0, as predicted].")
@click.option("--temporal", type=click.Choice(["off", "forward", "bidirectional"]),
              help="Colour steadied along optical flow inside each shot [default: forward; bidirectional: "
              "a backward pass too, for offline renders].")
@click.option("--deflicker", is_flag=True, help="Equalise the output luma's exposure frame to frame inside each "
              "shot (an old print's flicker): the one option that changes the film's luminance [default: off].")
@click.option("--model", help="Colorizer by name, as --colorizer; with --weights: eccv16 or siggraph17 "
              "(Zhang et al.'s released files), auto.")
@click.option("--weights", type=click.Path(path_type=str), help="Weights file of the --model/--colorizer "
              "(eccv16/siggraph17: the authors' .pth; auto: a .safetensors from 'vidcolor train auto'; exemplar: its "
              "fusion, rule (the default), packaged or a file; 'vidcolor weights' lists what is installed).")
@click.option("--temperature", type=FiniteFloat(0, 10, min_open=True), help="Annealed mean of the auto "
              "colorizer (and eccv16): lower is more vivid [default: auto's fitted one; eccv16 1.0].")
@click.option("--palette", type=click.Path(path_type=str), help="A colour still: the auto colorizer's hues and "
              "chroma are matched to its distribution (a period palette with no matching reference).")
@click.option("--gallery", metavar="DIR", help="Colour stills for shots with no still: each gets its best match "
              "(if any matches), coloured by exemplar and blended with auto by confidence; builtin: the packaged one.")
@click.option("--match", type=click.Choice(["strict", "normal", "force"]), help="How a given still is taken: "
              "normal (a poor match gives way to auto, a partial one is blended with it), strict (only a full "
              "match), force (every shot takes its still) [default: normal].")
@click.option("--codec", help="Video encoder: libx264 (default), libx265, ffv1 (lossless, .mkv), ...")
@click.option("--crf", type=click.IntRange(0, 63), help="Quality for x264/x265/AV1/VP9 [default: 16 for x264; 12 for masters].")
@click.option("--preset", help="Encoder speed preset [default: medium].")
@click.option("--jobs", type=click.IntRange(1, 1024), help="Render farm: cut the film at shot boundaries into "
              "segments and render N at a time in local processes (resumable: run again to go on).")
@click.option("--ray", "ray_address", metavar="ADDRESS", help="Render farm on a Ray cluster: its address, auto "
              "(the cluster this machine is in) or local (start one here). Needs pip install 'vidcolor[ray]'.")
@click.option("--start", metavar="T", help="Render only the part from T on: seconds (50, 12.5) or HH:MM:SS[.fff] "
              "from the film's first frame; shots and stills as in the full film [default output: INPUT_part.EXT].")
@click.option("--duration", metavar="D", help="The part's length (seconds or HH:MM:SS[.fff]) [default: to the end].")
@click.option("--preview", is_flag=True, help="A quick look: preview.seconds (default 3) from the start of each shot, "
              "joined, video only [default output: INPUT_preview.EXT].")
@click.option("--compare", is_flag=True, help="Review video: the input's gray | the colour, side by side, same "
              "height and timing (also with --preview, --start) [default output: ..._compare.EXT].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or notes; warnings and errors only.")
def colorize_cmd(input, output, reference, reference_map, keyframes, config_path, colorizer, detector, report_path, explain,
                 profile, model, weights, temperature, palette, gallery, match,
                 device, batch_size, saturation, temporal, codec, crf, preset, overwrite, quiet, deflicker=False,
                 jobs=None, ray_address=None, start=None, duration=None, preview=False, compare=False):
    """Colourise INPUT (a video or a still image)."""
    setup_logging(quiet)
    from ..config import load_config
    from ..io.image import is_image_path
    from ..pipeline import colorize

    colorizer, overrides = model_overrides(config_path, colorizer, model, weights, temperature, palette)
    cfg = call(load_config, config_path, {
        **overrides,
        "colorizer": colorizer, "shots.detector": detector, "runtime.device": device, "runtime.batch_size": batch_size,
        "exemplar.saturation": saturation, "temporal.mode": temporal, "gallery": gallery,
        "temporal.deflicker": True if deflicker else None,
        "references.match": match,
        "encode.codec": codec, "encode.crf": crf, "encode.preset": preset,
    })
    excerpt: dict = {}  # --start/--duration/--compare
    if preview or compare or start is not None or duration is not None:
        excerpt, output = excerpt_options(input, output, start, duration, preview, compare, jobs, ray_address)
        if preview:
            return run_preview(input, output, reference, reference_map, cfg, compare, overwrite, quiet, report_path,
                               keyframes)
    if jobs is not None or ray_address is not None:
        return farm_run(input, output, reference, reference_map, cfg, jobs or 1, ray_address, overwrite, quiet,
                        report_path, keyframes=keyframes)
    if keyframes is not None:
        if is_image_path(input):
            raise click.BadParameter("keyframes are frames of a film; for a photograph give its colouring as "
                                     "--reference", param_hint="--keyframes")
        excerpt["keyframes"] = keyframes
    bar = None

    def on_open(reader) -> None:
        nonlocal bar
        if quiet or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        info = reader.info
        total = info.frames or (int(info.duration * info.rate) if info.duration and info.rate else None)
        if excerpt.get("span") and info.rate:
            t, d = excerpt["span"]
            total = int((d if d is not None else max(0.0, (info.duration or 0) - t)) * info.rate) or None
        bar = tqdm(total=total, unit="frame", desc=os.path.basename(input), dynamic_ncols=True, leave=True)

    try:
        report = call(colorize, input, output, reference=reference, reference_map=reference_map, config=cfg,
                      overwrite=overwrite, progress=lambda n: bar.update(n) if bar is not None else None,
                      on_open=on_open, **excerpt)
    finally:
        if bar is not None:
            bar.close()
    if report_path:
        call(write_json, report_path, report.to_dict())
    if explain:
        print_shots(report.shots, ["index", "first_frame", "start_time", "reference", "score", "view", "choice", "colorizer"])
        print_low_confidence(report.shots)
    if profile:
        print_profile(report)
    if not quiet and is_image_path(input):
        click.echo(f"vidcolor: wrote {report.output} ({report.seconds:.1f} s, {report.device})", err=True)
    elif not quiet:
        click.echo(f"vidcolor: wrote {report.output} ({report.frames} frames, {len(report.shots)} shot(s), "
                   f"{report.seconds:.1f} s, {report.fps:.1f} fps, {report.device})", err=True)
    warn_damage(input, report)


def print_low_confidence(shots: list[dict]) -> None:
    """The stretches where the colour carried from the stills reaches little of the frame (--explain)."""
    low = [(s["index"], a, b) for s in shots for a, b in s.get("low_confidence", ())]
    if low:
        click.echo("low-confidence stretches (a keyframe there would help; vidcolor keyframes --suggest): " +
                   ", ".join(f"shot {i} frames {a}-{b}" for i, a, b in low[:20]) +
                   (f" and {len(low) - 20} more" if len(low) > 20 else ""))


def print_profile(report) -> None:
    """Seconds per stage: the main thread's stages, then the worker threads' busy time.
    They overlap; the busiest (colorize, usually) sets the pace."""
    wall = max(report.seconds, 1e-9)
    rows = sorted(report.stages.items(), key=lambda kv: (kv[0].endswith("(thread)"), -kv[1]))
    width = max([len(k) for k, _ in rows] + [5])
    click.echo(f"{'stage':<{width}}  {'seconds':>8}  {'of wall':>7}  {'ms/frame':>8}")
    for stage, sec in rows:
        per = 1000 * sec / report.frames if report.frames else 0.0
        click.echo(f"{stage:<{width}}  {sec:8.2f}  {100 * sec / wall:6.1f}%  {per:8.1f}")
    click.echo(f"{'wall':<{width}}  {report.seconds:8.2f}  {100.0:6.1f}%  "
               f"{1000 * report.seconds / max(report.frames, 1):8.1f}   ({report.fps:.1f} frames/s)")


def excerpt_options(input, output, start, duration, preview, compare, jobs, ray) -> tuple[dict, str | None]:
    """--start/--duration/--preview/--compare checked: (colorize keyword arguments, the output's name)."""
    from ..io.image import is_image_path
    from ..timecode import parse_seconds
    from ..outputs import compare_output, default_output, part_output

    given = [n for n, v in (("--start", start), ("--duration", duration), ("--preview", preview),
                            ("--compare", compare)) if v]
    if is_image_path(input):
        raise click.BadParameter(f"a still image has no time to cut or compare; drop {' '.join(given)}",
                                 param_hint=given[0])
    if jobs is not None or ray:
        raise click.BadParameter(f"{given[0]} renders on this machine; drop --jobs/--ray", param_hint=given[0])
    if preview and (start is not None or duration is not None):
        raise click.BadParameter("--preview takes a few seconds of every shot; for one part give --start/--duration "
                                 "without --preview", param_hint="--preview")
    span = None
    if start is not None or duration is not None:
        try:
            t = parse_seconds(start, "--start") if start is not None else 0.0
            d = parse_seconds(duration, "--duration") if duration is not None else None
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--start" if start is not None else "--duration") from None
        if d == 0:
            raise click.BadParameter("must be more than 0 seconds", param_hint="--duration")
        span = (t, d)
    if output is None and not preview:
        output = os.fspath(part_output(input) if span else default_output(input))
        if compare:
            output = os.fspath(compare_output(output))
    kwargs: dict = {}
    if span is not None:
        kwargs["span"] = span
    if compare:
        kwargs["compare"] = True
    return kwargs, output


def run_preview(input, output, reference, reference_map, cfg, compare, overwrite, quiet, report_path,
                keyframes=None) -> None:
    """--preview: a few seconds of each shot, joined; a table of which shot each excerpt comes from."""
    from ..preview import colorize_preview

    bars: dict = {}
    show = not quiet and sys.stderr.isatty()

    def plan_progress(n: int) -> None:
        if show:
            if "plan" not in bars:
                from tqdm import tqdm

                bars["plan"] = tqdm(unit="frame", desc=f"{os.path.basename(input)}: shots", dynamic_ncols=True,
                                    leave=False)
            bars["plan"].update(n)

    def on_plan(excerpts, frames: int) -> None:
        if "plan" in bars:
            bars.pop("plan").close()
        if show:
            from tqdm import tqdm

            bars["render"] = tqdm(total=frames, unit="frame", dynamic_ncols=True,
                                  desc=f"{os.path.basename(input)}: {len(excerpts)} excerpt(s)")

    try:
        report = call(colorize_preview, input, output, reference=reference, reference_map=reference_map,
                      keyframes=keyframes, config=cfg, overwrite=overwrite, compare=compare, plan_progress=plan_progress, on_plan=on_plan,
                      progress=lambda n: bars["render"].update(n) if "render" in bars else None)
    finally:
        for b in bars.values():
            b.close()
    if report_path:
        call(write_json, report_path, report.to_dict())
    if not quiet:
        rows = [{**e, "at": format_timecode(e["at"]), "start_time": format_timecode(e["start_time"])}
                for e in report.excerpts]
        print_table(rows, ["excerpt", "at", "shot", "first_frame", "start_time", "frames", "reference"],
                     {"at": "at (preview)", "first_frame": "first frame", "start_time": "timecode (film)"})
        click.echo(f"vidcolor: wrote {report.output} ({report.frames} frames from {len(report.excerpts)} of "
                   f"{report.shots} shot(s), video only; {report.seconds:.1f} s, of which finding shots "
                   f"{report.plan_seconds:.1f} s)", err=True)


def model_overrides(config_path, colorizer, model, weights, temperature, palette) -> tuple[str | None, dict]:
    """--model/--weights/--temperature/--palette as config overrides (--weights goes to the chosen colorizer)."""
    from ..config import load_config

    if model and colorizer and model != colorizer:
        raise click.BadParameter(f"--model {model} and --colorizer {colorizer} disagree; give one", param_hint="--model")
    name = model or colorizer
    if name is None and (weights is not None or temperature is not None):
        name = call(load_config, config_path).colorizer
    out = {"auto.temperature": temperature, "auto.palette": palette}
    if weights is not None:
        out[f"{name}.weights"] = weights
    if name == "eccv16":
        out["eccv16.temperature"] = temperature
    return name, out
