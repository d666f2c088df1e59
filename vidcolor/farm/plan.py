"""A render-farm job: the film's shots, grouped into segments cut only at
shot boundaries, written as a JSON manifest in ``OUTPUT.vidcolor-job/``.

The plan is made once, by the same shot splitter and reference choice a
single-machine run uses (:func:`vidcolor.pipeline.plan_shots`), so every
segment renders exactly the frames, shots and stills that run would. A
segment never splits a shot: the colorizer (and temporal smoothing) start
afresh at every shot, so no state crosses a segment boundary.

The manifest records the input's identity and the full config; a restart
with the same input and config finds the job and goes on where it stopped,
a different input or config is refused (``overwrite`` starts over).

Input identity: the size, plus a SHA-256 over the first and last MiB and 16
blocks of 64 KiB spread evenly between them ("sampled-sha256"). It reads at
most 3 MiB however long the film, so every worker can check it cheaply, and
any re-encode, trim or remux changes it (headers, index and sizes move). A
full SHA-256 of a 50 GB master would cost minutes on network storage for
each worker. The modification time is recorded but not compared: copying a
film to the farm's storage changes it, not the content.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import stat
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config import Config
from ..errors import InputError, OutputError
from ..pipeline import PlannedShot, plan_shots
from ..weights import SLOTS, resolve
from .lock import LOCK, JobLock
from .schema import check_manifest

__all__ = ["Segment", "Manifest", "plan_job", "group_segments", "input_checksum", "job_dir", "segment_suffix",
           "MANIFEST", "JOB_SUFFIX"]

log = logging.getLogger("vidcolor")

MANIFEST = "manifest.json"
JOB_SUFFIX = ".vidcolor-job"
VERSION = 1
MAX_MANIFEST = 256 << 20  # bytes: a day-long film with a shot a second plans about 40 MiB
_HEAD = 1 << 20
_BLOCK = 64 << 10
_BLOCKS = 16
_VOLATILE = (("farm", "retries"),)  # config keys that may change between runs of one job


def job_dir(output: str | os.PathLike) -> Path:
    """``OUTPUT.vidcolor-job`` beside the output."""
    out = Path(output)
    return out.with_name(out.name + JOB_SUFFIX)


def segment_suffix(output: str | os.PathLike) -> str:
    """Segments are written in the output's own container where it keeps each
    frame's pts exact (MP4/MOV, Matroska); other containers get Matroska
    segments (timestamps to the millisecond)."""
    ext = Path(output).suffix.lower()
    return ext if ext in (".mp4", ".m4v", ".mov", ".mkv", ".webm") else ".mkv"


def input_checksum(path: str | os.PathLike) -> dict[str, Any]:
    """{size, mtime_ns, sampled_sha256}: see the module docstring."""
    p = Path(path)
    st = p.stat()
    if not stat.S_ISREG(st.st_mode):  # a device or a pipe named by a manifest would be read forever
        raise InputError("is not a regular file", p)
    h = hashlib.sha256()
    h.update(str(st.st_size).encode())
    with open(p, "rb") as fh:
        if st.st_size <= 2 * _HEAD + _BLOCKS * _BLOCK:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        else:
            offsets = [0] + [_HEAD + (st.st_size - 2 * _HEAD) * i // (_BLOCKS + 1) for i in range(1, _BLOCKS + 1)]
            offsets.append(st.st_size - _HEAD)
            for i, off in enumerate(offsets):
                fh.seek(off)
                h.update(fh.read(_HEAD if i in (0, len(offsets) - 1) else _BLOCK))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sampled_sha256": h.hexdigest()}


def same_input(a: dict, b: dict) -> bool:
    return a["size"] == b["size"] and a["sampled_sha256"] == b["sampled_sha256"]


@dataclass(frozen=True)
class Segment:
    """Frames ``first_frame .. first_frame + frames - 1``: whole shots ``shots``."""

    index: int
    first_frame: int
    frames: int
    first_pts: int
    start_time: float  # seconds from the film's first frame
    seconds: float
    shots: list[int]
    references: list[str | None]

    @property
    def frame_range(self) -> tuple[int, int]:
        return self.first_frame, self.first_frame + self.frames


def _shot_seconds(shots: Sequence[PlannedShot], rate: Fraction | None) -> list[float]:
    out = []
    for i, s in enumerate(shots):
        if i + 1 < len(shots):
            out.append(max(0.0, shots[i + 1].start_time - s.start_time))
        else:
            out.append(s.frames / float(rate) if rate else s.frames / 25.0)
    return out


def group_segments(shots: Sequence[PlannedShot], seconds: float, rate: Fraction | None = None) -> list[Segment]:
    """Consecutive shots grouped into segments of about ``seconds`` each.

    A segment takes the next shot while that brings its length nearer to
    ``seconds`` than stopping would; a shot longer than ``seconds`` is a
    segment of its own (a shot is never split).
    """
    lengths = _shot_seconds(shots, rate)
    groups: list[list[int]] = []
    current: list[int] = []
    dur = 0.0
    for i, d in enumerate(lengths):
        if current and abs(dur + d - seconds) > abs(dur - seconds):
            groups.append(current)
            current, dur = [], 0.0
        current.append(i)
        dur += d
    if current:
        groups.append(current)
    segments = []
    for k, g in enumerate(groups):
        first = shots[g[0]]
        segments.append(Segment(k, first.first_frame, sum(shots[i].frames for i in g), first.first_pts,
                                first.start_time, round(sum(lengths[i] for i in g), 6), [shots[i].index for i in g],
                                [shots[i].reference for i in g]))
    return segments


@dataclass
class Manifest:
    """Everything a worker needs to render a segment, and the assembler to join them."""

    input: str
    output: str
    checksum: dict
    config: dict
    reference: str | None
    reference_map: str | None
    video: dict  # time_base, rate, frames, width, height
    shots: list[PlannedShot]
    segments: list[Segment]
    suffix: str
    version: int = VERSION
    keyframes: str | None = None  # the keyframe sheet (its keyframes are in the shots' entries)
    path: Path | None = field(default=None, compare=False)  # where it was loaded from / saved to

    @property
    def dir(self) -> Path:
        assert self.path is not None
        return self.path.parent

    @property
    def output_path(self) -> Path:
        """Where the joined film goes: beside the job folder, under the name the manifest gives."""
        return self.dir.parent / Path(self.output).name

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    def segment_path(self, k: int) -> Path:
        """``segments/KKKKK.EXT`` in the job folder, never anywhere else (the suffix is checked on load)."""
        name = f"{int(k):05d}{self.suffix}"
        if "/" in name or "\\" in name or ".." in name or os.sep in name:
            raise InputError(f"job manifest: suffix {self.suffix!r} is not a file name extension", self.path)
        return self.dir / "segments" / name

    def segment_shots(self, k: int) -> list[PlannedShot]:
        a, b = self.segments[k].frame_range
        return [s for s in self.shots if a <= s.first_frame < b]

    def to_config(self) -> Config:
        return Config.from_dict(self.config, os.fspath(self.path) if self.path else None)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "path"}
        d["shots"] = [s.to_dict() for s in self.shots]
        d["segments"] = [dataclasses.asdict(s) for s in self.segments]
        return d

    def save(self, path: str | os.PathLike) -> None:
        """Atomically: a temporary file, fsynced, renamed."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Manifest":
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST
        try:
            if path.stat().st_size > MAX_MANIFEST:
                raise InputError(f"job manifest is over {MAX_MANIFEST >> 20} MiB: not a manifest vidcolor wrote", path)
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("job manifest not found", path) from None
        except (OSError, ValueError) as e:
            raise InputError(f"job manifest cannot be read ({e})", path) from None
        if isinstance(d, dict) and d.get("version") != VERSION:
            raise InputError(f"job manifest version {d.get('version')!r} is not {VERSION} (made by another "
                             "vidcolor?); start the job over with --overwrite", path)
        check_manifest(d, path)  # untrusted: shared storage
        if job_dir(d["output"]).name != path.parent.name:
            raise InputError(f"job manifest: output: {d['output']!r} is not the output of this job folder "
                             f"({path.parent.name})", path)
        d["config"] = Config.from_dict(d["config"], os.fspath(path)).to_dict()  # checked; renamed keys under today's names
        if (path.parent / "segments").is_symlink():
            raise InputError("job folder: segments/ is a symbolic link; a job writes only inside its folder", path)
        d["shots"] = [PlannedShot.from_dict(s) for s in d["shots"]]
        d["segments"] = [Segment(**s) for s in d["segments"]]
        m = cls(**d)
        m.path = path
        return m


