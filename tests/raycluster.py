"""A real two-node Ray cluster on 127.0.0.1 for the tests and benchmarks:
``ray start --head`` and ``ray start --address`` as subprocesses (``--block``,
so each node's processes share its fate), free ports, a temporary folder,
and processes found under /proc. Stopped by the pids it started."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["RayCluster", "descendants", "alive", "start_time", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ppids() -> dict[int, int]:
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            out[int(d)] = int(stat.rpartition(")")[2].split()[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` now (children, their children, ...)."""
    ppids = _ppids()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in ppids.items() if pp == p]
        found += kids
        todo += kids
    return found


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot): with the pid, names one process for good."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int, started: int | None = None) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as gone); ``started``: and still that process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return fields[0] not in ("Z", "X") and (started is None or int(fields[19]) == started)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ray() -> str:
    exe = Path(sys.executable).with_name("ray")
    return os.fspath(exe) if exe.exists() else (shutil.which("ray") or "ray")


class RayCluster:
    """A head node and a worker node, ``cpus`` each, on 127.0.0.1. ``env`` for their workers."""

    def __init__(self, tmp: str | os.PathLike, cpus: tuple[int, int] = (1, 1), env: dict | None = None):
        self.tmp = Path(tmp)
        self.cpus = cpus
        (self.tmp / "home").mkdir(parents=True, exist_ok=True)
        # HOME: its own, so that no ~/.ray/auth_token of another cluster on this machine applies; no RAY_*
        # variables of this process (a ray.init() here sets RAY_AUTH_MODE=token in os.environ, for good)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "PYTHONBREAKPOINT"}
        self.env = {**inherited, "HOME": os.fspath(self.tmp / "home"), "RAY_USAGE_STATS_ENABLED": "0",
                    "RAY_health_check_period_ms": "1000",
                    "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "1000",
                    **(env or {})}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.seen: set[tuple[int, int | None]] = set()  # every (pid, start time) of the cluster recorded

    def _node_args(self) -> list[str]:
        return ["--node-ip-address", "127.0.0.1", "--block", "--disable-usage-stats",
                "--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
                "--metrics-export-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
                "--dashboard-agent-grpc-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
                "--object-store-memory", str(80 << 20)]

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.tmp / f"ray-{name}.log", "wb")
        self.procs[name] = subprocess.Popen([_ray(), "start", *args, *self._node_args()], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def start(self, timeout: float = 120) -> "RayCluster":
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._start("head", ["--head", "--port", str(self.port), "--num-cpus", str(self.cpus[0]),
                             "--include-dashboard", "false",
                             "--temp-dir", os.fspath(self.tmp / "ray")])
        self._wait(1, timeout)
        self._start("worker", ["--address", self.address, "--num-cpus", str(self.cpus[1])])
        self._wait(2, timeout)
        self.record()
        return self

    def _wait(self, nodes: int, timeout: float) -> None:
        """Until ``nodes`` raylets run (one per node) and the GCS answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"ray start ({name}) exited {p.returncode}: "
                                       + (self.tmp / f"ray-{name}.log").read_text()[-2000:])
            if len(self.raylets()) >= nodes and self._gcs_nodes() >= nodes:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Ray cluster did not come up with {nodes} node(s) in {timeout} s")

    def _gcs_nodes(self) -> int:
        r = subprocess.run([_ray(), "status", "--address", self.address], env=self.env, capture_output=True,
                           text=True, timeout=60)
        if r.returncode:
            return 0
        active = r.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return active.count("node_")

    def raylets(self, name: str | None = None) -> list[int]:
        names = [name] if name else list(self.procs)
        return [p for n in names for p in descendants(self.procs[n].pid) if "raylet" in cmdline(p).split(" ")[0]]

    def record(self) -> set[tuple[int, int | None]]:
        for p in self.procs.values():
            self.seen |= {(q, start_time(q)) for q in (p.pid, *descendants(p.pid))}
        return self.seen

    def tasks(self, name: str) -> list[int]:
        """Worker processes of node ``name`` running a task called ``_render_task`` now."""
        return [p for p in descendants(self.procs[name].pid) if "ray::_render_task" in cmdline(p)]

    def kill_node(self, name: str) -> list[int]:
        """SIGKILL every process of node ``name`` (its raylet, its workers, ``ray start`` itself)."""
        pids = [self.procs[name].pid, *descendants(self.procs[name].pid)]
        self.seen |= {(q, start_time(q)) for q in pids}
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.procs[name].wait(timeout=30)
        return pids

    def stop(self) -> None:
        """SIGTERM then SIGKILL to every pid this cluster started (recorded now and before)."""
        self.record()
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            left = [(p, t) for p, t in self.seen if t is not None and alive(p, t)]
            for p, _ in left:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(alive(p, t) for p, t in left):
                for pr in self.procs.values():
                    pr.poll()
                time.sleep(0.2)
        for pr in self.procs.values():
            try:
                pr.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def __enter__(self) -> "RayCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
