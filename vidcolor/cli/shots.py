"""``vidcolor shots INPUT``: list a film's shots (a --reference-map template with --format csv)."""
from __future__ import annotations

import os
import sys

import click

from ..timecode import format_timecode
from .common import HELP, call, print_shots, setup_logging

__all__ = ["shots_cmd"]


@click.command("shots", context_settings=HELP)
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
    setup_logging(quiet)
    from ..config import load_config
    from ..pipeline import detect_shots

    cfg = call(load_config, config_path, {"shots.detector": detector, "runtime.device": device})
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="frame", desc=os.path.basename(input), dynamic_ncols=True, leave=False)
    try:
        shots, _ = call(detect_shots, input, config=cfg, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    rows = [s.to_dict() for s in shots]
    for r in rows:
        t = r.pop("transition")
        r["transition"] = t["kind"] if t else ""
    if fmt == "json":
        import json

        click.echo(json.dumps([{**r, "timecode": format_timecode(r["start_time"])} for r in rows], indent=1))
    elif fmt == "csv":
        click.echo("start,reference")
        for r in rows:
            click.echo(f"{r['first_frame']},")
    else:
        print_shots(rows, ["index", "first_frame", "start_time", "frames", "transition"])