def _identity_config(cfg: dict) -> dict:
    cfg = json.loads(json.dumps(cfg))
    for section, key in _VOLATILE:
        cfg.get(section, {}).pop(key, None)
    for name in SLOTS:  # the weights each value names: a manifest's exemplar.weights null is today's "rule"
        section, key = name.split(".")
        if isinstance(cfg.get(section), dict) and isinstance(cfg[section].get(key, ""), (str, type(None))):
            cfg[section][key] = resolve(name, cfg[section].get(key)).name
    return cfg


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} -> {b!r}"]


def _abs(path: str | os.PathLike | None) -> str | None:
    return None if path is None else os.fspath(Path(path).resolve())


def plan_job(input: str | os.PathLike, output: str | os.PathLike, *, reference: str | os.PathLike | None = None,
             reference_map: str | os.PathLike | None = None, config: Config | None = None, overwrite: bool = False,
             progress: Callable[[int], None] | None = None,
             keyframes: str | os.PathLike | None = None) -> tuple[Manifest, bool]:
    """The job for ``input`` -> ``output``: the one already in ``OUTPUT.vidcolor-job``
    if it is the same job (returned with True), else a new plan (False).

    A job folder holding another job (another input, config or references)
    is an error unless ``overwrite``, which discards it.
    """
    input, output = Path(input).resolve(), Path(output).resolve()
    if not input.is_file():
        raise InputError("file not found" if not input.exists() else "is not a file", input)
    with JobLock(job_dir(output)):  # a no-op when this process holds it already (run_job)
        return _plan_job(input, output, reference, reference_map, config or Config(), overwrite, progress, keyframes)


