"""One sweep per run folder (defect 7), and SIGTERM / SIGHUP stop a sweep with its workers and their
children so that the rerun resumes exactly (defect 8), as tests/test_resume_kill.py does for kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil

from tests.cli_helpers import data_file, run_cli, suite_file


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process holding the run folder's lock (as a running `bench run` does)."""
    code = ("import sys, time\nfrom bench.execution.lock import RunLock\n"
            "RunLock(sys.argv[1]).acquire()\nprint('locked', flush=True)\ntime.sleep(600)\n")
    run_dir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_run_on_a_folder_exits_2_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path, capsys):
    data_file(tmp_path / "d.parquet", "binary", n=60)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    out = tmp_path / "run"
    args = ["run", "--suite", suite, "--models", "dummy", "--jobs", 0, "--out", out, "--quiet"]
    holder = _hold_lock(out)
    try:
        code, text = run_cli(capsys, *args)
        assert code == 2 and f"pid {holder.pid}" in text and "host" in text and "started" in text, text
        assert not (out / "records").exists() and not (out / "run.json").exists()
    finally:
        holder.kill()  # dies without releasing: the lock file still names it
        holder.wait()
    code, text = run_cli(capsys, *args)
    assert code == 0 and "took over the lock file" in text and f"pid {holder.pid}" in text, text
    code, text = run_cli(capsys, *args)  # a finished run leaves nothing to take over
    assert code == 0 and "took over" not in text


def _sweep(suite: Path, out: Path, model: str, jobs: int) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "run", "--suite", str(suite), "--models", model, "--trials", "1",
            "--jobs", str(jobs), "--threads", "1", "--out", str(out), "--quiet"]


def _wait_for(condition, proc, what: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _all_gone(pids, seconds: float = 10) -> bool:
    """(multiprocessing's resource tracker, one of the parent's children, ends on its own just after it)"""
    deadline = time.monotonic() + seconds
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return all(_gone(p) for p in pids)


def test_sigterm_stops_the_workers_and_the_rerun_resumes_exactly(tmp_path):
    n_jobs = 6  # 2 datasets x 3 folds x 1 model without a search space
    for name in ("a", "b"):
        data_file(tmp_path / f"{name}.parquet", "binary", n=90, seed=ord(name))  # two datasets, not one twice
    suite = suite_file(tmp_path / "s.toml", {"a": ("a.parquet", "binary"), "b": ("b.parquet", "binary")}, folds=3)
    out, marker = tmp_path / "run", tmp_path / "executions.txt"
    env = {**os.environ, "BENCH_TEST_MARKER": str(marker), "BENCH_TEST_MARKER_SLEEP": "0.7"}
    records_dir = out / "records"
    proc = subprocess.Popen(_sweep(suite, out, "test_marker", 2), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _wait_for(lambda: len(list(records_dir.rglob("*.json"))) >= 2, proc, "the first records")
    workers = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    os.kill(proc.pid, signal.SIGTERM)  # the parent only, as a scheduler or `kill` does
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert len(workers) >= 2 and _all_gone(workers)
    before = {p: p.read_bytes() for p in records_dir.rglob("*.json")}
    assert 2 <= len(before) < n_jobs, "the signal came too late to test a resume"
    assert json.loads((out / ".bench-run.lock").read_text() or "{}") == {}  # released

    rerun = subprocess.run(_sweep(suite, out, "test_marker", 2), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert f"{n_jobs - len(before)} jobs run, {len(before)} already done" in " ".join(rerun.stdout.split())
    records = [json.loads(p.read_text()) for p in sorted(records_dir.rglob("*.json"))]
    assert len(records) == n_jobs and {r["status"] for r in records} == {"ok"}
    for path, content in before.items():
        assert path.read_bytes() == content
    executions = Counter(marker.read_text().split())
    for r in records:
        assert executions[r["fit_info"]["marker_token"]] == 1
    assert n_jobs <= sum(executions.values()) <= n_jobs + 2  # at most the two in flight ran twice


def test_sighup_stops_the_process_tree_of_a_busy_worker(tmp_path):
    data_file(tmp_path / "a.parquet", "binary", n=60)
    suite = suite_file(tmp_path / "s.toml", {"a": ("a.parquet", "binary")})
    tree = tmp_path / "tree.txt"
    proc = subprocess.Popen(_sweep(suite, tmp_path / "run", "test_tree", 1),
                            env={**os.environ, "BENCH_TEST_TREE": str(tree)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _wait_for(lambda: tree.exists() and tree.read_text().endswith("\n"), proc, "the job's child process")
    worker, child = map(int, tree.read_text().split())
    assert not _gone(child)
    os.kill(proc.pid, signal.SIGHUP)
    assert proc.wait(timeout=60) == 128 + signal.SIGHUP
    assert _all_gone([worker, child])
    assert not list((tmp_path / "run" / "records").rglob("*.json"))  # the stopped job is not recorded
