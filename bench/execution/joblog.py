"""Per-job log files: everything a job prints or logs goes to <run>/logs/<dataset>/<model>/r<R>f<F>.log.

Capture is at the file-descriptor level (dup2 onto fds 1 and 2), so output that native code writes
straight to the descriptors (XGBoost, LightGBM and CatBoost warnings, CUDA messages) lands in the
file too, not only Python's sys.stdout. The file is appended to: a job that is retried or resumed
keeps the earlier attempt's lines above a header naming the new attempt. Each finished trial adds a
line (model, trial, value, how it ended, seconds; bench.execution.heartbeat), so a long job's log says
where it stands.

Before a job starts, every place it will write in the run folder (its log, its predictions file, its
SQLite study) is checked with bench.safe_files: a symbolic link on the way makes the job a failure
record naming the link instead of a write outside the run folder (`bench run` refuses a run folder
holding links before any job starts; this catches one made while the sweep runs).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bench.safe_files import UnsafePathError, confined, open_in_place
from bench.vocabulary import FAILURES

TAIL_LINES = 20


@contextmanager
def captured_output(path: Path, run_dir: Path, header: str = ""):
    """Everything written to fds 1 and 2 goes to the log `path` inside the run folder `run_dir`."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = open_in_place(path, run_dir, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    saved = os.dup(1), os.dup(2)
    handler = logging.StreamHandler(sys.stderr)  # writes through fd 2, i.e. into the file
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    try:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.write(fd, f"=== {stamp} pid {os.getpid()} {header}\n".encode())
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        root.addHandler(handler)
        root.setLevel(min(old_level or logging.WARNING, logging.INFO))
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = 16_384) -> str:
    """The last lines of a log (bounded read: logs of long jobs can be large)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def with_log(records: list[dict], path: Path) -> list[dict]:
    """Every record names its job's log; failures also carry the log's last lines."""
    last = None
    for r in records:
        r["log"] = str(path)
        if r.get("status") in FAILURES:
            last = tail(path) if last is None else last
            r["log_tail"] = last
    return records


def job_files(job) -> list[Path]:
    """Where a job writes in its run folder: its log, its predictions file (and the parts folder of a
    job that is tuning), its SQLite study (none with a shared storage)."""
    files = [job.log_path, job.predictions_path, job.predictions_path.with_suffix(".parts")]
    return files + ([] if job.storage else [job.study_file])


def execute_logged(job, on_trial: Callable[[str], None] | None = None) -> list[dict]:
    """execute_job with the job's output captured into its log file (what every executor runs). Each
    finished trial's line (bench.execution.heartbeat.trial_line) goes into the log and to `on_trial`
    (a worker sends it to the parent, which prints it)."""
    from bench.execution.heartbeat import trial_line
    from bench.execution.jobs import execute_job, failure_records
    from bench.vocabulary import Status

    try:
        for path in job_files(job):
            confined(path, job.run_dir)
    except UnsafePathError as exc:  # (no log tail: the log itself may be the link)
        return [{**r, "log": str(job.log_path)} for r in failure_records(job, Status.FAILED, type(exc).__name__,
                                                                        str(exc))]
    header = (f"job {job.job_id} device={job.device} threads={job.threads} "
              f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}")
    started = time.perf_counter()

    def heartbeat(trial: dict) -> None:
        line = trial_line(job.job_id, trial, time.perf_counter() - started)
        print(line, flush=True)  # fd 1 is the job's log here
        if on_trial is not None:
            on_trial(line)

    with captured_output(job.log_path, Path(job.run_dir), header):
        records = execute_job(job, on_trial=heartbeat)
    return with_log(records, job.log_path)
