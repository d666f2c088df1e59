"""Command line: ``vidcolor INPUT [--reference IMAGE|DIR | --reference-map MAP.csv] [-o OUTPUT]``.

The only module that prints or exits. Library errors become one line on
stderr and a non-zero exit; ``VIDCOLOR_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import logging
import os
import sys

import click

from . import __version__

log = logging.getLogger("vidcolor")

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C)
EXIT_TERMINATED = 143  # SIGTERM (128 + 15)
EXIT_TRUNCATED = 3  # the output was written, but the input ends early: it holds what could be decoded


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds (and cleans up) as Ctrl-C does."""


def _on_sigterm(signum, frame) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one must not cut the clean-up short
    raise Terminated()


def _trap_sigterm() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _debug() -> bool:
    return os.environ.get("VIDCOLOR_DEBUG", "") not in ("", "0")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"vidcolor: {level}{record.getMessage()}"


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def _run(fn, *args, **kwargs):
    """Call into the library; turn its errors into one line and an exit code."""
    from .errors import VidcolorError

    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt as e:
        if _debug():
            raise
        click.echo(f"vidcolor: interrupted; {str(e) or 'no output was written'}", err=True)
        sys.exit(EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED)
    except VidcolorError as e:
        if _debug():
            raise
        click.echo(f"vidcolor: error: {e}", err=True)
        sys.exit(EXIT_ERROR)
    except MemoryError:
        if _debug():
            raise
        click.echo("vidcolor: error: out of memory (try a smaller --batch-size)", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as e:  # a bug: still one line, the traceback on request
        if _debug():
            raise
        click.echo(f"vidcolor: internal error: {type(e).__name__}: {e} (set VIDCOLOR_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_ERROR)


class _DefaultGroup(click.Group):
    """``vidcolor INPUT ...`` runs ``colorize``; ``vidcolor NAME ...`` a subcommand."""

    default_command = "colorize"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        elif not args:
            args = ["--help"]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidcolor")
def main() -> None:
    """Colourise black-and-white film.

    \b
      vidcolor film.mp4 --reference still.jpg            one colour still for the film
      vidcolor film.mp4 --reference stills/              a folder of stills
      vidcolor film.mp4 --reference-map map.csv          a still per shot (start,reference)
      vidcolor photo.jpg --reference r.jpg -o out.png    a still photograph
    """
    _trap_sigterm()


@main.command("colorize", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input", type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(path_type=str), help="Output file [default: INPUT_color.EXT beside the input].")
@click.option("-r", "--reference", type=click.Path(path_type=str), help="A colour still, or a folder of stills.")
@click.option("-m", "--reference-map", type=click.Path(path_type=str), help="CSV 'start,reference': a still per shot.")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=str), help="YAML config (see configs/).")
@click.option("--colorizer", help="Colorizer by name: exemplar (default) or transfer (fast).")
@click.option("--detector", help="Shot detector: auto (default: transnet on a GPU, histogram on a CPU), transnet, "
              "histogram, or off.")
@click.option("--report", "report_path", type=click.Path(path_type=str),
              help="Write a JSON report: shots, their references and scores, time per stage.")
@click.option("--explain", is_flag=True, help="Print which still each shot got, and its score.")
@click.option("--profile", is_flag=True, help="Print the time spent in each stage (main thread and worker threads).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where the model runs [default: auto].")
@click.option("--batch-size", type=click.IntRange(0, 1024), help="Frames per model batch [default: 8; 0: sized to the GPU's free memory].")
@click.option("--saturation", type=click.FloatRange(0, 4), help="Colour strength of the exemplar colorizer "
              "[default: 1.0, as predicted].")
@click.option("--temporal", type=click.Choice(["off", "forward", "bidirectional"]),
              help="Colour steadied along optical flow inside each shot [default: forward; bidirectional: "
              "a backward pass too, for offline renders].")
@click.option("--model", help="Colorizer by name, as --colorizer; with --weights: eccv16 or siggraph17 "
              "(Zhang et al.'s released files), auto.")
@click.option("--weights", type=click.Path(path_type=str), help="Weights file of the --model/--colorizer "
              "(eccv16/siggraph17: the authors' .pth; auto: a .safetensors from 'vidcolor train auto').")
@click.option("--temperature", type=click.FloatRange(0, 10, min_open=True), help="Annealed mean of the auto "
              "colorizer (and eccv16): lower is more vivid [default: auto's fitted one; eccv16 1.0].")
@click.option("--palette", type=click.Path(path_type=str), help="A colour still: the auto colorizer's hues and "
              "chroma are matched to its distribution (a period palette with no matching reference).")
@click.option("--gallery", metavar="DIR", help="Colour stills for shots with no still: each gets its best match "
              "(if any matches), coloured by exemplar and blended with auto by confidence; builtin: the packaged one.")
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
def colorize_cmd(input, output, reference, reference_map, config_path, colorizer, detector, report_path, explain,
                 profile, model, weights, temperature, palette, gallery,
                 device, batch_size, saturation, temporal, codec, crf, preset, overwrite, quiet,
                 jobs=None, ray_address=None, start=None, duration=None, preview=False, compare=False):
    """Colourise INPUT (a video or a still image)."""
    _setup_logging(quiet)
    from .config import load_config
    from .io.image import is_image_path
    from .pipeline import colorize

    colorizer, model_overrides = _model_overrides(config_path, colorizer, model, weights, temperature, palette)
    cfg = _run(load_config, config_path, {
        **model_overrides,
        "colorizer": colorizer, "shots.detector": detector, "runtime.device": device, "runtime.batch_size": batch_size,
        "exemplar.saturation": saturation, "temporal.mode": temporal, "gallery": gallery,
        "encode.codec": codec, "encode.crf": crf, "encode.preset": preset,
    })
    excerpt: dict = {}  # --start/--duration/--compare
    if preview or compare or start is not None or duration is not None:
        excerpt, output = _excerpt_options(input, output, start, duration, preview, compare, jobs, ray_address)
        if preview:
            return _preview(input, output, reference, reference_map, cfg, compare, overwrite, quiet, report_path)
    if jobs is not None or ray_address is not None:
        return _farm(input, output, reference, reference_map, cfg, jobs or 1, ray_address, overwrite, quiet,
                     report_path)
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
        report = _run(colorize, input, output, reference=reference, reference_map=reference_map, config=cfg,
                      overwrite=overwrite, progress=lambda n: bar.update(n) if bar is not None else None,
                      on_open=on_open, **excerpt)
    finally:
        if bar is not None:
            bar.close()
    if report_path:
        _run(_write_json, report_path, report.to_dict())
    if explain:
        _print_shots(report.shots, ["index", "first_frame", "start_time", "reference", "score", "colorizer"])
    if profile:
        _print_profile(report)
    if not quiet and is_image_path(input):
        click.echo(f"vidcolor: wrote {report.output} ({report.seconds:.1f} s, {report.device})", err=True)
    elif not quiet:
        click.echo(f"vidcolor: wrote {report.output} ({report.frames} frames, {len(report.shots)} shot(s), "
                   f"{report.seconds:.1f} s, {report.fps:.1f} fps, {report.device})", err=True)
    _warn_damage(input, report)


def _print_profile(report) -> None:
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


def _excerpt_options(input, output, start, duration, preview, compare, jobs, ray) -> tuple[dict, str | None]:
    """--start/--duration/--preview/--compare checked: (colorize keyword arguments, the output's name)."""
    from .io.image import is_image_path
    from .io.span import parse_seconds
    from .pipeline import default_output
    from .preview import compare_output, part_output

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


def _preview(input, output, reference, reference_map, cfg, compare, overwrite, quiet, report_path) -> None:
    """--preview: a few seconds of each shot, joined; a table of which shot each excerpt comes from."""
    from .preview import colorize_preview

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
        report = _run(colorize_preview, input, output, reference=reference, reference_map=reference_map, config=cfg,
                      overwrite=overwrite, compare=compare, plan_progress=plan_progress, on_plan=on_plan,
                      progress=lambda n: bars["render"].update(n) if "render" in bars else None)
    finally:
        for b in bars.values():
            b.close()
    if report_path:
        _run(_write_json, report_path, report.to_dict())
    if not quiet:
        rows = [{**e, "at": timecode(e["at"]), "start_time": timecode(e["start_time"])} for e in report.excerpts]
        _print_table(rows, ["excerpt", "at", "shot", "first_frame", "start_time", "frames", "reference"],
                     {"at": "at (preview)", "first_frame": "first frame", "start_time": "timecode (film)"})
        click.echo(f"vidcolor: wrote {report.output} ({report.frames} frames from {len(report.excerpts)} of "
                   f"{report.shots} shot(s), video only; {report.seconds:.1f} s, of which finding shots "
                   f"{report.plan_seconds:.1f} s)", err=True)


def _print_table(rows: list[dict], keys: list[str], head: dict[str, str]) -> None:
    def cell(row, k):
        v = row.get(k)
        if k == "reference":
            return os.path.basename(v) if v else "(auto)"
        return "" if v is None else str(v)

    table = [[head.get(k, k) for k in keys]] + [[cell(r, k) for k in keys] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(keys))]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _warn_damage(input: str, report) -> None:
    """Damaged frames repaired: a warning. A truncated input: a warning saying where it ends, and exit 3."""
    from .io.decode import damage_note

    if getattr(report, "damaged_frames", 0):
        click.echo(f"vidcolor: warning: {input}: {damage_note(report.damaged_frames, report.damaged)}", err=True)
    if getattr(report, "truncated", None):
        _exit_truncated(input, report.truncated, report.frames)


