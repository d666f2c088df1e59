"""What every command shares: exit codes, logging to stderr, the call into
the library that turns its errors into one line, option types, tables.

Imports only the standard library and click: ``vidcolor --help`` must not
pay for torch.
"""
from __future__ import annotations

import logging
import math
import os
import sys

import click

from ..timecode import format_timecode

log = logging.getLogger("vidcolor")

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C)
EXIT_TERMINATED = 143  # SIGTERM (128 + 15)
EXIT_TRUNCATED = 3  # the output was written, but the input ends early: it holds what could be decoded

HELP = {"help_option_names": ["-h", "--help"]}  # every command's context_settings


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds (and cleans up) as Ctrl-C does."""


def _on_sigterm(signum, frame) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one must not cut the clean-up short
    raise Terminated()


def trap_sigterm() -> None:
    """SIGTERM raises :class:`Terminated` in the main thread (unless someone else handles it)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def debug() -> bool:
    """``VIDCOLOR_DEBUG=1``: tracebacks instead of one-line errors."""
    return os.environ.get("VIDCOLOR_DEBUG", "") not in ("", "0")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"vidcolor: {level}{record.getMessage()}"


def setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def exit_interrupted(e: KeyboardInterrupt) -> None:
    """Ctrl-C or SIGTERM: one line, exit 130 (143 for SIGTERM)."""
    click.echo(f"vidcolor: interrupted; {str(e) or 'no output was written'}", err=True)
    sys.exit(EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED)


def call(fn, *args, **kwargs):
    """Call into the library; turn its errors into one line and an exit code."""
    from ..errors import VidcolorError

    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt as e:
        if debug():
            raise
        exit_interrupted(e)
    except VidcolorError as e:
        if debug():
            raise
        click.echo(f"vidcolor: error: {e}", err=True)
        sys.exit(EXIT_ERROR)
    except MemoryError:
        if debug():
            raise
        click.echo("vidcolor: error: out of memory (try a smaller --batch-size)", err=True)
        sys.exit(EXIT_ERROR)
    except Exception as e:  # a bug: still one line, the traceback on request
        if debug():
            raise
        click.echo(f"vidcolor: internal error: {type(e).__name__}: {e} (set VIDCOLOR_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_ERROR)


def fail(e: BaseException):
    """Raise ``e`` (for :func:`call`: a library error found by the CLI itself)."""
    raise e


class FiniteFloat(click.FloatRange):
    """A float option in a range that refuses NaN and infinities (click's
    FloatRange lets NaN through: every comparison with it is false)."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


def check_threads(ctx, param, value):
    """A ``--threads`` callback: at most 4 per CPU core, as ``runtime.threads``."""
    from ..config import max_threads

    if value is not None and value > max_threads():
        raise click.BadParameter(f"{value} is more than 4 threads per CPU core (at most {max_threads()} on this "
                                 f"machine's {os.cpu_count() or 1} cores).", ctx, param)
    return value


def write_json(path: str, data) -> None:
    import json

    from ..errors import OutputError

    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, default=str)
            fh.write("\n")
    except OSError as e:
        raise OutputError(f"cannot write the report ({e.strerror})", path) from None


def echo_table(table: list[list[str]]) -> None:
    """Rows of cells (the first the header), aligned in columns, on stdout."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def print_table(rows: list[dict], keys: list[str], head: dict[str, str]) -> None:
    def cell(row, k):
        v = row.get(k)
        if k == "reference":
            return os.path.basename(v) if v else "(auto)"
        return "" if v is None else str(v)

    echo_table([[head.get(k, k) for k in keys]] + [[cell(r, k) for k in keys] for r in rows])


def print_shots(rows: list[dict], keys: list[str]) -> None:
    """A plain aligned table on stdout."""
    def cell(row, k):
        v = row.get(k)
        if k == "start_time" and v is not None:
            return format_timecode(v)
        if k == "reference" and v:
            return os.path.basename(v)
        return "" if v is None else str(v)

    head = {"first_frame": "first frame", "start_time": "timecode", "frames": "length"}
    echo_table([[head.get(k, k) for k in keys]] + [[cell(r, k) for k in keys] for r in rows])


def warn_damage(input: str, report) -> None:
    """Damaged frames repaired: a warning. A truncated input: a warning saying where it ends, and exit 3."""
    from ..io.decode import damage_note

    if getattr(report, "damaged_frames", 0):
        click.echo(f"vidcolor: warning: {input}: {damage_note(report.damaged_frames, report.damaged)}", err=True)
    if getattr(report, "truncated", None):
        exit_truncated(input, report.truncated, report.frames)


def exit_truncated(input: str, truncated: dict, frames: int) -> None:
    """A truncated input: a warning saying where it ends and what the output holds, and exit 3."""
    from ..io.decode import Truncation

    click.echo(f"vidcolor: warning: {input}: {Truncation(**truncated).describe()}; the output holds the "
               f"{frames} frames before that", err=True)
    sys.exit(EXIT_TRUNCATED)
