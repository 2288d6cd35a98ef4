"""Local executor: N long-lived worker processes, a per-job time limit, failures become records.

Each worker is a spawned process that imports the model libraries once and then runs job after job.
The parent hands out jobs, is the only writer of records (the worker's, or a failure record when a
worker died or ran past the time limit), and replaces lost workers. Finished jobs
are skipped on the next run of the same command, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from bench.jobs import Job, environment_threads, execute_job, failure_records
from bench.results import ResultStore

POLL_SECONDS = 0.2


@dataclass
class SweepSummary:
    total: int = 0
    skipped_done: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # job id, status, message
    unavailable: dict[str, str] = field(default_factory=dict)  # model -> why it could not run here
    seconds: float = 0.0


def run_local(jobs: list[Job], store: ResultStore, *, workers: int = 1, time_limit: float | None = None,
              retry_failed: bool = False, progress=None) -> SweepSummary:
    """Run every job not already done; `progress(job, records)` is called as each one finishes."""
    summary = SweepSummary(total=len(jobs))
    pending = [j for j in jobs if not store.is_done(j, retry_failed)]
    summary.skipped_done = len(jobs) - len(pending)
    start = time.perf_counter()

    def finished(job: Job, records: list[dict]) -> None:
        store.write(records)
        for r in records:
            summary.statuses[r["status"]] += 1
            if r["status"] == "unavailable":
                summary.unavailable.setdefault(r["model"], r.get("reason", ""))
            elif r["status"] not in ("ok", "skipped"):
                summary.failures.append((f"{job.job_id} [{r['variant']}]", r["status"],
                                         (r.get("error") or {}).get("message", "")))
        if progress:
            progress(job, records)

    if workers <= 0:  # in-process, for debugging; no time limit or crash isolation
        for job in pending:
            finished(job, execute_job(job))
    else:
        _Pool(workers, time_limit).run(pending, finished)
    summary.seconds = time.perf_counter() - start
    return summary


@dataclass
class _Worker:
    index: int
    process: mp.Process
    conn: object
    job: Job | None = None
    started: float = 0.0


class _Pool:
    def __init__(self, size: int, time_limit: float | None):
        self.size, self.time_limit = size, time_limit
        self.ctx = mp.get_context("spawn")

    def _start(self, index: int, threads: int) -> _Worker:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child, environment_threads(threads)),
                                name=f"bench-worker-{index}", daemon=True)
        proc.start()
        child.close()
        return _Worker(index, proc, parent)

    def run(self, jobs: list[Job], finished) -> None:
        queue = list(reversed(jobs))
        threads = max((j.threads for j in jobs), default=1)
        pool = [self._start(i, threads) for i in range(min(self.size, len(jobs)))]
        try:
            while queue or any(w.job for w in pool):
                for w in pool:
                    if w.job is None and queue:
                        # The clock starts when the worker says it began (after its imports), so a
                        # slow worker start-up never counts against a job's time limit.
                        w.job, w.started = queue.pop(), 0.0
                        try:
                            w.conn.send(w.job)
                        except OSError:
                            pass  # the worker is gone: _check records the crash and replaces it
                busy = [w for w in pool if w.job is not None]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], POLL_SECONDS)
                pool = [self._check(w, ready, finished, threads) if w.job else w for w in pool]
        finally:
            for w in pool:
                if w.process.is_alive():
                    try:
                        w.conn.send(None)
                    except OSError:
                        pass
            for w in pool:
                w.process.join(timeout=5)
                if w.process.is_alive():
                    _stop(w.process)

    def _check(self, w: _Worker, ready, finished, threads: int) -> _Worker:
        """Handle what a busy worker said or did; returns the worker to keep (a fresh one if lost)."""
        lost = False
        if w.conn in ready:
            try:
                kind, payload = w.conn.recv()
            except (EOFError, OSError):
                kind, payload, lost = None, None, True
            if kind == "started":
                w.started = time.monotonic()
                return w
            if kind == "done":
                job, w.job = w.job, None
                finished(job, payload)
                return w
        if lost or not w.process.is_alive():
            w.process.join(timeout=5)  # reap it, so the exit code (signal) is known
            finished(w.job, failure_records(w.job, "crashed", "WorkerDied", _death_text(w.process.exitcode)))
            return self._replace(w, threads)
        if self.time_limit and w.started and time.monotonic() - w.started > self.time_limit:
            _stop(w.process)
            finished(w.job, failure_records(w.job, "timeout", "TimeLimit",
                                            f"job ran past its time limit of {self.time_limit:.0f}s"))
            return self._replace(w, threads)
        return w

    def _replace(self, w: _Worker, threads: int) -> _Worker:
        w.conn.close()
        return self._start(w.index, threads)


def _stop(proc: mp.Process, grace: float = 3.0) -> None:
    """Soft stop (SIGTERM), then hard kill: a model stuck in native code ignores the first."""
    proc.terminate()
    proc.join(grace)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _death_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"worker process killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"worker process killed by signal {-code}"
    return f"worker process exited with code {code}"


def _worker_main(conn, env: dict[str, str]) -> None:
    os.environ.update(env)  # before any native library is imported in this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(("started", None))
        conn.send(("done", execute_job(job)))
