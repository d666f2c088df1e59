"""The job lock: one driver at a time on a job folder.

``OUTPUT.vidcolor-job/lock`` holds the driver's host, pid and start time
(JSON) and an exclusive ``flock`` for as long as the driver runs. The kernel
drops the flock when its process dies however it dies (SIGKILL included), so
a lock left by a dead driver is stale at once and the next run takes it; a
driver that finds it held stops with one line naming the holder. Where the
file system has no flock (ENOLCK, some network mounts), the recorded owner
decides: stale once that pid is gone from this host (or is another process
now); a lock of another host is taken as held.

Worker processes never inherit the lock (Python opens files close-on-exec);
they die with their driver (:mod:`vidcolor.farm.run`), so a rerun never
races with a worker still rendering for a dead driver.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path

from ..errors import OutputError

try:
    import fcntl
except ImportError:  # not POSIX: the recorded owner alone decides
    fcntl = None

__all__ = ["JobLock", "JobLocked", "LOCK", "holder"]

LOCK = "lock"
_HELD: dict[str, "JobLock"] = {}  # this process's locks, by folder: taking one again is a no-op


class JobLocked(OutputError):
    """Another driver holds the job."""


def _start_time(pid: int) -> str | None:
    """The process's start (clock ticks after boot, Linux): with the pid, it names one process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(path: str | os.PathLike) -> dict:
    """What a lock file says of its owner ({} when unreadable)."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _describe(h: dict) -> str:
    if not h:
        return "another vidcolor driver"
    return (f"vidcolor driver pid {h.get('pid', '?')} on {h.get('host', '?')}, started {h.get('started', '?')}")


def _owner_gone(h: dict) -> bool:
    """Without flock: is the recorded owner certainly dead? Only knowable on its own host."""
    if h.get("host") != socket.gethostname() or not isinstance(h.get("pid"), int):
        return not h  # an empty or torn file: its writer died before finishing it
    pid = h["pid"]
    return not _pid_alive(pid) or (h.get("tick") is not None and _start_time(pid) != h.get("tick"))


class JobLock:
    """``with JobLock(folder):`` the job is this process's. Raises :class:`JobLocked` at once if not."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.fd: int | None = None
        self._nested = False
        self._key = ""

    def acquire(self) -> "JobLock":
        self._key = key = os.fspath(self.folder.resolve())
        if key in _HELD:
            self._nested = True
            return self
        for _ in range(20):  # the file may be removed under us (a job given up, finished): try the new one
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise OutputError(f"cannot create the job lock ({e.strerror})", self.path) from None
            try:
                if fcntl is None:
                    raise OSError(errno.ENOSYS, "no flock")
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise JobLocked(f"the job is in use by {_describe(holder(self.path))}; wait for it to finish "
                                "or stop it, then run again", self.path) from None
            except OSError as e:  # no flock here: the recorded owner decides
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    os.close(fd)
                    raise OutputError(f"cannot lock the job ({e.strerror})", self.path) from None
                h = holder(self.path)
                if h and not _owner_gone(h) and h.get("pid") != os.getpid():
                    os.close(fd)
                    raise JobLocked(f"the job is in use by {_describe(h)}; if that driver is gone, remove this "
                                    "file and run again", self.path) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            info = {"host": socket.gethostname(), "pid": os.getpid(), "tick": _start_time(os.getpid()),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            self.fd = fd
            _HELD[key] = self
            return self
        raise OutputError("cannot lock the job: its lock file keeps being replaced", self.path)

    def release(self) -> None:
        """Unlocked; a folder that holds nothing but the lock (no job was planned) is removed."""
        if self._nested or self.fd is None:
            return
        _HELD.pop(self._key, None)
        try:
            if [p.name for p in self.folder.iterdir()] == [LOCK]:
                self.path.unlink()
                self.folder.rmdir()
        except OSError:
            pass
        finally:
            os.close(self.fd)  # drops the flock; a lock file left behind is stale from now on
            self.fd = None

    def __enter__(self) -> "JobLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
