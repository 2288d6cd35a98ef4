"""The heartbeat of a running sweep: a line per finished trial in the job's log and from the parent, and an
ETA from per-model median job times."""

import re

import pytest

from bench.execution.heartbeat import Eta, eta_seconds, trial_line
from bench.execution.runner import run_local
from tests.test_runner import _jobs

LINE = re.compile(r"^(\S+) trial (\d+)( \(defaults\))?: (\S+) \((\w+)\) in [\d.]+s; job [\d.]+s$")


def test_eta_sums_per_model_medians_over_the_remaining_jobs():
    durations = {"linear": [1.0, 2.0, 9.0], "mlp": [100.0, 120.0]}  # medians 2 and 110
    assert eta_seconds(durations, ["linear", "linear", "mlp"]) == pytest.approx(2 + 2 + 110)
    assert eta_seconds(durations, ["linear", "linear", "mlp"], workers=2) == pytest.approx(57)
    # a model with no finished job yet counts the median of every finished job (9.0 here)
    assert eta_seconds(durations, ["xgboost"]) == pytest.approx(9.0)
    assert eta_seconds(durations, []) == 0
    assert eta_seconds({}, ["linear"]) is None  # nothing finished: no estimate


def test_eta_follows_the_jobs_as_they_finish():
    eta = Eta(["linear", "linear", "linear", "mlp", "mlp"])
    assert eta.pending() == 5 and eta.seconds() is None
    eta.done("linear", [{"job_seconds": 1.0}, {"job_seconds": 1.5}])  # a job's variants: its longest
    assert eta.seconds() == pytest.approx(2 * 1.5 + 2 * 1.5)  # mlp has no finished job: all jobs' median
    eta.done("mlp", [{"job_seconds": 60.0}])
    eta.done("mlp", [{"status": "timeout"}])  # a failure without a time: finished, but no duration
    assert eta.pending() == 2
    assert eta.seconds() == pytest.approx(2 * 1.5)
    # a global rate (elapsed / jobs done) would say 3 * (62.5 / 3) here; the medians say 3 s


def test_trial_line_names_the_trial_its_value_end_and_times():
    line = trial_line("wine/mlp/r0f1", {"number": 3, "value": 0.123456789, "end": "early_stopped",
                                        "seconds": 2.25, "is_default": False}, 14.04)
    assert line == "wine/mlp/r0f1 trial 3: 0.123457 (early_stopped) in 2.2s; job 14.0s"
    failed = trial_line("wine/mlp/r0f1", {"number": 0, "value": None, "end": "failed", "seconds": 0.5,
                                          "is_default": True}, 1.0)
    assert failed == "wine/mlp/r0f1 trial 0 (defaults): no value (failed) in 0.5s; job 1.0s"


def test_each_finished_trial_is_a_line_in_the_job_log_and_reaches_the_parent(make_ds, tmp_path):
    jobs, store = _jobs(tmp_path, [make_ds("binary", n=120)], ["test_prior"], trials=3)
    heard = []
    run_local(jobs, store, workers=1, heartbeat=lambda job, line: heard.append((job.job_id, line)))
    for job in jobs:
        lines = [m.groups() for line in job.log_path.read_text().splitlines() if (m := LINE.match(line))]
        assert [(g[0], int(g[1]), bool(g[2])) for g in lines] == [(job.job_id, n, n == 0) for n in range(3)]
        assert all(g[4] in ("converged", "early_stopped", "max_iterations", "deadline") for g in lines)
        assert [line for job_id, line in heard if job_id == job.job_id] == \
            [line for line in job.log_path.read_text().splitlines() if LINE.match(line)]