def _exit_truncated(input: str, truncated: dict, frames: int) -> None:
    """A truncated input: a warning saying where it ends and what the output holds, and exit 3."""
    from .io.decode import Truncation

    click.echo(f"vidcolor: warning: {input}: {Truncation(**truncated).describe()}; the output holds the "
               f"{frames} frames before that", err=True)
    sys.exit(EXIT_TRUNCATED)


def _model_overrides(config_path, colorizer, model, weights, temperature, palette) -> tuple[str | None, dict]:
    """--model/--weights/--temperature/--palette as config overrides (--weights goes to the chosen colorizer)."""
    from .config import load_config

    if model and colorizer and model != colorizer:
        raise click.BadParameter(f"--model {model} and --colorizer {colorizer} disagree; give one", param_hint="--model")
    name = model or colorizer
    if name is None and (weights is not None or temperature is not None):
        name = _run(load_config, config_path).colorizer
    out = {"auto.temperature": temperature, "auto.palette": palette}
    if weights is not None:
        out[f"{name}.weights"] = weights
    if name == "eccv16":
        out["eccv16.temperature"] = temperature
    return name, out


def _write_json(path: str, data) -> None:
    import json

    from .errors import OutputError

    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, default=str)
            fh.write("\n")
    except OSError as e:
        raise OutputError(f"cannot write the report ({e.strerror})", path) from None


