"""Output files: their default names, the checks before a run, and the
atomic write (a temporary file beside the target, renamed when complete).

    dest = atomic_output("film_color.mp4", overwrite=False, input="film.mp4")  # checked now
    with dest as tmp:           # write tmp; on success it becomes film_color.mp4,
        write(tmp)              # on any failure (Ctrl-C included) it is removed

A temporary name holds the host and the process id that writes it
(``.NAME.vidcolor-tmp-HOST-PID.EXT``). A run killed outright (SIGKILL, power
loss) cannot remove its own; the next run to the same output removes those
whose process is gone (same host only: a pid means nothing on another
machine, and a live process's file is left alone).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import socket
from pathlib import Path

from .errors import InputError, OutputError

__all__ = ["default_output", "part_output", "preview_output", "compare_output", "check_input", "atomic_output",
           "AtomicOutput", "temporary_name", "work_folder", "sweep_stale", "remove_partial"]

log = logging.getLogger("vidcolor")

TMP_TAG = "vidcolor-tmp"  # in every temporary output's name
WORK_TAG = "vidcolor-preview"  # a preview's folder of excerpts


def _named(path: str | os.PathLike, tag: str) -> Path:
    p = Path(path)
    return p.with_name(f"{p.stem}_{tag}{p.suffix}")


def default_output(input: str | os.PathLike) -> Path:
    """``INPUT_color.EXT`` beside the input."""
    return _named(input, "color")


def preview_output(input: str | os.PathLike) -> Path:
    """``INPUT_preview.EXT`` beside the input."""
    return _named(input, "preview")


def part_output(input: str | os.PathLike) -> Path:
    """``INPUT_part.EXT``: a part (--start/--duration) never takes the full run's default name."""
    return _named(input, "part")


def compare_output(output: str | os.PathLike) -> Path:
    """``NAME_compare.EXT`` for a default output ``NAME.EXT`` of a --compare run."""
    return _named(output, "compare")


def check_input(input: str | os.PathLike) -> None:
    """An input that is missing or a folder: :class:`InputError` naming it."""
    input = Path(input)
    if not input.exists():
        raise InputError("file not found", input)
    if input.is_dir():
        raise InputError("is a folder; give a video or image file", input)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def _parent(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def temporary_name(target: str | os.PathLike, pid: int | None = None, host: str | None = None) -> Path:
    """``.NAME.vidcolor-tmp-HOST-PID.EXT`` beside ``target`` (the extension kept: it picks the container)."""
    out = Path(target)
    return _parent(out) / f".{out.stem}.{TMP_TAG}-{host or _host()}-{pid or os.getpid()}{out.suffix}"


def work_folder(target: str | os.PathLike) -> Path:
    """``.NAME.vidcolor-preview-HOST-PID`` beside ``target``: a preview's excerpts while it runs."""
    out = Path(target)
    return _parent(out) / f".{out.stem}.{WORK_TAG}-{_host()}-{os.getpid()}"


def _pid_gone(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, another user's
        return False
    return False


def _owner(middle: str) -> tuple[str | None, int] | None:
    """(host, pid) from the HOST-PID (or, as older versions wrote, PID) part of a temporary name."""
    host, _, pid = middle.rpartition("-")
    if not pid.isdigit():
        return None
    return (host or None), int(pid)


def sweep_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary outputs (and preview folders) of ``target`` left by
    processes of this host that are gone. Returns what was removed."""
    out = Path(target)
    parent = _parent(out)
    here = _host()
    removed: list[Path] = []
    patterns = ((f".{out.stem}.{TMP_TAG}-", out.suffix, False), (f".{out.stem}.{WORK_TAG}-", "", True))
    try:
        names = [p.name for p in parent.iterdir()]
    except OSError:
        return removed
    for name in names:
        for head, tail, folder in patterns:
            if not name.startswith(head) or not name.endswith(tail):
                continue
            owner = _owner(name[len(head):len(name) - len(tail)] if tail else name[len(head):])
            if owner is None:
                continue
            host, pid = owner
            if (host is not None and host != here) or not _pid_gone(pid):
                continue
            path = parent / name
            try:
                if folder and path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif not folder and not path.is_dir():
                    path.unlink()
                else:
                    continue
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("%s: could not remove a dead run's partial output (%s)", path, e.strerror)
                continue
            log.info("removed %s, left by a run that was killed (process %d)", path, pid)
            removed.append(path)
    return removed


def remove_partial(tmp: str | os.PathLike) -> None:
    """Remove a partial output; gone already is fine, a failure only a warning."""
    try:
        Path(tmp).unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("%s: could not remove the partial output (%s)", tmp, e.strerror)


class AtomicOutput:
    """An output written under :func:`temporary_name` and renamed into place
    when complete (see the module docstring). Built by :func:`atomic_output`."""

    def __init__(self, target: Path, tmp: Path):
        self.target = target
        self.tmp = tmp

    def commit(self) -> Path:
        """Move the finished temporary file into place; returns the target."""
        try:
            os.replace(self.tmp, self.target)
        except OSError as e:
            remove_partial(self.tmp)
            if not _parent(self.target).is_dir():
                raise OutputError("the output folder was removed during the run; nothing was written",
                                  self.target) from None
            raise OutputError(f"cannot move the finished output into place ({e.strerror})", self.target) from None
        return self.target

    def discard(self) -> None:
        """Remove the temporary file (the target, if any, is untouched)."""
        remove_partial(self.tmp)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def atomic_output(target: str | os.PathLike, *, overwrite: bool = False,
                  input: str | os.PathLike | None = None) -> AtomicOutput:
    """Check that ``target`` may be written (not a folder, not ``input``, not
    an existing file unless ``overwrite``, in a writable folder), remove the
    stale temporaries of dead runs to it, and name this run's temporary file.

    The checks run now, before any work; ``with`` the result to write."""
    out = Path(target)
    if out.is_dir():
        raise OutputError("is a folder; give a file name for the output", out)
    if out.exists():
        if input is not None and Path(input).exists() and out.resolve() == Path(input).resolve():
            raise OutputError("is the input file; choose another output name", out)
        if not overwrite:
            raise OutputError("already exists (pass --overwrite to replace it)", out)
    parent = _parent(out)
    if not parent.is_dir():
        raise OutputError("the output folder does not exist", parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError("the output folder is not writable", parent)
    sweep_stale(out)
    return AtomicOutput(out, temporary_name(out))
