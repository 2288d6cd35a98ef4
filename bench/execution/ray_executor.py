"""Executor on a Ray cluster (optional extra: pip install 'tabular-bench[ray]').

Each job is one Ray task that runs exactly what a local worker runs (bench.execution.joblog.execute_logged), so
the records are the same; the driver (this process) is still the only writer of records and writes
them into the same ResultStore, failure records included. Ray does the scheduling: `num_cpus` = the
job's threads, one GPU for `cuda` jobs (Ray pins the device through CUDA_VISIBLE_DEVICES itself).

Time limit: as with local workers, a job's clock starts when the task says it began (after the Ray
worker started and imported the harness), through a small actor that notes start times; a task past
its limit is cancelled with force (its worker process is killed) and recorded as `timeout`. The
driver keeps only as many tasks in flight as the cluster has room for, in plan order. A task whose
worker dies is `crashed`; one that Ray's memory monitor kills is `out_of_memory`. `--memory-limit`
is passed to Ray as the task's memory request (used for placement); hard enforcement is Ray's memory
monitor, per node.
Job logs are written by the worker under the run directory, so on a multi-node cluster the run
directory must be on a shared file system (as it must for the materialized data anyway). Records of
jobs that ran carry `ray_node`, the id of the Ray node that ran them (tests/test_ray_multinode.py
checks a sweep spread over two nodes against the local executor's records).
"""

from __future__ import annotations

import time
from collections import deque

from bench.errors import BenchError
from bench.execution.joblog import execute_logged, with_log
from bench.execution.jobs import Job, failure_records
from bench.execution.resources import worker_environment
from bench.execution.runner import Recorder, SweepSummary, pending_jobs
from bench.records.store import ResultStore
from bench.vocabulary import Status

POLL_SECONDS = 0.5


def _ray():
    try:
        import ray
    except ImportError:
        raise BenchError("--executor ray needs Ray: pip install 'tabular-bench[ray]'") from None
    return ray


def _run_job(job: Job, start_times) -> list[dict]:
    import ray

    import bench.tuning.study  # noqa: F401  (the harness's imports do not count against the time limit)
    from bench.adapters import load_adapters

    load_adapters()
    ray.get(start_times.mark.remote(job.job_id))
    node = ray.get_runtime_context().get_node_id()
    # Which Ray node ran the job: `host` cannot tell nodes of one machine apart (and names no Ray node).
    return [{**r, "ray_node": node} for r in execute_logged(job)]


class _StartTimes:
    """When each job's task began running (wall clock of the node it runs on)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def mark(self, job_id: str) -> None:
        self.started[job_id] = time.time()

    def get(self) -> dict[str, float]:
        return self.started


def run_ray(jobs: list[Job], store: ResultStore, *, address: str | None = None, time_limit: float | None = None,
            memory_limit_gb: float | None = None, retry_failed: bool = False, progress=None) -> SweepSummary:
    ray = _ray()
    summary = SweepSummary()
    pending = pending_jobs(jobs, store, retry_failed, summary)
    finished = Recorder(store, summary, progress)
    start = time.perf_counter()
    if not pending:
        return summary
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except Exception as exc:
            raise BenchError(f"cannot start or join Ray at {address or 'a new local instance'}: {exc}") from None
    try:
        _Driver(ray, time_limit, memory_limit_gb).run(pending, finished)
    finally:
        if started_here:
            ray.shutdown()
    summary.seconds = time.perf_counter() - start
    return summary


class _Driver:
    def __init__(self, ray, time_limit: float | None, memory_limit_gb: float | None):
        self.ray, self.time_limit = ray, time_limit
        self.memory = int(memory_limit_gb * 1e9) if memory_limit_gb else None
        # max_retries=0: a crash is a result to record, as it is locally, not something to hide.
        self.task = ray.remote(max_retries=0)(_run_job)
        self.start_times = ray.remote(num_cpus=0)(_StartTimes).remote()

    def _capacity(self) -> dict[str, float]:
        total = self.ray.cluster_resources()
        return {"cpu": total.get("CPU", 1.0), "cuda": total.get("GPU", 0.0)}

    def _submit(self, job: Job, capacity: dict[str, float]):
        # A request larger than the whole cluster would wait forever ("infeasible"): cap it.
        # Ray workers inherit their node's environment, not the driver's: the sweep's settings go along.
        options = {"num_cpus": min(job.threads, capacity["cpu"]), "num_gpus": 1 if job.device == "cuda" else 0,
                   "runtime_env": {"env_vars": worker_environment(job.threads)}}
        if self.memory:
            options["memory"] = self.memory
        return self.task.options(**options).remote(job, self.start_times)

    def run(self, jobs: list[Job], finished) -> None:
        queue = deque(jobs)
        capacity = self._capacity()
        if any(j.device == "cuda" for j in jobs) and capacity["cuda"] < 1:
            raise BenchError("jobs are planned for a GPU but the Ray cluster has no GPU")
        in_flight: dict = {}  # object ref -> job
        used = {"cpu": 0.0, "cuda": 0.0}
        try:
            while queue or in_flight:
                # Submit while the cluster has room, in plan order; a job that does not fit waits.
                while queue:
                    job = queue[0]
                    need_cpu, need_gpu = min(job.threads, capacity["cpu"]), 1 if job.device == "cuda" else 0
                    fits = (used["cpu"] + need_cpu <= capacity["cpu"] and used["cuda"] + need_gpu <= capacity["cuda"])
                    if not fits and in_flight:
                        break
                    queue.popleft()
                    in_flight[self._submit(job, capacity)] = job
                    used["cpu"] += need_cpu
                    used["cuda"] += need_gpu
                ready, _ = self.ray.wait(list(in_flight), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    job = in_flight.pop(ref)
                    finished(job, self._result(ref, job))
                    self._release(used, job, capacity)
                if self.time_limit and in_flight:
                    started, now = self.ray.get(self.start_times.get.remote()), time.time()
                    for ref, job in list(in_flight.items()):
                        if job.job_id in started and now - started[job.job_id] > self.time_limit:
                            self.ray.cancel(ref, force=True)
                            del in_flight[ref]
                            self._release(used, job, capacity)
                            message = f"job ran past its time limit of {self.time_limit:.0f}s"
                            finished(job, with_log(failure_records(job, Status.TIMEOUT, "TimeLimit", message),
                                                   job.log_path))
        finally:
            for ref in in_flight:
                self.ray.cancel(ref, force=True)

    @staticmethod
    def _release(used: dict, job: Job, capacity: dict[str, float]) -> None:
        used["cpu"] -= min(job.threads, capacity["cpu"])
        used["cuda"] -= 1 if job.device == "cuda" else 0

    def _result(self, ref, job: Job) -> list[dict]:
        exc_types = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exc_types.OutOfMemoryError as exc:
            status, kind, message = Status.OUT_OF_MEMORY, "MemoryLimitExceeded", _first_line(exc)
        except (exc_types.WorkerCrashedError, exc_types.NodeDiedError, exc_types.LocalRayletDiedError) as exc:
            status, kind, message = Status.CRASHED, "WorkerDied", f"Ray worker died: {_first_line(exc)}"
        except exc_types.RayTaskError as exc:  # the harness itself raised inside the task
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            status, kind, message = Status.FAILED, type(cause).__name__, _first_line(cause)
        return with_log(failure_records(job, status, kind, message), job.log_path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
