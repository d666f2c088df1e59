"""The render farm's commands: ``vidcolor INPUT --jobs N/--ray`` (run from
``colorize``), ``plan``, ``render-segment``, ``assemble``, ``batch``."""
from __future__ import annotations

import os
import sys

import click

from .common import (EXIT_ERROR, EXIT_TRUNCATED, HELP, call, check_threads, echo_table, exit_truncated, fail,
                     setup_logging, warn_damage, write_json)

__all__ = ["farm_run", "render_segment_cmd", "plan_cmd", "assemble_cmd", "batch_cmd"]


def farm_bars(quiet: bool, name: str):
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


def farm_job(input, output, **kwargs):
    """run_job; interrupted, it says what was kept."""
    from ..farm import job_dir, run_job
    from ..outputs import default_output

    try:
        return run_job(input, output, **kwargs)
    except KeyboardInterrupt as e:
        job = job_dir(output or default_output(input))
        if job.is_dir():
            raise type(e)(f"no output was written; finished segments are kept in {job}: run the same command "
                          "again to resume") from None
        raise


def farm_run(input, output, reference, reference_map, cfg, jobs, ray, overwrite, quiet, report_path,
             keyframes=None) -> None:
    from ..io.image import is_image_path

    if is_image_path(input):
        raise click.BadParameter("a still image is not split into segments; drop --jobs/--ray", param_hint="--jobs")
    on_plan, progress, plan_progress, close = farm_bars(quiet, os.path.basename(input))
    try:
        report = call(farm_job, input, output, reference=reference, reference_map=reference_map, keyframes=keyframes,
                      config=cfg, jobs=jobs, ray=ray, overwrite=overwrite, progress=progress, on_plan=on_plan, plan_progress=plan_progress)
    finally:
        close()
    if report_path:
        call(write_json, report_path, report.to_dict())
    if not quiet:
        resumed = f", {len(report.skipped)} from an earlier run" if report.skipped else ""
        click.echo(f"vidcolor: wrote {report.output} ({report.frames} frames, {report.segments} segment(s): "
                   f"{len(report.rendered)} rendered{resumed}; {report.seconds:.1f} s)", err=True)
    if report.truncated:  # as a single-machine run: the output holds what could be decoded, exit 3
        if report.resumed:  # planned by an earlier run, which said so then
            warn_damage(input, report)
        sys.exit(EXIT_TRUNCATED)


@click.command("render-segment", context_settings=HELP)
@click.argument("manifest", type=click.Path(path_type=str))
@click.argument("k", type=click.IntRange(0))
@click.option("--threads", type=click.IntRange(1, 1024), callback=check_threads,
              help="PyTorch threads [default: the job's config].")
@click.option("--force", is_flag=True, help="Render it even if it is already done.")
@click.option("-q", "--quiet", is_flag=True)
def render_segment_cmd(manifest, k, threads, force, quiet):
    """Render segment K of a planned job, for any farm scheduler (Slurm array, Deadline, OpenCue).

    MANIFEST is OUTPUT.vidcolor-job/manifest.json (from `vidcolor plan` or an
    earlier `vidcolor INPUT --jobs N`). Prints the journal entry as JSON.
    """
    setup_logging(quiet)
    import json

    from ..farm import Manifest, read_journal, render_segment
    from ..farm.segment import segment_done

    m = call(Manifest.load, manifest)
    if not force and 0 <= k < len(m.segments) and segment_done(m, k, read_journal(m.dir)):
        if not quiet:
            click.echo(f"vidcolor: segment {k} is already done ({m.segment_path(k)})", err=True)
        return
    entry = call(render_segment, m, k, threads=threads)
    click.echo(json.dumps(entry, sort_keys=True))


@click.command("plan", context_settings=HELP)
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
    setup_logging(quiet)
    from ..config import load_config
    from ..farm import plan_job
    from ..outputs import default_output

    cfg = call(load_config, config_path)
    out = output or default_output(input)
    m, resumed = call(plan_job, input, out, reference=reference, reference_map=reference_map, config=cfg,
                      overwrite=overwrite)
    click.echo(m.path)
    if not quiet:
        click.echo(f"vidcolor: {'found' if resumed else 'planned'} {len(m.segments)} segment(s), {len(m.shots)} "
                   f"shot(s), {m.frames} frames", err=True)


@click.command("assemble", context_settings=HELP)
@click.argument("manifest", type=click.Path(path_type=str))
@click.option("--keep", is_flag=True, help="Keep the job folder afterwards.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True)
def assemble_cmd(manifest, keep, overwrite, quiet):
    """Join the rendered segments of a job into its output (no re-encoding)."""
    setup_logging(quiet)
    import shutil

    from ..errors import OutputError
    from ..farm import Manifest, assemble, read_journal
    from ..farm.segment import segment_done

    m = call(Manifest.load, manifest)
    journal = read_journal(m.dir)
    missing = [s.index for s in m.segments if not segment_done(m, s.index, journal)]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        call(fail, OutputError(f"{len(missing)} segment(s) not rendered (or corrupt): {shown}; "
                                 "run vidcolor render-segment for them", m.dir))
    out = call(assemble, m, overwrite=overwrite)
    if not keep:
        shutil.rmtree(m.dir, ignore_errors=True)
    if not quiet:
        click.echo(f"vidcolor: wrote {out} ({m.frames} frames from {len(m.segments)} segment(s))", err=True)
    if m.video.get("truncated"):  # as --jobs and a single run: the output holds what could be decoded, exit 3
        exit_truncated(m.input, m.video["truncated"], m.frames)


@click.command("batch", context_settings=HELP)
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
    setup_logging(quiet)
    from ..config import load_config
    from ..farm import batch

    cfg = call(load_config, config_path, {"colorizer": colorizer})
    state: dict = {}

    def on_film(film, out) -> None:
        if "close" in state:
            state.pop("close")()
        on_plan, progress, plan_progress, close = farm_bars(quiet, film.name)
        state.update(on_plan=on_plan, progress=progress, plan_progress=plan_progress, close=close)

    kwargs = dict(reference=reference, reference_map=reference_map, config=cfg, jobs=jobs, ray=ray_address,
                  on_plan=lambda m, d: state["on_plan"](m, d), progress=lambda n: state["progress"](n),
                  plan_progress=lambda n: state["plan_progress"](n))
    try:
        rows = call(batch, source, outdir, overwrite=overwrite, on_film=on_film, **kwargs)
    finally:
        if "close" in state:
            state.pop("close")()
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "failed", "skipped")}
    table = [[os.path.basename(r["input"]), r["status"], r["detail"]] for r in rows]
    echo_table([["film", "status", "detail"]] + table)
    click.echo(f"{counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped")
    if counts["failed"]:
        sys.exit(EXIT_ERROR)
