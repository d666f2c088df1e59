"""Running a job: plan (or find the job already planned), render the segments
not yet done on an executor, retry failures, join.

Executors: ``jobs`` local processes (spawned, each with its share of the
CPU threads), or Ray tasks (``ray``: a cluster address, ``auto`` for the
cluster this machine belongs to, or ``local`` to start one here), one GPU
per task when the model runs on CUDA. Workers read the input and write the
segments where the manifest says: on a cluster, the job folder and the
input must be on storage every node sees under the same path.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..config import Config
from ..errors import ConfigError, InputError, OutputError, VidcolorError
from ..io.decode import Truncation
from ..io.image import IMAGE_EXTENSIONS
from ..outputs import check_input, default_output
from .assemble import assemble
from .lock import JobLock
from .plan import Manifest, job_dir, plan_job
from .segment import FAULT_ENV, STALL_ENV, SegmentError, read_journal, render_segment, segment_done

__all__ = ["FarmReport", "run_job", "batch", "list_inputs", "render_pending"]

log = logging.getLogger("vidcolor")

Progress = Callable[[int], None]
RAY_HINT = "Ray is not installed; pip install 'vidcolor[ray]'"


@dataclass
class FarmReport:
    input: str
    output: str
    frames: int = 0
    segments: int = 0
    rendered: list[int] = field(default_factory=list)  # segments rendered by this run
    skipped: list[int] = field(default_factory=list)  # found done, from an earlier run
    corrupt: list[int] = field(default_factory=list)  # found with a wrong checksum, rendered again
    lost: list[int] = field(default_factory=list)  # their worker or node was lost mid-render: rendered again
    retries: int = 0
    resumed: bool = False
    seconds: float = 0.0
    seconds_plan: float = 0.0
    seconds_assemble: float = 0.0
    truncated: dict | None = None  # the input ends early: where (vidcolor.io.decode.Truncation)

    def to_dict(self) -> dict:
        import dataclasses

        return dataclasses.asdict(self)


# -- executors --------------------------------------------------------------------------------

_RENDERING = False  # in a worker: a segment is being rendered
_STOPPED = False  # in a worker: SIGTERM came


def _render_task(manifest_path: str, k: int, attempt: int, threads: int | None) -> dict:
    """What a worker process (or Ray task) runs: module-level, so it pickles."""
    global _RENDERING
    _RENDERING = True
    try:
        return render_segment(manifest_path, k, attempt=attempt, threads=threads)
    finally:
        _RENDERING = False
        if _STOPPED:  # the segment has cleaned up after itself: this worker is done
            os._exit(128 + signal.SIGTERM)


def _worker_init(parent: int | None = None) -> None:
    """A local worker leaves Ctrl-C to the parent, which stops it with SIGTERM: a segment being
    rendered then unwinds (its partial file removed), an idle worker just exits. It dies with its
    parent (``parent``, the driver's pid), however the driver dies: see :func:`_die_with`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_stop)
    if parent is not None:
        _die_with(parent)


PR_SET_PDEATHSIG = 1
ORPHAN_GRACE = 5.0  # seconds an orphaned worker has to unwind (remove its partial file) before it exits hard


def _die_with(parent: int) -> None:
    """SIGTERM to this process when ``parent`` dies, even by SIGKILL: the kernel's parent-death
    signal on Linux, and on any system a watchdog thread on the parent's pid, which also exits
    hard if the SIGTERM path has not ended the process within ORPHAN_GRACE seconds."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, args=(parent,), name="vidcolor-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:  # re-parented (to init or a subreaper) once the parent is gone
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_GRACE)
    os._exit(128 + signal.SIGKILL)


def _worker_stop(signum, frame) -> None:
    global _STOPPED
    _STOPPED = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _RENDERING:
        raise KeyboardInterrupt
    os._exit(128 + signum)


class _Inline:
    """Segments one after another in this process (``--jobs 1``)."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self._done: list[tuple[int, int, dict | BaseException]] = []

    def submit(self, k: int, attempt: int) -> None:
        try:
            self._done.append((k, attempt, render_segment(self.manifest, k, attempt=attempt)))
        except Exception as e:  # noqa: BLE001 - handed to the retry loop
            self._done.append((k, attempt, e))

    def next_done(self):
        return self._done.pop(0)

    def busy(self) -> int:
        return len(self._done)

    def close(self, cancel: bool = False) -> None:
        pass


class _Local:
    """``jobs`` spawned processes; a crashed worker (BrokenProcessPool) fails only its segments."""

    def __init__(self, manifest: Manifest, jobs: int):
        self.path = os.fspath(manifest.path)
        self.jobs = jobs
        cfg_threads = manifest.to_config().runtime.threads
        self.threads = cfg_threads or max(1, (os.cpu_count() or 1) // jobs)
        self._pool = self._new_pool()
        self._running: dict[Future, tuple[int, int]] = {}
        self._ready: list[tuple[int, int, dict | BaseException]] = []

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(os.getpid(),))

    def submit(self, k: int, attempt: int) -> None:
        try:
            f = self._pool.submit(_render_task, self.path, k, attempt, self.threads)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            f = self._pool.submit(_render_task, self.path, k, attempt, self.threads)
        self._running[f] = (k, attempt)

    def next_done(self):
        while not self._ready:
            done, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
            for f in done:
                k, attempt = self._running.pop(f)
                try:
                    self._ready.append((k, attempt, f.result()))
                except BaseException as e:  # noqa: BLE001
                    if isinstance(e, BrokenProcessPool):
                        e = RuntimeError("the worker process died (killed, or out of memory?)")
                    self._ready.append((k, attempt, e))
        return self._ready.pop(0)

    def busy(self) -> int:
        return len(self._running) + len(self._ready)

    def close(self, cancel: bool = False) -> None:
        # on a failure, segments already running finish (and are journaled): nothing rendered is lost
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def stop(self) -> None:
        """Interrupted: the running segments stop now (finished ones stay journaled)."""
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        for p in procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + 5
        for p in procs:
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Ray:
    """Ray tasks; ``num_gpus=1`` each when the model runs on CUDA."""

    def __init__(self, manifest: Manifest, address: str):
        try:
            import ray
        except ImportError:
            raise ConfigError(RAY_HINT) from None
        self.ray = ray
        self.path = os.fspath(manifest.path)
        if not ray.is_initialized():
            ray.init(address=None if address == "local" else address, log_to_driver=False)
        device = manifest.to_config().runtime.device
        gpus = 1 if device.startswith("cuda") or (device == "auto" and ray.cluster_resources().get("GPU", 0) > 0) else 0
        options = {"num_cpus": 1, "num_gpus": gpus, "max_retries": 0}  # retries are ours: they count attempts
        tests = {k: os.environ[k] for k in (FAULT_ENV, STALL_ENV) if os.environ.get(k)}
        if tests:
            options["runtime_env"] = {"env_vars": tests}
        self.task = ray.remote(_render_task).options(**options)
        self._running: dict = {}

    def submit(self, k: int, attempt: int) -> None:
        self._running[self.task.remote(self.path, k, attempt, None)] = (k, attempt)

    def next_done(self):
        [ref], _ = self.ray.wait(list(self._running), num_returns=1)
        k, attempt = self._running.pop(ref)
        try:
            return k, attempt, self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as e:  # the segment's own error, raised in the task
            cause = getattr(e, "cause", None)
            return k, attempt, cause if isinstance(cause, BaseException) else e
        except Exception as e:  # noqa: BLE001 - Ray lost the task: its worker or node died
            return k, attempt, Lost(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")

    def busy(self) -> int:
        return len(self._running)

    def close(self, cancel: bool = False) -> None:
        if not cancel:
            while self._running:
                self.next_done()
            return
        for ref in list(self._running):
            self.ray.cancel(ref)  # queued ones never start; running ones finish and are journaled
        self._running.clear()


class Lost(RuntimeError):
    """A segment's task was lost with its worker or node (not the segment's fault): rendered again,
    up to MAX_LOST times, without using up its retries."""


MAX_LOST = 3


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, VidcolorError) else f"{type(e).__name__}: {e}"


def render_pending(manifest: Manifest, pending: Sequence[int], *, jobs: int = 1, ray: str | None = None,
                   retries: int | None = None, progress: Progress | None = None,
                   lost: list[int] | None = None) -> tuple[list[int], int]:
    """Render the segments ``pending``, each tried up to ``1 + retries`` times (a task lost with its
    Ray worker or node is rendered again without counting: up to MAX_LOST times, each appended to
    ``lost``). Returns (rendered, retries used); raises SegmentError when one never succeeds."""
    retries = manifest.to_config().farm.retries if retries is None else retries
    if ray is not None:
        ex = _Ray(manifest, ray)
    elif jobs > 1 and len(pending) > 1:
        ex = _Local(manifest, jobs)
    else:
        ex = _Inline(manifest)
    width = 1 if isinstance(ex, _Inline) else max(1, jobs if ray is None else len(pending))
    queue = list(pending)
    rendered: list[int] = []
    used = 0
    failed: dict[int, int] = {}
    losses: dict[int, int] = {}
    failure: SegmentError | None = None
    try:
        while (queue or ex.busy()) and failure is None:
            while queue and ex.busy() < width:
                ex.submit(queue.pop(0), 0)
            k, attempt, result = ex.next_done()
            if isinstance(result, BaseException):
                seg = manifest.segments[k]
                if isinstance(result, KeyboardInterrupt):
                    raise result
                if isinstance(result, Lost) and losses.get(k, 0) < MAX_LOST:
                    losses[k] = losses.get(k, 0) + 1
                    if lost is not None:
                        lost.append(k)
                    log.warning("segment %d (frames %d..%d) was lost with its worker or node (%s); rendering it "
                                "again", k, seg.first_frame, seg.first_frame + seg.frames - 1, result)
                    ex.submit(k, attempt + 1)
                    continue
                failed[k] = failed.get(k, 0) + 1
                if failed[k] <= retries:
                    used += 1
                    log.warning("segment %d (frames %d..%d) failed on attempt %d (%s); trying again", k,
                                seg.first_frame, seg.first_frame + seg.frames - 1, attempt + 1, _describe(result))
                    ex.submit(k, attempt + 1)
                    continue
                failure = SegmentError(f"segment {k} (frames {seg.first_frame}..{seg.first_frame + seg.frames - 1}, "
                                       f"{seg.start_time:.2f} s) failed {attempt + 1} time(s); last error: "
                                       f"{_describe(result)}. Segments already rendered are kept: run the same "
                                       f"command again to resume", manifest.dir)
                failure.__cause__ = result
                break
            rendered.append(k)
            if progress is not None:
                progress(result["frames"])
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt) and hasattr(ex, "stop"):
            ex.stop()
        else:
            ex.close(cancel=True)
        raise
    ex.close(cancel=failure is not None)
    if failure is not None:
        raise failure
    return rendered, used


