"""Local executor: long-lived worker processes on CPU and GPU slots; limits; failures become records.

Each worker is a spawned process bound to one slot (bench.execution.resources): its thread caps and its GPU
(CUDA_VISIBLE_DEVICES) are set before it imports any model library, and it then runs job after job.
Jobs planned for `cuda` go to GPU workers, all others to CPU workers. The parent hands out jobs, is the
only writer of records (the worker's, or a failure record when a worker died, ran past the time limit or
over the memory limit), and replaces lost workers. Finished jobs are skipped on the next run of the
same command, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from bench.errors import BenchError
from bench.execution.gpu_usage import SAMPLE_FILE, GpuSampler
from bench.execution.joblog import execute_logged, with_log
from bench.execution.jobs import Job, failure_records
from bench.execution.resources import MemoryWatch, Slot, gigabytes, plan_slots
from bench.execution.signals import die_with_parent, kill_tree
from bench.records.store import ResultStore
from bench.vocabulary import FAILURES, Status

POLL_SECONDS = 0.2
_PRELOAD = ("sklearn.compose", "sklearn.impute", "sklearn.pipeline", "sklearn.preprocessing", "sklearn.metrics",
            "sklearn.model_selection")


@dataclass
class SweepSummary:
    total: int = 0
    skipped_done: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)  # job id, status, message, log
    unavailable: dict[str, str] = field(default_factory=dict)  # model -> why it could not run here
    seconds: float = 0.0
    startup_seconds: float = 0.0  # until the first worker was ready (process start, harness imports)
    done_at: list[float] = field(default_factory=list)  # monotonic time each job finished

    @property
    def steady_seconds(self) -> float:
        """From the first finished job to the last: the sweep's pace once running."""
        return self.done_at[-1] - self.done_at[0] if len(self.done_at) > 1 else 0.0


class Recorder:
    """Where every executor hands finished jobs: writes records, counts them, reports progress."""

    def __init__(self, store: ResultStore, summary: SweepSummary, progress=None, heartbeat=None):
        self.store, self.summary, self.progress, self.heartbeat = store, summary, progress, heartbeat

    def trial(self, job: Job, line: str) -> None:
        """A running job finished a trial (bench.execution.heartbeat.trial_line)."""
        if self.heartbeat:
            self.heartbeat(job, line)

    def __call__(self, job: Job, records: list[dict]) -> None:
        self.store.write(records)
        self.summary.done_at.append(time.monotonic())
        for r in records:
            self.summary.statuses[r["status"]] += 1
            if r["status"] == Status.UNAVAILABLE:
                self.summary.unavailable.setdefault(r["model"], r.get("reason", ""))
            elif r["status"] in FAILURES:
                self.summary.failures.append((f"{job.job_id} [{r['variant']}]", r["status"],
                                              (r.get("error") or {}).get("message", ""), r.get("log", "")))
        if self.progress:
            self.progress(job, records)


def pending_jobs(jobs: list[Job], store: ResultStore, retry_failed: bool, summary: SweepSummary) -> list[Job]:
    """The jobs to run. A job run again because its records are failures (--retry-failed) starts a
    fresh study: its failed trials would otherwise count toward the budget and nothing would run. So
    does a done job whose predictions file is missing or damaged (its trials' predictions are lost)."""
    summary.total = len(jobs)
    pending = []
    for job in jobs:
        state = store.job_state(job, retry_failed)
        if state == "done":
            continue
        if state in ("retry", "stale", "predictions"):  # predictions: from scratch, its trials' are lost
            job.discard_studies(current=state != "stale")
        pending.append(job)
    summary.skipped_done = len(jobs) - len(pending)
    return pending


def run_local(jobs: list[Job], store: ResultStore, *, workers: int = 1, gpus: Sequence[str] = (),
              jobs_per_gpu: int | dict[str, int] = 1, time_limit: float | None = None,
              memory_limit_gb: float | None = None, retry_failed: bool = False, progress=None,
              heartbeat=None, early: EarlyWorkers | None = None) -> SweepSummary:
    """Run every job not already done; `progress(job, records)` is called as each one finishes, and
    `heartbeat(job, line)` as each of its trials does (not with workers=0: the job's output, the
    console's included, goes to its log there).

    `workers` CPU workers plus `jobs_per_gpu` workers per GPU id in `gpus` (one number, or one per id);
    workers=0 runs everything in this process (debugging: no isolation, no limits). While GPU jobs run,
    GPU utilization samples go to <run>/gpu-utilization.csv (bench.execution.gpu_usage). `early`: CPU
    workers started before planning (EarlyWorkers), taken over where their threads fit, else stopped.
    """
    summary = SweepSummary()
    pending = pending_jobs(jobs, store, retry_failed, summary)
    finished = Recorder(store, summary, progress, heartbeat)
    start = time.perf_counter()
    if workers <= 0:  # in-process, for debugging; no time limit or crash isolation
        if early is not None:
            early.close()
        for job in pending:
            finished(job, execute_logged(job))
    else:
        limit = memory_limit_gb * 1e9 if memory_limit_gb else None
        pool = _Pool(plan_slots(workers, list(gpus), jobs_per_gpu), time_limit, limit, early)
        on_gpu = gpus and any(j.device == "cuda" for j in pending)
        with GpuSampler(store.run_dir / SAMPLE_FILE, list(gpus)) if on_gpu else nullcontext():
            pool.run(pending, finished)
        summary.startup_seconds = pool.startup_seconds
    summary.seconds = time.perf_counter() - start
    return summary