def timecode(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _print_shots(rows: list[dict], keys: list[str]) -> None:
    """A plain aligned table on stdout."""
    def cell(row, k):
        v = row.get(k)
        if k == "start_time" and v is not None:
            return timecode(v)
        if k == "reference" and v:
            return os.path.basename(v)
        return "" if v is None else str(v)

    head = {"first_frame": "first frame", "start_time": "timecode", "frames": "length"}
    table = [[head.get(k, k) for k in keys]] + [[cell(r, k) for k in keys] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(keys))]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


@main.command("shots", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input", type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="csv is a --reference-map template: fill in the reference column.")
@click.option("--detector", help="Shot detector: auto (default: transnet on a GPU, histogram on a CPU), transnet "
              "or histogram.")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=str), help="YAML config.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where the detector runs.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def shots_cmd(input, fmt, detector, config_path, device, quiet):
    """List the shots of INPUT: index, first frame, timecode, length."""
    _setup_logging(quiet)
    from .config import load_config
    from .pipeline import detect_shots

    cfg = _run(load_config, config_path, {"shots.detector": detector, "runtime.device": device})
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="frame", desc=os.path.basename(input), dynamic_ncols=True, leave=False)
    try:
        shots, _ = _run(detect_shots, input, config=cfg, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    rows = [s.to_dict() for s in shots]
    for r in rows:
        t = r.pop("transition")
        r["transition"] = t["kind"] if t else ""
    if fmt == "json":
        import json

        click.echo(json.dumps([{**r, "timecode": timecode(r["start_time"])} for r in rows], indent=1))
    elif fmt == "csv":
        click.echo("start,reference")
        for r in rows:
            click.echo(f"{r['first_frame']},")
    else:
        _print_shots(rows, ["index", "first_frame", "start_time", "frames", "transition"])


@main.group("train", context_settings={"help_option_names": ["-h", "--help"]})
def train_group() -> None:
    """Train a model shipped with vidcolor (long: run it in the background)."""


def _train_command(name: str, summary: str):
    """``vidcolor train NAME``: the options every training command has (-c, --device, --fresh, -q)."""
    def decorate(fn):
        for option in reversed((
            click.option("-c", "--config", "config_path", required=True, type=click.Path(path_type=str),
                         help=f"Training YAML, e.g. configs/train-{name}.yaml."),
            click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
            click.option("--fresh", is_flag=True, help="Start over instead of resuming from the run folder's checkpoint."),
            click.option("-q", "--quiet", is_flag=True),
        )):
            fn = option(fn)
        return train_group.command(name, help=summary, context_settings={"help_option_names": ["-h", "--help"]})(fn)

    return decorate


def _train(train, cfg, device: str, fresh: bool, quiet: bool) -> None:
    """Run a training loop with a progress line every 50 steps, then say where its weights went."""
    from .pipeline import resolve_device

    dev = _run(resolve_device, device)

    def progress(step: int, loss: float) -> None:
        if not quiet and (step % 50 == 0 or step == cfg.steps):
            click.echo(f"vidcolor: step {step}/{cfg.steps} loss {loss:.4f}", err=True)

    path = _run(train, cfg, device=dev, resume=not fresh, progress=progress)
    click.echo(f"vidcolor: wrote {path}", err=True)


@_train_command("exemplar", "Train the exemplar colorizer's fusion network; writes OUT/exemplar_fusion.safetensors.")
def train_exemplar_cmd(config_path, device, fresh, quiet):
    _setup_logging(quiet)
    from .train.exemplar import load_train_config, train_exemplar

    _train(train_exemplar, _run(load_train_config, config_path), device, fresh, quiet)


@_train_command("matcher", "Train the exemplar colorizer's similarity sub-net; writes OUT/exemplar_matcher.safetensors.")
def train_matcher_cmd(config_path, device, fresh, quiet):
    _setup_logging(quiet)
    from .train.matcher import load_train_config, train_matcher

    _train(train_matcher, _run(load_train_config, config_path), device, fresh, quiet)


@_train_command("auto", "Train the auto colorizer's decoder; writes OUT/auto.safetensors.")
@click.option("--threads", type=click.IntRange(0, 256), help="PyTorch threads [default: the config's].")
@click.option("--minutes", type=click.FloatRange(0), help="Stop after this much training time as well "
              "[default: the config's]; the learning-rate schedule follows whichever limit comes first.")
@click.option("--export", "export_only", metavar="best|last|step_N",
              help="Only write OUT/auto.safetensors from the best (lowest validation CE), last or step_N checkpoint.")
def train_auto_cmd(config_path, device, fresh, quiet, threads, minutes, export_only):
    _setup_logging(quiet)
    import dataclasses

    from .train.auto import export_auto, load_train_config, train_auto

    cfg = _run(load_train_config, config_path)
    if threads is not None:
        cfg = dataclasses.replace(cfg, threads=threads)
    if minutes is not None:
        cfg = dataclasses.replace(cfg, minutes=minutes)
    if export_only:
        path = _run(export_auto, cfg, which=export_only)
        click.echo(f"vidcolor: wrote {path}", err=True)
        return
    _train(train_auto, cfg, device, fresh, quiet)


# -- render farm ------------------------------------------------------------------------------

def _farm_bars(quiet: bool, name: str):
    """(on_plan, progress, plan_progress, close): one bar over the job's frames, filled as segments finish."""
    bars: dict = {}
    show = not quiet and sys.stderr.isatty()

    def plan_progress(n: int) -> None:
        if show:
            if "plan" not in bars:
                from tqdm import tqdm

                bars["plan"] = tqdm(unit="frame", desc=f"{name}: shots", dynamic_ncols=True, leave=False)
            bars["plan"].update(n)

    def on_plan(manifest, done: int) -> None:
        if "plan" in bars:
            bars.pop("plan").close()
        if show:
            from tqdm import tqdm

            bars["render"] = tqdm(total=manifest.frames, initial=done, unit="frame", dynamic_ncols=True,
                                  desc=f"{name}: {len(manifest.segments)} segment(s)")

    def progress(n: int) -> None:
        if "render" in bars:
            bars["render"].update(n)

    def close() -> None:
        for b in bars.values():
            b.close()
        bars.clear()

    return on_plan, progress, plan_progress, close


def _farm_job(input, output, **kwargs):
    """run_job; interrupted, it says what was kept."""
    from .farm import job_dir, run_job
    from .pipeline import default_output

    try:
        return run_job(input, output, **kwargs)
    except KeyboardInterrupt as e:
        job = job_dir(output or default_output(input))
        if job.is_dir():
            raise type(e)(f"no output was written; finished segments are kept in {job}: run the same command "
                          "again to resume") from None
        raise


def _farm(input, output, reference, reference_map, cfg, jobs, ray, overwrite, quiet, report_path) -> None:
    from .io.image import is_image_path

    if is_image_path(input):
        raise click.BadParameter("a still image is not split into segments; drop --jobs/--ray", param_hint="--jobs")
    on_plan, progress, plan_progress, close = _farm_bars(quiet, os.path.basename(input))
    try:
        report = _run(_farm_job, input, output, reference=reference, reference_map=reference_map, config=cfg, jobs=jobs,
                      ray=ray, overwrite=overwrite, progress=progress, on_plan=on_plan, plan_progress=plan_progress)
    finally:
        close()
    if report_path:
        _run(_write_json, report_path, report.to_dict())
    if not quiet:
        resumed = f", {len(report.skipped)} from an earlier run" if report.skipped else ""
        click.echo(f"vidcolor: wrote {report.output} ({report.frames} frames, {report.segments} segment(s): "
                   f"{len(report.rendered)} rendered{resumed}; {report.seconds:.1f} s)", err=True)
    if report.truncated:  # as a single-machine run: the output holds what could be decoded, exit 3
        if report.resumed:  # planned by an earlier run, which said so then
            _warn_damage(input, report)
        sys.exit(EXIT_TRUNCATED)


@main.command("render-segment", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("manifest", type=click.Path(path_type=str))
@click.argument("k", type=click.IntRange(0))
@click.option("--threads", type=click.IntRange(1, 1024), help="PyTorch threads [default: the job's config].")
@click.option("--force", is_flag=True, help="Render it even if it is already done.")
@click.option("-q", "--quiet", is_flag=True)
def render_segment_cmd(manifest, k, threads, force, quiet):
    """Render segment K of a planned job, for any farm scheduler (Slurm array, Deadline, OpenCue).

    MANIFEST is OUTPUT.vidcolor-job/manifest.json (from `vidcolor plan` or an
    earlier `vidcolor INPUT --jobs N`). Prints the journal entry as JSON.
    """
    _setup_logging(quiet)
    import json

    from .farm import Manifest, read_journal, render_segment
    from .farm.segment import segment_done

    m = _run(Manifest.load, manifest)
    if not force and 0 <= k < len(m.segments) and segment_done(m, k, read_journal(m.dir)):
        if not quiet:
            click.echo(f"vidcolor: segment {k} is already done ({m.segment_path(k)})", err=True)
        return
    entry = _run(render_segment, m, k, threads=threads)
    click.echo(json.dumps(entry, sort_keys=True))


@main.command("plan", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input", type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(path_type=str), help="Output file [default: INPUT_color.EXT].")
@click.option("-r", "--reference", type=click.Path(path_type=str), help="A colour still, or a folder of stills.")
@click.option("-m", "--reference-map", type=click.Path(path_type=str), help="CSV 'start,reference'.")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=str), help="YAML config (farm.segment_seconds).")
@click.option("--overwrite", is_flag=True, help="Discard another job in the job folder.")
@click.option("-q", "--quiet", is_flag=True)
def plan_cmd(input, output, reference, reference_map, config_path, overwrite, quiet):
    """Plan a render-farm job (shots, segments) without rendering; prints the manifest's path.

    \b
      vidcolor plan film.mp4 -r still.jpg -o out.mp4
      vidcolor render-segment out.mp4.vidcolor-job/manifest.json K    (K = 0 .. N-1, anywhere)
      vidcolor assemble out.mp4.vidcolor-job/manifest.json
    """
    _setup_logging(quiet)
    from .config import load_config
    from .farm import plan_job
    from .pipeline import default_output

    cfg = _run(load_config, config_path)
    out = output or default_output(input)
    m, resumed = _run(plan_job, input, out, reference=reference, reference_map=reference_map, config=cfg,
                      overwrite=overwrite)
    click.echo(m.path)
    if not quiet:
        click.echo(f"vidcolor: {'found' if resumed else 'planned'} {len(m.segments)} segment(s), {len(m.shots)} "
                   f"shot(s), {m.frames} frames", err=True)


@main.command("assemble", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("manifest", type=click.Path(path_type=str))
@click.option("--keep", is_flag=True, help="Keep the job folder afterwards.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True)
def assemble_cmd(manifest, keep, overwrite, quiet):
    """Join the rendered segments of a job into its output (no re-encoding)."""
    _setup_logging(quiet)
    import shutil

    from .errors import OutputError
    from .farm import Manifest, assemble, read_journal
    from .farm.segment import segment_done

    m = _run(Manifest.load, manifest)
    journal = read_journal(m.dir)
    missing = [s.index for s in m.segments if not segment_done(m, s.index, journal)]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        _run(_raise, OutputError(f"{len(missing)} segment(s) not rendered (or corrupt): {shown}; "
                                 "run vidcolor render-segment for them", m.dir))
    out = _run(assemble, m, overwrite=overwrite)
    if not keep:
        shutil.rmtree(m.dir, ignore_errors=True)
    if not quiet:
        click.echo(f"vidcolor: wrote {out} ({m.frames} frames from {len(m.segments)} segment(s))", err=True)
    if m.video.get("truncated"):  # as --jobs and a single run: the output holds what could be decoded, exit 3
        _exit_truncated(m.input, m.video["truncated"], m.frames)


def _raise(e: BaseException):
    raise e


@main.command("batch", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", type=click.Path(path_type=str))
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=str), help="Folder for the outputs.")
@click.option("-r", "--reference", type=click.Path(path_type=str), help="A colour still, or a folder of stills.")
@click.option("-m", "--reference-map", type=click.Path(path_type=str), help="CSV 'start,reference' (all films).")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=str), help="YAML config.")
@click.option("--colorizer", help="Colorizer by name.")
@click.option("--jobs", type=click.IntRange(1, 1024), default=1, show_default=True, help="Local processes.")
@click.option("--ray", "ray_address", metavar="ADDRESS", help="Ray cluster: address, auto or local.")
@click.option("--overwrite", is_flag=True, help="Render films whose output exists again.")
@click.option("-q", "--quiet", is_flag=True)
def batch_cmd(source, outdir, reference, reference_map, config_path, colorizer, jobs, ray_address, overwrite, quiet):
    """Colourise many films: SOURCE is a folder of films or a text file listing them (one a line).

    Each film is its own resumable job; films whose output exists are
    skipped, so running the same command again finishes a batch. Ends with a
    table: done, failed, skipped.
    """
    _setup_logging(quiet)
    from .config import load_config
    from .farm import batch

    cfg = _run(load_config, config_path, {"colorizer": colorizer})
    state: dict = {}

    def on_film(film, out) -> None:
        if "close" in state:
            state.pop("close")()
        on_plan, progress, plan_progress, close = _farm_bars(quiet, film.name)
        state.update(on_plan=on_plan, progress=progress, plan_progress=plan_progress, close=close)

    kwargs = dict(reference=reference, reference_map=reference_map, config=cfg, jobs=jobs, ray=ray_address,
                  on_plan=lambda m, d: state["on_plan"](m, d), progress=lambda n: state["progress"](n),
                  plan_progress=lambda n: state["plan_progress"](n))
    try:
        rows = _run(batch, source, outdir, overwrite=overwrite, on_film=on_film, **kwargs)
    finally:
        if "close" in state:
            state.pop("close")()
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "failed", "skipped")}
    table = [[os.path.basename(r["input"]), r["status"], r["detail"]] for r in rows]
    table = [["film", "status", "detail"]] + table
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    click.echo(f"{counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped")
    if counts["failed"]:
        sys.exit(EXIT_ERROR)
