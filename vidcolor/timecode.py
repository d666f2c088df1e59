"""Times as people write them: ``HH:MM:SS[.fff]`` timecodes, seconds, frame indices.

One place parses and formats them for the whole tree: the reference maps'
start column (a frame index or a timecode), ``--start``/``--duration``
(seconds or a timecode), the Matroska ``DURATION`` tag, and every time a
message, a table or a report shows (``HH:MM:SS.mmm``, to the millisecond).
"""
from __future__ import annotations

import math
import re

from .errors import InputError

__all__ = ["format_timecode", "parse_timecode", "parse_start", "parse_seconds"]

_FRAME = re.compile(r"^\d+$")
_TIMECODE = re.compile(r"^(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)$")
_LOOSE = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$")  # minutes and seconds not checked (as FFmpeg writes tags)
_MAX_SECONDS = 1e9  # a start later than this (31 years) is a typo, not a film


def format_timecode(seconds: float) -> str:
    """``65.5`` -> ``'00:01:05.500'``: hours, minutes, seconds and milliseconds
    (rounded to the nearest); a negative time shows as ``00:00:00.000``."""
    ms = int(round(max(seconds, 0.0) * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def parse_timecode(text: str, strict: bool = True) -> float | None:
    """``'00:01:05.5'`` -> ``65.5`` seconds; None when ``text`` is not
    ``H+:MM:SS[.f+]``. ``strict``: minutes and seconds must be under 60 (a
    user's timecode); without it any two digits pass (a container's tag)."""
    m = (_TIMECODE if strict else _LOOSE).match(text.strip())
    if m is None:
        return None
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def parse_start(text: str) -> tuple[int | None, float | None]:
    """A reference map's start: ``'120'`` -> ``(120, None)`` (a frame index);
    ``'00:01:05.5'`` -> ``(None, 65.5)`` (seconds). Anything else, or a time
    past 10^9 s, raises InputError (a ValueError) saying which."""
    t = text.strip()
    m = _TIMECODE.match(t)
    if _FRAME.match(t) or m:
        try:
            if m is None:
                return int(t), None
            seconds = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
            if seconds < _MAX_SECONDS:
                return None, seconds
        except (ValueError, OverflowError):  # thousands of digits
            pass
        raise InputError(f"start {t[:40]!r} is out of range")
    raise InputError(f"start {text!r} is neither a frame index nor a timecode HH:MM:SS[.fff]")


def parse_seconds(text: str | float | int, what: str = "time") -> float:
    """``'50'``, ``'12.5'`` (seconds) or ``'HH:MM:SS[.fff]'`` -> seconds, finite
    and not negative; else ValueError naming ``what`` (``'--start'``)."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        t = str(text).strip()
        try:
            value = float(t)
        except ValueError:
            try:
                frame, value = parse_start(t)
            except ValueError:
                raise ValueError(f"{what} {text!r} is neither seconds (12.5) nor a timecode HH:MM:SS[.fff]") from None
            if value is None:  # all digits: parse_start's frame index, here a count of seconds
                value = float(frame)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} {text!r} must be a finite number of seconds, not negative")
    return value