# -- one film ---------------------------------------------------------------------------------

def run_job(input: str | os.PathLike, output: str | os.PathLike | None = None, *,
            reference: str | os.PathLike | None = None, reference_map: str | os.PathLike | None = None,
            config: Config | None = None, jobs: int = 1, ray: str | None = None, overwrite: bool = False,
            keep: bool = False, progress: Progress | None = None,
            on_plan: Callable[[Manifest, int], None] | None = None,
            plan_progress: Progress | None = None, keyframes: str | os.PathLike | None = None) -> FarmReport:
    """Colourise ``input`` as a render-farm job (see the module docstring).

    ``on_plan(manifest, frames_done)`` is called once the plan is known;
    ``progress(frames)`` as segments finish. The job folder is removed once
    the output is in place, unless ``keep``.
    """
    t0 = time.monotonic()
    cfg = config or Config()
    input = Path(input)
    check_input(input)
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    out = Path(output) if output is not None else default_output(input)
    if out.exists() and not overwrite:
        raise OutputError("already exists (pass --overwrite to replace it)", out)
    report = FarmReport(str(input), str(out))
    with JobLock(job_dir(out.resolve())):  # one driver a job: a second one stops here, at once
        _run_locked(report, input, out, reference, reference_map, cfg, jobs, ray, overwrite, keep, progress,
                    on_plan, plan_progress, t0, keyframes)
    report.seconds = time.monotonic() - t0
    return report


