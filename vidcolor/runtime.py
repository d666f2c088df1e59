"""Where and how the networks run (device, precision, batch size), and what a run reports (timers, report)."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass, field

import torch

from .config import Config
from .errors import ConfigError

__all__ = ["RunReport", "Timers", "resolve_device", "torch_threads", "set_torch_threads", "precision", "auto_batch_size", "GPU_BYTES_PER_PIXEL"]


@dataclass
class RunReport:
    input: str
    output: str
    frames: int = 0
    shots: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    colorizer: str = ""
    device: str = ""
    transitions: list[dict] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    damaged_frames: int = 0  # undecodable frames, each the previous good one repeated
    damaged: list[int] = field(default_factory=list)  # their indices (the first 1000)
    truncated: dict | None = None  # the input ends early: where (vidcolor.io.decode.Truncation)
    span: dict | None = None  # --start/--duration: where in the film the part lies

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "fps": round(self.fps, 3), "seconds": round(self.seconds, 3)}


def torch_threads(threads: int) -> int:
    """PyTorch's intra-op threads for ``runtime.threads``: the number given, or for 0 half the cores this
    process may use (at least one). The other half serve the flows' worker threads and the encoder:
    on two cores PyTorch's own default (every core) was no faster idle and 2.4x slower beside one
    other busy process, its second thread spinning in each op's barrier (benchmarks/bench_speed.py)."""
    if threads:
        return threads
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


def set_torch_threads(threads: int) -> None:
    """Give PyTorch :func:`torch_threads` threads (a process-wide setting)."""
    n = torch_threads(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError(f"unknown device '{name}' (valid: auto, cpu, cuda)")
    return torch.device(name)


def precision(cfg: Config, device: torch.device) -> torch.dtype | None:
    """runtime.precision on ``device``: the networks' mixed-precision type, None for float32.
    auto: float16 on a GPU (tensor cores), float32 on a CPU (no fast half arithmetic there)."""
    p = cfg.runtime.precision
    if device.type != "cuda" or p == "fp32":
        return None
    return torch.bfloat16 if p == "bf16" else torch.float16


#: GPU memory one frame in a batch takes, per pixel of the film (measured by the colorizers'
#: full-size tensors: L, chroma and the guided filter's coefficients, with room to spare)
GPU_BYTES_PER_PIXEL = 160


def auto_batch_size(cfg: Config, device: torch.device, size: tuple[int, int]) -> int:
    """runtime.batch_size, or (0) the batch that half the GPU's free memory holds, 1..64; 8 on a CPU."""
    if cfg.runtime.batch_size:
        return cfg.runtime.batch_size
    if device.type != "cuda":
        return 8
    free, _total = torch.cuda.mem_get_info(device)
    return int(max(1, min(64, free // 2 // (size[0] * size[1] * GPU_BYTES_PER_PIXEL))))


class Timers:
    """Seconds spent per stage, for the report."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t
