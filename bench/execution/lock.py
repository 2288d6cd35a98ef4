"""One `bench run` per run folder at a time.

Two sweeps into one folder would both run every job and share (and corrupt) its studies. The lock is
an fcntl.flock on <run>/.bench-run.lock: the kernel releases it when its process ends however it ends
(kill -9 included), so a lock is never stale while its file stays. The file also names the holder
(pid, host, start time, command) for the message a second run gets; a file left behind by a process
that died holds no lock and is simply taken over (with a note). A lock file that is a symbolic or
hard link is refused (bench.safe_files): truncating it would truncate what it points to.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import BenchError
from bench.safe_files import open_in_place

LOCK_NAME = ".bench-run.lock"


def open_run_dir(path: Path, option: str = "--out") -> Path:
    """The run folder, created if needed; BenchError when it is a file or cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BenchError(f"{option} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"{option} {path}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BenchError(f"{option} {path}: the folder is not writable")
    return path


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None
        self.note: str | None = None  # set when a leftover lock file of a dead run was taken over

    def acquire(self) -> "RunLock":
        try:
            fd = open_in_place(self.path, self.path.parent, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise BenchError(f"{self.path.parent}: cannot write the run's lock file ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(fd))
            os.close(fd)
            raise BenchError(f"{self.path.parent} is in use by another `bench run` ({holder}); wait for it to "
                             f"finish, stop it, or use another --out (with make: OUT=<folder>)") from None
        except OSError as exc:  # a file system without locks (some network or FUSE mounts)
            self.note = (f"cannot lock {self.path} ({exc.strerror or exc}): make sure no other `bench run` "
                         f"uses this folder at the same time")
            os.close(fd)
            return self
        previous = _read(fd)
        if previous:
            self.note = (f"took over the lock file of a run that is no longer running ({_describe(previous)})")
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # an empty file: nobody holds it (the file stays: see module doc)
        except OSError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except (OSError, ValueError):
        return {"unreadable": True}
    return data if isinstance(data, dict) else {"unreadable": True}


def _describe(info: dict) -> str:
    if not info or info.get("unreadable"):
        return "holder unknown"
    return (f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started_at')}"
            + (f": {info['command']}" if info.get("command") else ""))