def _run_locked(report: FarmReport, input: Path, out: Path, reference, reference_map, cfg: Config, jobs: int,
                ray: str | None, overwrite: bool, keep: bool, progress, on_plan, plan_progress, t0: float,
                keyframes=None) -> None:
    manifest, report.resumed = plan_job(input, out, reference=reference, reference_map=reference_map, config=cfg,
                                        keyframes=keyframes,
                                        overwrite=overwrite, progress=plan_progress)
    report.seconds_plan = time.monotonic() - t0
    report.segments, report.frames = len(manifest.segments), manifest.frames
    report.truncated = manifest.video.get("truncated")
    journal = read_journal(manifest.dir, len(manifest.segments))
    pending = []
    for seg in manifest.segments:
        state = segment_done(manifest, seg.index, journal)
        if state:
            report.skipped.append(seg.index)
            continue
        if state is None:
            log.warning("%s: does not match its checksum in the journal; rendering it again",
                        manifest.segment_path(seg.index))
            report.corrupt.append(seg.index)
            manifest.segment_path(seg.index).unlink(missing_ok=True)
        pending.append(seg.index)
    if report.resumed:
        log.info("%s: resuming the job: %d of %d segment(s) already done", manifest.dir, len(report.skipped),
                 report.segments)
    if on_plan is not None:
        on_plan(manifest, sum(manifest.segments[k].frames for k in report.skipped))
    report.rendered, report.retries = render_pending(manifest, pending, jobs=jobs, ray=ray, retries=cfg.farm.retries,
                                                     progress=progress, lost=report.lost)
    t1 = time.monotonic()
    assemble(manifest, out, overwrite=overwrite)
    report.seconds_assemble = time.monotonic() - t1
    if not keep:
        shutil.rmtree(manifest.dir, ignore_errors=True)


