"""kill -9 of a whole sweep midway, then the same command again: nothing completed is lost or redone."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.records.store import ResultStore

N_JOBS = 12  # 3 datasets x 4 folds x 1 model (no search space: one "default" record per job)


def _command(suite: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "run", "--suite", str(suite), "--models", "test_marker",
            "--trials", "1", "--jobs", "2", "--threads", "1", "--out", str(out), "--quiet"]


def test_kill_9_midway_then_rerun_loses_and_repeats_nothing(tmp_path):
    suite = tmp_path / "kill.toml"
    suite.write_text('name = "kill"\n[protocol]\nfolds = 4\nseed = 0\n'
                     '[[datasets]]\nembedded = "wine"\n[[datasets]]\nembedded = "breast_cancer"\n'
                     '[[datasets]]\nembedded = "diabetes"\n')
    out, marker = tmp_path / "run", tmp_path / "executions.txt"
    env = {**os.environ, "BENCH_TEST_MARKER": str(marker), "BENCH_TEST_MARKER_SLEEP": "0.7"}
    records_dir = out / "records"

    proc = subprocess.Popen(_command(suite, out), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(list(records_dir.rglob("*.json"))) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the sweep produced no records in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, with no chance to clean up
    proc.wait()
    before = {p: p.read_bytes() for p in records_dir.rglob("*.json")}
    assert 3 <= len(before) < N_JOBS, "kill came too late to test a resume"

    # A torn record of a job that is not done (as a crash in the middle of a plain write would leave)
    # is not taken for a finished job: the rerun runs that job and replaces the file.
    every_record = [records_dir / d / "test_marker" / f"r0f{f}.default.json"
                    for d in ("wine", "breast_cancer", "diabetes") for f in range(4)]
    torn = next(p for p in every_record if p not in before)
    torn.parent.mkdir(parents=True, exist_ok=True)
    torn.write_text('{"job_id": "x", "status": "o')

    rerun = subprocess.run(_command(suite, out), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert f"{N_JOBS - len(before)} jobs run, {len(before)} already done" in " ".join(rerun.stdout.split())

    files = sorted(records_dir.rglob("*.json"))
    records = [json.loads(p.read_text()) for p in files]  # every record file parses
    assert len(records) == N_JOBS and len({r["job_id"] for r in records}) == N_JOBS
    assert {r["status"] for r in records} == {"ok"}
    assert len(ResultStore(out).load_all()) == N_JOBS  # leftover temp files are never read as records
    for path, content in before.items():  # records written before the kill were not touched
        assert path.read_bytes() == content
    executions = Counter(marker.read_text().split())
    for r in records:  # the execution that produced each record happened exactly once
        assert executions[r["fit_info"]["marker_token"]] == 1
    # jobs done before the kill ran once; at most the two in flight at the kill ran a second time
    assert N_JOBS <= sum(executions.values()) <= N_JOBS + 2
