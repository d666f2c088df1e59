"""``vidcolor keyframes INPUT --suggest N -o DIR``: the frames a colourist should colour next."""
from __future__ import annotations

import os
import sys

import click

from ..timecode import format_timecode
from .common import HELP, call, print_table, setup_logging

__all__ = ["keyframes_cmd"]


@click.command("keyframes", context_settings=HELP)
@click.argument("input", type=click.Path(path_type=str))
@click.option("-k", "--keyframes", type=click.Path(path_type=str), help="The keyframes coloured so far "
              "(CSV 'frame,reference'); without: representative frames of each shot.")
@click.option("--suggest", "n", type=click.IntRange(1, 100000), default=1, show_default=True,
              help="How many frames to suggest, over the whole film.")
@click.option("--per-shot", type=click.IntRange(1, 1000), help="Suggest this many in every shot instead.")
@click.option("-o", "--output", "folder", type=click.Path(path_type=str), required=True,
              help="Folder for the frames (black-and-white PNGs, named by frame and timecode) and keys.csv, "
              "the sheet to fill in: the existing keyframes and the new ones.")
@click.option("-m", "--reference-map", type=click.Path(path_type=str), help="The run's reference map (its rows "
              "start shots, as in the run).")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=str), help="YAML config.")
@click.option("--detector", help="Shot detector, as for a run.")
@click.option("--overwrite", is_flag=True, help="Replace an existing keys.csv in the folder.")
@click.option("-q", "--quiet", is_flag=True, help="No table.")
def keyframes_cmd(input, keyframes, n, per_shot, folder, reference_map, config_path, detector, overwrite, quiet):
    """Suggest the frames of INPUT to colour next: where the colour carried from the keyframes
    (--keyframes) reaches least of the picture, or, with none yet, representative frames of each
    shot. Colour the PNGs in place and run: vidcolor INPUT --keyframes DIR/keys.csv"""
    setup_logging(quiet)
    from ..config import load_config
    from ..io.image import is_image_path
    from ..suggest import suggest_keyframes, write_suggestions

    if is_image_path(input):
        raise click.BadParameter("a photograph is one frame; colour it with --reference", param_hint="INPUT")
    cfg = call(load_config, config_path, {"shots.detector": detector})
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="frame", desc=f"{os.path.basename(input)}: shots", dynamic_ncols=True, leave=False)
    try:
        picks, plan = call(suggest_keyframes, input, keyframes=keyframes, n=n, per_shot=per_shot,
                           reference_map=reference_map, config=cfg, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    sheet = call(write_suggestions, input, picks, folder, plan, overwrite=overwrite)
    if not quiet:
        print_table([{"frame": p.frame, "timecode": format_timecode(p.seconds), "shot": p.shot, "gain": p.gain,
                      "file": p.name} for p in picks], ["frame", "timecode", "shot", "gain", "file"],
                    {"gain": "frames gained"})
        click.echo(f"vidcolor: {len(picks)} frame(s) to colour in {folder}; then: vidcolor {input} --keyframes {sheet}",
                   err=True)
