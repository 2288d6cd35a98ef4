"""Stopping a sweep cleanly: SIGTERM / SIGHUP to the parent stop its workers and their children.

Python's default for SIGTERM and SIGHUP ends the parent at once, without cleanup: its workers would go
on running their jobs, with no time limit and nobody to record them, racing a resumed run for the same
studies. Instead the signal becomes an exception (Interrupted) in the parent, which unwinds through
the executors' cleanup: busy workers are killed with their whole process tree, finished records are
already on disk, and a rerun of the same command resumes exactly (jobs that were running run again).
"""

from __future__ import annotations

import ctypes
import signal
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The sweep was stopped by a signal (a KeyboardInterrupt, so every Ctrl-C path handles it too)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


@contextmanager
def stop_on_signals(signals=STOP_SIGNALS):
    """Turn `signals` into Interrupted while the block runs (main thread only: Python delivers
    signals there; elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        for s in signals:  # the cleanup the exception starts must not itself be interrupted
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def kill_tree(pid: int, grace: float = 3.0) -> None:
    """SIGTERM a process and every descendant, SIGKILL whatever is left after `grace` seconds.

    The descendants are listed first: once their parent is gone they are re-parented and can no
    longer be found from it."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)


def die_with_parent() -> None:
    """Linux: the kernel kills this process (SIGKILL) when its parent dies, even by kill -9, so that
    a worker never outlives the sweep that gave it its job. Elsewhere: nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
