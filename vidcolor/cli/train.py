"""``vidcolor train NAME``: the training loops of the models shipped with vidcolor."""
from __future__ import annotations

import click

from .common import HELP, FiniteFloat, call, check_threads, setup_logging

__all__ = ["train_group"]


@click.group("train", context_settings=HELP)
def train_group() -> None:
    """Train a model shipped with vidcolor (long: run it in the background)."""


def train_command(name: str, summary: str):
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
        return train_group.command(name, help=summary, context_settings=HELP)(fn)

    return decorate


def run_training(train, cfg, device: str, fresh: bool, quiet: bool) -> None:
    """Run a training loop with a progress line every 50 steps, then say where its weights went."""
    from ..pipeline import resolve_device

    dev = call(resolve_device, device)

    def progress(step: int, loss: float) -> None:
        if not quiet and (step % 50 == 0 or step == cfg.steps):
            click.echo(f"vidcolor: step {step}/{cfg.steps} loss {loss:.4f}", err=True)

    path = call(train, cfg, device=dev, resume=not fresh, progress=progress)
    click.echo(f"vidcolor: wrote {path}", err=True)


@train_command("exemplar", "Train the exemplar colorizer's fusion network; writes OUT/exemplar_fusion.safetensors.")
def train_exemplar_cmd(config_path, device, fresh, quiet):
    setup_logging(quiet)
    from ..train.exemplar import load_train_config, train_exemplar

    run_training(train_exemplar, call(load_train_config, config_path), device, fresh, quiet)


@train_command("matcher", "Train the exemplar colorizer's similarity sub-net; writes OUT/exemplar_matcher.safetensors.")
def train_matcher_cmd(config_path, device, fresh, quiet):
    setup_logging(quiet)
    from ..train.matcher import load_train_config, train_matcher

    run_training(train_matcher, call(load_train_config, config_path), device, fresh, quiet)


@train_command("auto", "Train the auto colorizer's decoder; writes OUT/auto.safetensors.")
@click.option("--threads", type=click.IntRange(0, 256), callback=check_threads,
              help="PyTorch threads [default: the config's].")
@click.option("--minutes", type=FiniteFloat(0), help="Stop after this much training time as well "
              "[default: the config's]; the learning-rate schedule follows whichever limit comes first.")
@click.option("--export", "export_only", metavar="best|last|step_N",
              help="Only write OUT/auto.safetensors from the best (lowest validation CE), last or step_N checkpoint.")
def train_auto_cmd(config_path, device, fresh, quiet, threads, minutes, export_only):
    setup_logging(quiet)
    import dataclasses

    from ..train.auto import export_auto, load_train_config, train_auto

    cfg = call(load_train_config, config_path)
    if threads is not None:
        cfg = dataclasses.replace(cfg, threads=threads)
    if minutes is not None:
        cfg = dataclasses.replace(cfg, minutes=minutes)
    if export_only:
        path = call(export_auto, cfg, which=export_only)
        click.echo(f"vidcolor: wrote {path}", err=True)
        return
    run_training(train_auto, cfg, device, fresh, quiet)