@dataclass
class _Worker:
    slot: Slot
    process: BaseProcess  # a spawn-context process
    conn: Connection
    memory: MemoryWatch | None = None
    job: Job | None = None
    started: float = 0.0


def _launch(slot: Slot, threads: int, watch_memory: bool) -> _Worker:
    """Start a worker process on `slot` with `threads` as its thread caps."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_worker_main, args=(child, slot.environment(threads)), name=f"bench-worker-{slot.name}",
                       daemon=True)
    proc.start()
    child.close()
    if proc.pid is None:  # start() sets it; None would mean the process never started
        raise RuntimeError(f"worker process for slot {slot.name} did not start")
    return _Worker(slot, proc, parent, MemoryWatch(proc.pid) if watch_memory else None)


def _dismiss(workers: list[_Worker]) -> None:
    """Stop idle workers: ask them to end, then make sure they did. The waiting happens on a
    background thread: a worker's interpreter takes about half a second to tear down its libraries,
    which the parent spends on the cross-model ensembles and the leaderboard instead. (At the parent's
    exit multiprocessing ends and reaps any worker still there; the kernel does if the parent is killed.)"""
    for w in workers:
        try:
            w.conn.send(None)
        except OSError:
            pass
    if workers:
        threading.Thread(target=_reap, args=([w.process for w in workers],), name="bench-reaper",
                         daemon=True).start()


def _reap(processes: list[BaseProcess]) -> None:
    for proc in processes:
        proc.join(timeout=5)
        if proc.is_alive():
            _stop(proc)


class EarlyWorkers:
    """CPU workers started before the sweep is planned, so that their start-up (a fresh interpreter
    importing the harness: seconds) runs beside the parent's loading and splitting of the data instead
    of after it. run_local takes them over when the jobs' thread count is the one they started with
    (otherwise, and when fewer are needed, they are stopped); close() stops what was not taken."""

    def __init__(self, count: int, threads: int, watch_memory: bool = False):
        self.threads = threads
        self.idle = {i: _launch(Slot(i), threads, watch_memory) for i in range(count)}

    def take(self, slot: Slot, threads: int) -> _Worker | None:
        if slot.kind != "cpu" or threads != self.threads:
            return None
        return self.idle.pop(slot.index, None)

    def close(self) -> None:
        """Stop the workers not taken over, at once: they hold no job (one may still be importing, and
        would read a polite request to end only after that)."""
        idle, self.idle = list(self.idle.values()), {}
        for w in idle:
            _stop(w.process)


class _Pool:
    def __init__(self, slots: list[Slot], time_limit: float | None, memory_limit: float | None,
                 early: EarlyWorkers | None = None):
        self.slots, self.time_limit, self.memory_limit = slots, time_limit, memory_limit
        self.early = early
        self.threads: dict[str, int] = {}
        self.startup_seconds = 0.0
        self.queues: dict[str, deque[Job]] = {}

    def _start(self, slot: Slot) -> _Worker:
        threads = self.threads.get(slot.kind, 1)
        taken = self.early.take(slot, threads) if self.early is not None else None
        return taken or _launch(slot, threads, bool(self.memory_limit))

    def run(self, jobs: list[Job], finished) -> None:
        queues = {"cpu": deque(j for j in jobs if j.device != "cuda"),
                  "cuda": deque(j for j in jobs if j.device == "cuda")}
        for kind, queue in queues.items():
            self.threads[kind] = max((j.threads for j in queue), default=1)
        slots = {kind: [s for s in self.slots if s.kind == kind] for kind in queues}
        if queues["cuda"] and not slots["cuda"]:
            raise BenchError(f"{len(queues['cuda'])} jobs are planned for a GPU but no GPU worker slot exists")
        if queues["cpu"] and not slots["cpu"]:
            slots["cpu"] = [Slot(len(self.slots))]  # CPU-only models still need somewhere to run
        self._began = time.monotonic()
        self.queues = queues
        try:
            pool = [self._start(s) for kind in queues for s in slots[kind][: len(queues[kind])]]
        finally:
            if self.early is not None:
                self.early.close()  # the ones not taken over

        try:
            while any(queues.values()) or any(w.job for w in pool):
                for w in pool:
                    self._hand_out(w)
                busy = [w for w in pool if w.job is not None]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], POLL_SECONDS)
                pool = [self._check(w, ready, finished) if w.job else w for w in pool]
        finally:
            # Normally every worker is idle here. After an error or a stop signal, busy workers are
            # killed with their process trees at once: their jobs have no record, so a rerun runs them.
            for w in pool:
                if w.job is not None:
                    _stop(w.process)
            _dismiss([w for w in pool if w.job is None])

    def _hand_out(self, w: _Worker) -> None:
        """Send an idle worker the next job of its kind, if any."""
        queue = self.queues[w.slot.kind]
        if w.job is not None or not queue:
            return
        # The clock starts when the worker says it began (after its imports), so a slow worker
        # start-up never counts against a job's time limit.
        w.job, w.started = queue.popleft(), 0.0
        if w.memory:
            w.memory.peak = 0
        try:
            w.conn.send(w.job)
        except OSError:
            pass  # the worker is gone: _check records the crash and replaces it

    def _check(self, w: _Worker, ready, finished) -> _Worker:
        """Handle what a busy worker said or did; returns the worker to keep (a fresh one if lost)."""
        lost = False
        if w.conn in ready:
            try:
                kind, payload = w.conn.recv()
            except (EOFError, OSError):
                kind, payload, lost = None, None, True
            if kind == "trial":
                finished.trial(w.job, payload)
                return w
            if kind == "started":
                w.started = time.monotonic()
                self.startup_seconds = self.startup_seconds or w.started - self._began
                return w
            if kind == "done":
                job, w.job = w.job, None
                # The worker gets its next job before this one's records are written (fsync): it never
                # waits for the parent's bookkeeping.
                self._hand_out(w)
                finished(job, payload)
                return w
        if lost or not w.process.is_alive():
            w.process.join(timeout=5)  # reap it, so the exit code (signal) is known
            return self._fail(w, finished, Status.CRASHED, "WorkerDied", _death_text(w.process.exitcode), stop=False)
        if self.memory_limit and w.memory:
            used = w.memory.sample()
            if used > self.memory_limit:
                return self._fail(w, finished, Status.OUT_OF_MEMORY, "MemoryLimitExceeded",
                                  f"job used {gigabytes(used)} (peak seen {gigabytes(w.memory.peak)}), over the "
                                  f"memory limit of {gigabytes(self.memory_limit)}",
                                  extra={"memory_peak_bytes": w.memory.peak, "memory_limit_bytes": self.memory_limit})
        if self.time_limit and w.started and time.monotonic() - w.started > self.time_limit:
            return self._fail(w, finished, Status.TIMEOUT, "TimeLimit",
                              f"job ran past its time limit of {self.time_limit:.0f}s")
        return w

    def _fail(self, w: _Worker, finished, status, error_type, message, stop=True, extra=None) -> _Worker:
        """Record the busy job as failed and put a fresh worker on the slot."""
        if stop:
            _stop(w.process)
        job, w.job = w.job, None
        if job is None:  # only busy workers are checked (see run)
            raise RuntimeError(f"worker on slot {w.slot.name} failed without a job")
        finished(job, with_log(failure_records(job, status, error_type, message, extra), job.log_path))
        w.conn.close()
        return self._start(w.slot)


def _stop(proc: BaseProcess, grace: float = 3.0) -> None:
    """Soft stop (SIGTERM), then hard kill (a model stuck in native code ignores the first), of the
    worker and every process it started (data loaders, native helpers, subprocesses of a model)."""
    if proc.pid is None:  # never started: nothing to stop
        return
    kill_tree(proc.pid, grace)
    proc.join(grace)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _death_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        # The harness records its own kills as timeout / out_of_memory; an unexplained SIGKILL is most
        # often the kernel's OOM killer.
        hint = " (possibly the kernel's OOM killer: the machine ran out of memory)" if name == "SIGKILL" else ""
        return f"worker process killed by signal {name}{hint}"
    return f"worker process exited with code {code}"


def _worker_main(conn, env: dict[str, str]) -> None:
    os.environ.update(env)  # before any native library is imported in this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    die_with_parent()  # a parent killed with -9 cannot stop its workers: the kernel does
    # The harness's own imports (optuna, sklearn, the adapter registry) happen before the first job is
    # accepted, so they never count against a job's time limit; model libraries load lazily per adapter.
    import bench.tuning.study  # noqa: F401
    from bench.adapters import load_adapters

    load_adapters()
    for module in _PRELOAD:  # what bench.preprocessing, bench.metrics and bench.splits import when used
        importlib.import_module(module)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(("started", None))
        conn.send(("done", execute_logged(job, on_trial=lambda line: conn.send(("trial", line)))))
