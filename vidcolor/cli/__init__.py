"""Command line: ``vidcolor INPUT [--reference IMAGE|DIR | --reference-map MAP.csv] [-o OUTPUT]``.

The only package that prints or exits. Library errors become one line on
stderr and a non-zero exit; ``VIDCOLOR_DEBUG=1`` shows the traceback. Ctrl-C
at any moment, start-up included, is one line and exit 130.

One module a family of commands: :mod:`.colorize` (``vidcolor INPUT``),
:mod:`.shots`, :mod:`.keyframes`, :mod:`.farm` (plan, render-segment, assemble, batch),
:mod:`.train`, :mod:`.weights`; :mod:`.common` holds what they share. Only the standard
library and click are imported here: torch and the pipeline load inside
the command that needs them, so ``vidcolor --help`` is quick.
"""
from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_starting(signum, frame) -> None:
    os.write(2, b"vidcolor: interrupted; no output was written\n")
    os._exit(130)


def _as_program() -> bool:
    """Whether this process is the ``vidcolor`` command (not a program that imports the CLI)."""
    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return os.path.basename(argv0) == "vidcolor" or argv0.endswith(os.path.join("vidcolor", "__main__.py"))


# Ctrl-C while the command line itself loads: one line too (restored below, once main() can catch it)
_GUARD = _as_program() and signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _GUARD:
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import click  # noqa: E402

from .. import __version__  # noqa: E402
from .colorize import colorize_cmd  # noqa: E402
from .common import HELP, debug, exit_interrupted, trap_sigterm  # noqa: E402
from .farm import assemble_cmd, batch_cmd, plan_cmd, render_segment_cmd  # noqa: E402
from .keyframes import keyframes_cmd  # noqa: E402
from .shots import shots_cmd  # noqa: E402
from .train import train_group  # noqa: E402
from .weights import weights_cmd  # noqa: E402

__all__ = ["main"]


class _Main(click.Group):
    """``vidcolor INPUT ...`` runs ``colorize``; ``vidcolor NAME ...`` a subcommand.
    A Ctrl-C anywhere (torch's import in a command included) is one line and exit 130."""

    default_command = "colorize"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        elif not args:
            args = ["--help"]
        return super().parse_args(ctx, args)

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as e:
            if debug():
                raise
            exit_interrupted(e)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:  # click would say "Aborted!" and exit 1
            if debug():
                raise
            exit_interrupted(e)


@click.group(cls=_Main, context_settings=HELP)
@click.version_option(__version__, prog_name="vidcolor")
def main() -> None:
    """Colourise black-and-white film.

    \b
      vidcolor film.mp4 --reference still.jpg            one colour still for the film
      vidcolor film.mp4 --reference stills/              a folder of stills
      vidcolor film.mp4 --reference-map map.csv          a still per shot (start,reference)
      vidcolor photo.jpg --reference r.jpg -o out.png    a still photograph
    """
    trap_sigterm()


for _command in (colorize_cmd, shots_cmd, keyframes_cmd, train_group, weights_cmd, render_segment_cmd, plan_cmd,
                 assemble_cmd, batch_cmd):
    main.add_command(_command)

if _GUARD:
    signal.signal(signal.SIGINT, signal.default_int_handler)
