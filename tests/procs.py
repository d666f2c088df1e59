"""Running ``vidcolor`` as a separate process, as a user at a terminal would:
for signals, start-up and processes left behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ROOT", "spawn", "wait_for", "leftovers", "maps"]

ROOT = Path(__file__).resolve().parents[1]


def _as_from_a_terminal() -> None:
    # A test run started in the background (`pytest ... &`, nohup) hands its children SIGINT ignored, and
    # vidcolor rightly keeps an ignored SIGINT (so Ctrl-C at the terminal spares background jobs): give the
    # run the default disposition a command typed at a terminal has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(*args) -> subprocess.Popen:
    """``python -m vidcolor ARGS`` of this tree, stdout and stderr piped, no VIDCOLOR_DEBUG."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VIDCOLOR_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "vidcolor", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal)


def wait_for(cond, proc: subprocess.Popen, timeout: float = 60.0, poll: float = 0.05) -> None:
    """Until ``cond()``; fails if ``proc`` ends first or ``timeout`` seconds pass."""
    t = time.monotonic()
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t < timeout, "timed out"
        time.sleep(poll)


def leftovers(folder: Path) -> list[Path]:
    """Temporary outputs anywhere under ``folder``."""
    return [p for p in Path(folder).rglob("*") if "vidcolor-tmp" in p.name]


def maps(pid: int) -> str:
    """The files process ``pid`` has mapped (Linux), '' once it is gone."""
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""