def _clear(folder: Path) -> None:
    """Everything in the job folder but its lock (held by this process)."""
    for p in folder.iterdir():
        if p.name == LOCK:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _plan_job(input: Path, output: Path, reference, reference_map, cfg: Config, overwrite: bool,
              progress, keyframes=None) -> tuple[Manifest, bool]:
    folder = job_dir(output)
    checksum = input_checksum(input)
    want = {"input": os.fspath(input), "reference": _abs(reference), "reference_map": _abs(reference_map),
            "keyframes": _abs(keyframes), "config": _identity_config(cfg.to_dict())}
    if (folder / MANIFEST).exists():
        try:
            old = Manifest.load(folder / MANIFEST)
            have = {"input": old.input, "reference": old.reference, "reference_map": old.reference_map,
                    "keyframes": old.keyframes, "config": _identity_config(old.config)}
            diffs = [d.removeprefix("config.") for d in _differences(have, want)]
            if not same_input(old.checksum, checksum):
                diffs.insert(0, f"the input's content changed (size {old.checksum['size']} -> {checksum['size']})")
        except InputError as e:
            old, diffs = None, [e.message]
        if old is not None and not diffs:
            old.config = cfg.to_dict()  # volatile keys (retries) follow this run
            return old, True
        if not overwrite:
            shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
            raise OutputError(f"holds another job ({shown}); pass --overwrite to discard it and start over", folder)
        log.info("%s: discarding the previous job (--overwrite)", folder)
    if folder.exists() and overwrite:
        _clear(folder)
    elif folder.exists() and any(p.name != LOCK for p in folder.iterdir()) and not (folder / MANIFEST).exists():
        raise OutputError("exists but holds no job manifest; remove it or pass --overwrite", folder)
    readers: list = []
    shots, info = plan_shots(input, reference=reference, reference_map=reference_map, keyframes=keyframes,
                             config=cfg, progress=progress,
                             on_open=readers.append)
    truncated = readers[0].truncated if readers else None
    # stills by absolute path: a worker renders in any working folder
    shots = [dataclasses.replace(s, reference=_abs(s.reference)) for s in shots]
    segments = group_segments(shots, cfg.farm.segment_seconds, info.rate)
    video = {"time_base": str(info.time_base), "rate": str(info.rate) if info.rate else None,
             "frames": sum(s.frames for s in shots), "width": info.width, "height": info.height,
             "rotation": info.rotation,
             # the input ends early (vidcolor.io.decode.Truncation): the job holds the frames before that
             "truncated": dataclasses.asdict(truncated) if truncated is not None else None}
    manifest = Manifest(os.fspath(input), os.fspath(output), checksum, cfg.to_dict(), want["reference"],
                        want["reference_map"], video, shots, segments, segment_suffix(output),
                        keyframes=want["keyframes"])
    (folder / "segments").mkdir(parents=True, exist_ok=True)
    manifest.save(folder / MANIFEST)
    log.info("%s: %d frames, %d shot(s), %d segment(s) of about %g s", input.name, manifest.frames, len(shots),
             len(segments), cfg.farm.segment_seconds)
    return manifest, False
