"""A job folder's manifest and journal, checked as untrusted input.

On a farm they sit on shared storage that many machines read, so every
field is checked for type and range before anything is read or written by
it: one error line names the file and the field. Segment files are plain
names in ``segments/`` of the job folder (the container suffix is one of a
fixed few); nothing a manifest says makes a worker write outside its job
folder (encoder options that write files of their own, such as x264's
``stats``, are refused too).
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from ..errors import InputError

__all__ = ["check_manifest", "check_journal_entry", "SEGMENT_SUFFIXES"]

SEGMENT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX = 1 << 62  # frames, pts, sizes: anything larger is not a film
# encoder options that name a file the encoder writes (or reads) on its own
_FILE_OPTIONS = ("stats", "passlogfile", "dump_yuv", "dump-yuv", "csv", "analysis-save", "analysis-load",
                 "stats-file", "recon", "dump_mvs", "qpfile", "zones-file", "vbv-log")

_TOP = {"input", "output", "checksum", "config", "reference", "reference_map", "video", "shots", "segments",
        "suffix", "version", "keyframes"}
_OPTIONAL = {"version", "keyframes"}  # a manifest written before keyframes has none
_SHOT = {"index": int, "first_frame": int, "first_pts": int, "start_time": float, "frames": int,
         "reference": (str, None), "entry": dict}
_SEGMENT = {"index": int, "first_frame": int, "frames": int, "first_pts": int, "start_time": float,
            "seconds": float, "shots": list, "references": list}


class _Bad(Exception):
    def __init__(self, field: str, what: str):
        super().__init__(f"{field}: {what}")


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "an integer", float: "a number"}.get(type(v), type(v).__name__)


def _typed(v: Any, want, field: str) -> Any:
    wants = want if isinstance(want, tuple) else (want,)
    for w in wants:
        if w is None and v is None:
            return v
        if w is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            if not math.isfinite(v):
                raise _Bad(field, f"must be a finite number, not {v}")
            return v
        if w is int and isinstance(v, int) and not isinstance(v, bool):
            if abs(v) > _MAX:
                raise _Bad(field, f"{v} is out of range")
            return v
        if w not in (None, float, int) and isinstance(v, w) and not isinstance(v, bool):
            return v
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "a list", None: "null"}
    return _fail(field, f"must be {' or '.join(names[w] for w in wants)}, not {_kind(v)}")


def _fail(field: str, what: str):
    raise _Bad(field, what)


def _record(v: Any, schema: dict, field: str) -> dict:
    _typed(v, dict, field)
    for k in schema:
        if k not in v:
            _fail(f"{field}.{k}", "is missing")
        _typed(v[k], schema[k], f"{field}.{k}")
    extra = sorted(set(v) - set(schema))
    if extra:
        _fail(f"{field}.{extra[0]}", "is not a field of this version")
    return v


def _at_least(v: int | float, low: int | float, field: str) -> None:
    if v < low:
        _fail(field, f"must be at least {low}, not {v}")


def _fraction(v: Any, field: str, none: bool = False) -> None:
    if v is None and none:
        return
    _typed(v, str, field)
    try:
        f = Fraction(v)
    except (ValueError, ZeroDivisionError):
        _fail(field, f"{v!r} is not a fraction such as '1/24000'")
    if f <= 0:
        _fail(field, f"must be positive, not {v}")


def _encode_options(cfg: Any) -> None:
    options = cfg.get("encode", {}).get("options") if isinstance(cfg, dict) and isinstance(cfg.get("encode"), dict) \
        else None
    if not isinstance(options, dict):
        return  # the config's own validation says what is wrong
    for key, value in options.items():
        names = [str(key).lower()]
        if str(key).lower().endswith("-params") and isinstance(value, str):
            names += [p.partition("=")[0].strip().lower() for p in value.split(":")]
        bad = next((n for n in names if n in _FILE_OPTIONS), None)
        if bad:
            _fail(f"config.encode.options.{key}", f"'{bad}' makes the encoder write a file of its own; "
                  "not allowed in a job")


def _check(d: Any) -> None:
    _typed(d, dict, "(top level)")
    for k in sorted(_TOP - _OPTIONAL):
        if k not in d:
            _fail(k, "is missing")
    extra = sorted(set(d) - _TOP)
    if extra:
        _fail(extra[0], "is not a field of this version")
    for k in ("input", "output"):
        if not _typed(d[k], str, k):
            _fail(k, "is empty")
    for k in ("reference", "reference_map", "keyframes"):
        _typed(d.get(k), (str, None), k)
    ck = _typed(d["checksum"], dict, "checksum")
    for k in ("size", "sampled_sha256"):
        if k not in ck:
            _fail(f"checksum.{k}", "is missing")
    _at_least(_typed(ck["size"], int, "checksum.size"), 0, "checksum.size")
    if not _SHA256.fullmatch(_typed(ck["sampled_sha256"], str, "checksum.sampled_sha256")):
        _fail("checksum.sampled_sha256", "is not 64 lower-case hex digits")
    _typed(d["config"], dict, "config")
    _encode_options(d["config"])
    if _typed(d["suffix"], str, "suffix") not in SEGMENT_SUFFIXES:
        _fail("suffix", f"{d['suffix']!r} is not one of {', '.join(SEGMENT_SUFFIXES)}")
    v = _typed(d["video"], dict, "video")
    for k in ("time_base", "frames", "width", "height"):
        if k not in v:
            _fail(f"video.{k}", "is missing")
    _fraction(v["time_base"], "video.time_base")
    _fraction(v.get("rate"), "video.rate", none=True)
    for k in ("frames", "width", "height"):
        _at_least(_typed(v[k], int, f"video.{k}"), 1, f"video.{k}")
    rotation = _typed(v.get("rotation", 0), (int, None), "video.rotation")
    if rotation is not None and not -360 <= rotation <= 360:
        _fail("video.rotation", f"must be degrees in -360..360, not {rotation}")
    trunc = _typed(v.get("truncated"), (dict, None), "video.truncated")
    if trunc is not None:
        _record(trunc, {"frames": int, "time": float, "expected": int, "reason": str}, "video.truncated")
    shots = _typed(d["shots"], list, "shots")
    segments = _typed(d["segments"], list, "segments")
    if not shots:
        _fail("shots", "is empty")
    if not segments:
        _fail("segments", "is empty")
    at = 0
    for i, s in enumerate(shots):
        f = f"shots[{i}]"
        _record(s, _SHOT, f)
        _at_least(s["frames"], 1, f"{f}.frames")
        if s["first_frame"] != at:
            _fail(f"{f}.first_frame", f"is {s['first_frame']}, but the shots before it end at frame {at}")
        for j, key in enumerate(_typed(s["entry"].get("keys", []), list, f"{f}.entry.keys")):
            where = f"{f}.entry.keys[{j}]"
            if not (isinstance(key, list) and len(key) == 2):
                _fail(where, "must be a [frame, still] pair")
            if not at <= _typed(key[0], int, where) < at + s["frames"]:
                _fail(where, f"frame {key[0]} is not in the shot (frames {at}..{at + s['frames'] - 1})")
            if not _typed(key[1], str, where):
                _fail(where, "names no still")
        at += s["frames"]
    indices = {s["index"] for s in shots}
    at = 0
    for i, s in enumerate(segments):
        f = f"segments[{i}]"
        _record(s, _SEGMENT, f)
        if s["index"] != i:
            _fail(f"{f}.index", f"is {s['index']}, not {i}")
        _at_least(s["frames"], 1, f"{f}.frames")
        _at_least(s["start_time"], 0, f"{f}.start_time")
        if s["first_frame"] != at:
            _fail(f"{f}.first_frame", f"is {s['first_frame']}, but the segments before it end at frame {at}")
        at += s["frames"]
        for j, n in enumerate(s["shots"]):
            if _typed(n, int, f"{f}.shots[{j}]") not in indices:
                _fail(f"{f}.shots[{j}]", f"shot {n} is not in the plan")
        for j, r in enumerate(s["references"]):
            _typed(r, (str, None), f"{f}.references[{j}]")
    if at != sum(s["frames"] for s in shots):
        _fail("segments", f"cover {at} frames, the shots {sum(s['frames'] for s in shots)}")


def check_manifest(d: Any, path) -> None:
    """Raise InputError naming ``path`` and the first field that is wrong."""
    try:
        _check(d)
    except _Bad as e:
        raise InputError(f"job manifest: {e}", path) from None


def check_journal_entry(e: Any, segments: int | None = None) -> str | None:
    """What is wrong with one journal line's entry (None: nothing)."""
    try:
        _typed(e, dict, "(line)")
        for k in ("segment", "file", "sha256"):
            if k not in e:
                _fail(k, "is missing")
        k = _typed(e["segment"], int, "segment")
        if k < 0 or (segments is not None and k >= segments):
            _fail("segment", f"{k} is not a segment of the job")
        name = _typed(e["file"], str, "file")
        if name not in [f"{k:05d}{x}" for x in SEGMENT_SUFFIXES]:
            _fail("file", f"{name!r} is not segment {k}'s file name")
        if not _SHA256.fullmatch(_typed(e["sha256"], str, "sha256")):
            _fail("sha256", "is not 64 lower-case hex digits")
    except _Bad as b:
        return str(b)
    return None
