"""Rendering one segment of a job, and the journal of finished segments.

A segment is rendered by the single-machine pipeline itself
(``colorize_video(plan=..., frames=..., video_only=True)``): the plan's
shots and stills, no detection, decoding from the keyframe before the
segment's first frame. The file appears under its final name only when
complete (temporary name, then rename); its SHA-256 then goes to
``journal.jsonl`` (one JSON line per finished segment, appended and
fsynced). A segment counts as done when its file exists and hashes to the
journal's latest entry for it; anything else is rendered (again).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Callable

from ..errors import InputError, VidcolorError
from ..pipeline import colorize_video
from .plan import Manifest, input_checksum, same_input
from .schema import check_journal_entry

__all__ = ["render_segment", "read_journal", "segment_done", "sha256_file", "SegmentError", "FAULT_ENV", "STALL_ENV"]

log = logging.getLogger("vidcolor")

JOURNAL = "journal.jsonl"
FAULT_ENV = "VIDCOLOR_FARM_FAULT"  # tests only: "K[:N],..." makes segment K fail its first N attempts (default 1)
STALL_ENV = "VIDCOLOR_FARM_STALL"  # tests only: "S": each segment's first attempt waits S seconds before rendering


class SegmentError(VidcolorError, RuntimeError):
    """A segment failed on every attempt; the job stopped."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_journal(job: str | os.PathLike, segments: int | None = None) -> dict[int, dict]:
    """The latest journal entry of each segment. A torn last line (a crash mid-write) is ignored; any
    other line that is not a valid entry is ignored with a warning naming the line and the field (the
    journal is untrusted: its segment is then rendered again)."""
    entries: dict[int, dict] = {}
    path = Path(job) / JOURNAL
    try:
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")
    except FileNotFoundError:
        return entries
    except OSError as e:
        raise InputError(f"job journal cannot be read ({e.strerror})", path) from None
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            e = json.loads(raw.decode("utf-8"))
        except ValueError:
            if n < len(lines):  # not the torn tail
                log.warning("%s: line %d is not JSON; ignored", path, n)
            continue
        bad = check_journal_entry(e, segments)
        if bad:
            log.warning("%s: line %d: %s; ignored", path, n, bad)
            continue
        entries[e["segment"]] = e
    return entries


def _append_journal(job: Path, entry: dict) -> None:
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    fd = os.open(job / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of one line: appends from several processes do not interleave
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_done(manifest: Manifest, k: int, journal: dict[int, dict]) -> bool | None:
    """True: rendered and intact; False: absent; None: a file that does not match the journal (corrupt)."""
    path = manifest.segment_path(k)
    entry = journal.get(k)
    if not path.exists():
        return False
    if entry is None or entry.get("file") != path.name:
        return None
    return sha256_file(path) == entry.get("sha256") or None


def _fault(k: int, attempt: int) -> None:
    stall = os.environ.get(STALL_ENV)
    if stall and attempt == 0:
        time.sleep(float(stall))
    spec = os.environ.get(FAULT_ENV, "")
    for item in filter(None, (s.strip() for s in spec.split(","))):
        seg, _, n = item.partition(":")
        if int(seg) == k and attempt < (int(n) if n else 1):
            raise RuntimeError(f"injected fault ({FAULT_ENV}={spec}) on attempt {attempt + 1}")


def render_segment(manifest: Manifest | str | os.PathLike, k: int, *, attempt: int = 0, threads: int | None = None,
                   progress: Callable[[int], None] | None = None) -> dict:
    """Render segment ``k`` of a job to ``segments/KKKKK.EXT``; returns its journal entry.

    ``threads``: PyTorch threads for this worker (None: the config's). The
    input must still be the one the job was planned on.
    """
    if not isinstance(manifest, Manifest):
        manifest = Manifest.load(manifest)
    if not 0 <= k < len(manifest.segments):
        raise InputError(f"the job has segments 0..{len(manifest.segments) - 1}, not {k}", manifest.path)
    seg = manifest.segments[k]
    if not same_input(manifest.checksum, input_checksum(manifest.input)):
        raise InputError("changed since the job was planned; start the job over (--overwrite)", manifest.input)
    _fault(k, attempt)
    cfg = manifest.to_config()
    if threads:
        import dataclasses

        cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, threads=threads))
    out = manifest.segment_path(k)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    report = colorize_video(manifest.input, out, reference=manifest.reference, reference_map=manifest.reference_map,
                            config=cfg, overwrite=True, progress=progress, plan=manifest.segment_shots(k),
                            frames=seg.frame_range, video_only=True)
    if report.frames != seg.frames:
        out.unlink(missing_ok=True)
        raise InputError(f"segment {k}: {report.frames} frames decoded where the plan has {seg.frames} "
                         f"(frames {seg.first_frame}..{seg.first_frame + seg.frames - 1})", manifest.input)
    entry = {"segment": k, "file": out.name, "sha256": sha256_file(out), "frames": report.frames,
             "seconds": round(time.monotonic() - t0, 3), "attempt": attempt, "host": socket.gethostname(),
             "pid": os.getpid(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _append_journal(manifest.dir, entry)
    return entry