# -- many films -------------------------------------------------------------------------------

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
                    ".mxf", ".wmv", ".flv", ".ogv", ".dv", ".vob", ".3gp", ".nut", ".y4m")


def list_inputs(source: str | os.PathLike) -> list[Path]:
    """A folder's video files (by extension, sorted), or the paths listed in a
    text file (one a line; blank lines and ``#`` comments skipped; relative
    to the list's folder)."""
    p = Path(source)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                      and f.suffix.lower() in VIDEO_EXTENSIONS)
    if not p.is_file():
        raise InputError("not found (give a folder of films or a text file listing them)", p)
    if p.suffix.lower() in VIDEO_EXTENSIONS or p.suffix.lower() in IMAGE_EXTENSIONS:
        raise InputError("is a film, not a list of films; give a folder or a text file with one path a line", p)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot be read as a list of films ({e})", p) from None
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            q = Path(line).expanduser()
            out.append(q if q.is_absolute() else p.parent / q)
    return out


def batch(source: str | os.PathLike, outdir: str | os.PathLike, *, overwrite: bool = False,
          on_film: Callable[[Path, Path], None] | None = None, **kwargs) -> list[dict]:
    """Colourise every film of ``source`` (see :func:`list_inputs`) into ``outdir``,
    each as its own job (``kwargs`` as :func:`run_job`). A film whose output
    exists and has no unfinished job is skipped; one that fails is reported
    and the next one starts. Returns one row a film: input, output, status
    (done, failed, skipped), detail."""
    films = list_inputs(source)
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise OutputError("is not a folder", outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = []
    seen: set[str] = set()
    for film in films:
        out = outdir / default_output(film).name
        if out.name in seen:
            out = outdir / f"{film.parent.name}_{out.name}"
        seen.add(out.name)
        row = {"input": os.fspath(film), "output": os.fspath(out), "status": "", "detail": ""}
        rows.append(row)
        if out.exists() and not overwrite:
            row["status"], row["detail"] = "skipped", "output exists"
            continue
        if on_film is not None:
            on_film(film, out)
        try:
            r = run_job(film, out, overwrite=overwrite, **kwargs)
        except KeyboardInterrupt:
            row["status"], row["detail"] = "failed", "interrupted"
            raise
        except (VidcolorError, OSError, RuntimeError, ValueError) as e:
            row["status"], row["detail"] = "failed", _describe(e)
            log.warning("%s: failed: %s", film, _describe(e))
            continue
        row["status"] = "done"
        row["detail"] = (f"{r.frames} frames, {r.segments} segment(s)"
                         + (f", {len(r.skipped)} resumed" if r.skipped else "") + f", {r.seconds:.1f} s")
        if r.truncated:  # done, as far as the file goes: the table says where it ends
            row["detail"] += f"; the input {Truncation(**r.truncated).describe()}"
    return rows
