"""Render farm: one film cut at shot boundaries into segments, rendered by
local processes, Ray tasks or any scheduler (``vidcolor render-segment``),
journaled, resumable, and joined without re-encoding.

    plan.py      the job: shots, segments, manifest, input identity
    schema.py    the manifest and journal checked as untrusted input
    lock.py      one driver a job: the job lock
    segment.py   rendering one segment; the journal
    assemble.py  joining segments and the input's other streams
    run.py       executors (processes, Ray), retries, one film, a batch
"""
from .assemble import assemble
from .lock import JobLock, JobLocked
from .plan import Manifest, Segment, group_segments, input_checksum, job_dir, plan_job
from .run import FarmReport, batch, list_inputs, run_job
from .segment import SegmentError, read_journal, render_segment

__all__ = ["Manifest", "Segment", "FarmReport", "SegmentError", "JobLock", "JobLocked", "plan_job", "group_segments",
           "input_checksum", "job_dir", "render_segment", "read_journal", "assemble", "run_job", "batch", "list_inputs"]
