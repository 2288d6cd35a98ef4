"""A job killed mid-tuning and run again ends with the numbers of an uninterrupted run (issues 17.2,
17.3, 18.6): the same configurations (per-trial sampler seeds, the killed trial re-run under its
number), a record whose validation and test numbers come from one model (the chosen trial's, even when
the clock cut it and it ran in the killed process), the tuning budget continued rather than restarted,
and the resume recorded.

The kills are real SIGKILLs: of the whole sweep (`bench run` and its worker, by the test adapter
test_resume from inside a trial), or of a process running tune() directly."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna

from bench.adapters import TaskInfo, get_adapter
from bench.tuning import Budget, tune
from tests.cli_helpers import without
from tests.test_tuning import _parts

# What legitimately differs between a resumed and an uninterrupted run: clocks, the run folder's
# paths, the random uid of a study, and the resume counts themselves (checked separately).
DIFFERENT = {"fit_seconds", "predict_seconds", "seconds", "finished_at", "tuning_seconds", "job_seconds", "host",
             "cpu_seconds", "device_seconds", "selection_seconds", "study_uid", "log", "ensemble_inputs",
             "deadline_in", "resumes", "restarts"}
KILL_AT_FIT = 6  # the defaults trial and trials 1-4 complete, trial 5 is killed after 2 epochs
SLEEP = 0.3  # per fit, in the killed process only: a lower bound of its tuning seconds


def _same(value):
    return without(value, DIFFERENT)


def _sweep(suite: Path, out: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "bench.cli", "run", "--suite", str(suite), "--models", "test_resume,linear",
            "--trials", "8", "--tune-seconds", "3600", "--time-limit", "none", "--splits", "1", "--jobs", "1",
            "--threads", "1", "--out", str(out), "--quiet"]
    # its own process group: the adapter's kill -9 of the sweep must not reach pytest
    return subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600,
                          start_new_session=True)


def _records(out: Path) -> dict[str, dict]:
    return {p.relative_to(out).as_posix(): json.loads(p.read_text()) for p in sorted((out / "records").rglob("*.json"))}


def _study(out: Path) -> optuna.Study:
    (db,) = (out / "optuna").glob("wine__test_resume__*.db")
    return optuna.load_study(study_name=db.stem, storage=f"sqlite:///{db}")


def test_kill_9_mid_tuning_then_rerun_gives_every_number_of_an_uninterrupted_run(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\n[protocol]\nfolds = 2\nseed = 0\n[[datasets]]\nembedded = "wine"\n')
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert _sweep(suite, whole).returncode == 0

    killed = _sweep(suite, resumed, {"BENCH_TEST_KILL_AT_FIT": str(KILL_AT_FIT), "BENCH_TEST_KILL_GROUP": "1",
                                     "BENCH_TEST_FIT_SLEEP": str(SLEEP)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    study = _study(resumed)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5 + ["RUNNING"]  # killed mid-trial 5
    first_process = sum(t.duration.total_seconds() for t in study.trials[:5])  # its tuning: at least these
    assert first_process >= (KILL_AT_FIT - 1) * SLEEP

    again = _sweep(suite, resumed)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    a, b = _records(whole), _records(resumed)
    assert a.keys() == b.keys() and len(a) == 7  # 2 models x 3 variants + the cross-model ensemble
    for path, record in a.items():
        assert record["status"] == "ok", record.get("error")
        assert _same(b[path]) == _same(record), path  # every number: scores, params, trials, weights, metrics

    tuned, ensemble = b["records/wine/test_resume/r0f0.tuned.json"], b["records/wine/test_resume/r0f0.ensemble.json"]
    # 18.6: the resume is recorded; the killed trial was re-run under its own number
    assert tuned["resumes"] == 1 and a["records/wine/test_resume/r0f0.tuned.json"]["resumes"] == 0
    assert [t["restarts"] for t in tuned["trials"]] == [0, 0, 0, 0, 0, 1, 0, 0]
    assert "RUNNING" not in {t.state.name for t in _study(resumed).trials}
    # 17.2: the tuned trial ran in the killed process and the clock cut it (4 of 40 epochs): its test
    # numbers are that model's, not those of a refit without the deadline
    chosen = tuned["trials"][tuned["trial_number"]]
    assert tuned["trial_number"] < 5 and chosen["end"] == "deadline" and chosen["iterations"] == 4
    assert tuned["test_source"] == "trial" and tuned["test_score"] == chosen["test_score"]
    assert tuned["val_score"] == chosen["value"]
    if ensemble["params"]["weights"] == {str(tuned["trial_number"]): 1.0}:  # the tuned trial alone
        assert ensemble["test"] == tuned["test"]
    # 17.3: tuning_seconds counts both processes
    assert tuned["tuning_seconds"] >= first_process


# --- the tuning budget across a kill, with tune() itself ------------------------------------------

BUDGET = Budget(8, 30.0)


def _tune(ds, storage: str):
    return tune(get_adapter("test_resume"), TaskInfo(ds.task_type, ds.n_classes), _parts(ds), BUDGET, seed=0,
                threads=1, device="cpu", storage=storage, study_name="s")


def _tune_and_die(storage: str, kill_at: int) -> None:
    """In a child process: tune until the adapter kills the process with SIGKILL at its kill_at-th fit."""
    from bench.datasets import make_dataset
    from tests.conftest import synthetic_frame

    os.environ.update(BENCH_TEST_KILL_AT_FIT=str(kill_at), BENCH_TEST_FIT_SLEEP="0.5")
    X, y = synthetic_frame("multiclass", 300, 0)
    _tune(make_dataset("synth-multiclass", X, y, task_type="multiclass"), storage)


def test_a_job_killed_mid_tuning_continues_its_budget_and_sums_its_tuning_seconds(make_ds, tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    child = multiprocessing.get_context("spawn").Process(target=_tune_and_die, args=(storage, 4))
    child.start()
    child.join(300)
    assert child.exitcode == -signal.SIGKILL
    killed = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.state.name for t in killed] == ["COMPLETE"] * 3 + ["RUNNING"]
    durations = [t.duration.total_seconds() for t in killed[:3]]
    on_clock = sum(durations[1:])  # trials 1 and 2 ran (and slept 0.5 s each) on the tuning clock

    out = _tune(make_ds("multiclass"), storage)
    # The first fit of this process had what was left of the budget, not a fresh one.
    first_fit = min((t for t in optuna.load_study(study_name="s", storage=storage).trials[3:]
                     if "fit_info" in t.user_attrs), key=lambda t: t.datetime_start)
    assert first_fit.user_attrs["fit_info"]["deadline_in"] <= BUDGET.seconds - on_clock
    assert out.tuning_seconds >= sum(durations) >= 3 * 0.5  # both processes' tuning
    trials = optuna.load_study(study_name="s", storage=storage)
    assert out.resumes == 1 and len(trials.trials) == 8 and trials.trials[3].user_attrs["restarts"] == 1
    progress = trials.user_attrs["progress:"]
    assert progress["processes"] == 2 and progress["clock_seconds"] >= on_clock


def test_a_trial_that_kills_its_process_again_and_again_is_failed_not_rerun(make_ds, tmp_path):
    """A configuration whose run kills the process (memory, a native crash) must not take the job
    down for ever: after MAX_RESTARTS re-runs it is marked failed."""
    from bench.tuning.progress import MAX_RESTARTS

    storage, ds = f"sqlite:///{tmp_path / 's.db'}", make_ds("multiclass")
    study = optuna.create_study(storage=storage, study_name="s", direction="minimize")
    study.enqueue_trial({"lr": 0.01, "l2": 1e-3}, user_attrs={"is_default": True})
    trial = study.ask()
    trial.set_user_attr("restarts", MAX_RESTARTS)  # killed twice already, now a third time
    out = _tune(ds, storage)
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert trials[0].state.name == "FAIL" and "died 3 times" in trials[0].user_attrs["error"]
    assert "default" in out.failures and "died 3 times" in out.failures["default"]
