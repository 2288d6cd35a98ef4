"""Declared budgets: the defaults trial's own track, trial ends and costs, samplers, record fields."""

import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bench.adapters import TaskInfo
from bench.errors import BenchError
from bench.execution.jobs import execute_job
from bench.execution.sweep import SweepConfig, plan_jobs
from bench.records.schema import trial_counts
from bench.records.store import ResultStore
from bench.tuning import Budget, tune
from bench.vocabulary import TrialEnd
from tests.fault_adapters import _Prior
from tests.test_splits import Protocol
from tests.test_tuning import _parts

CALLS: list[dict] = []


class _Spy(_Prior):
    """Records each fit's context; the defaults (shrink = 0.5) can be made slow or busy."""

    name = "spy_budget"
    default_sleep = 0.0

    def fit(self, X_train, y_train, X_val, y_val):
        is_default = self.params["shrink"] == self.defaults["shrink"]
        CALLS.append({"default": is_default, "deadline": self.ctx.deadline, "report": self.ctx.report,
                      "started": time.monotonic()})
        if is_default:
            time.sleep(self.default_sleep)
        super().fit(X_train, y_train, X_val, y_val)
        CALLS[-1]["ended"] = time.monotonic()


class _SlowDefaults(_Spy):
    default_sleep = 0.6


def _tune(cls, ds, budget, **kw):
    kw = {"seed": 0, "threads": 1, "device": "cpu", "storage": None, "study_name": "s", **kw}
    return tune(cls, TaskInfo(ds.task_type, ds.n_classes), _parts(ds), budget, **kw)


def test_the_defaults_trial_is_its_own_track_and_the_clock_starts_after_it(make_ds):
    """The defaults trial runs past the whole tuning budget (0.6 s > 0.4 s) without a deadline, and
    the tuning trial still gets its 0.4 s, counted from the defaults' end; refits have no deadline."""
    CALLS.clear()
    out = _tune(_SlowDefaults, make_ds("binary", n=120), Budget(2, 0.4), seeds=2)
    assert [t["is_default"] for t in out.trials] == [True, False]
    defaults, tuning = [c for c in CALLS if c["report"] is not None]
    assert defaults["default"] and defaults["deadline"] is None
    assert defaults["ended"] + 0.4 <= tuning["deadline"] <= tuning["started"] + 0.4
    refits = [c for c in CALLS if c["report"] is None]
    assert len(refits) == 2 and all(c["deadline"] is None for c in refits)  # one more seed per variant


def test_unbounded_trials_run_until_the_tuning_seconds_are_spent(make_ds):
    out = _tune(_Spy, make_ds("binary", n=120), Budget(None, 0.5))
    assert len(out.trials) >= 3 and {v.variant for v in out.variants} == {"default", "tuned"}
    assert out.tuning_seconds < 5.0
    with pytest.raises(BenchError, match="--trials none .* needs --tune-seconds"):
        Budget(None, None)
    with pytest.raises(BenchError, match="--trials must be an integer >= 1, got 0"):
        Budget(0)


def test_trials_none_needs_tune_seconds_and_the_cli_takes_none():
    from bench.cli.main import build_parser

    with pytest.raises(BenchError, match="--trials none .* --tune-seconds"):
        SweepConfig(suite="demo", models=["linear"], trials=None)
    assert SweepConfig(suite="demo", models=["linear"], trials=None, tune_seconds=5).trials is None
    args = build_parser().parse_args(["run", "--trials", "none", "--tune-seconds", "5", "--sampler", "random",
                                      "--inner-folds", "3"])
    assert (args.trials, args.tune_seconds, args.sampler, args.inner_folds) == (None, 5.0, "random", 3)
    with pytest.raises(BenchError, match="--sampler must be one of tpe, random, got 'grid'"):
        SweepConfig(suite="demo", models=["linear"], sampler="grid")


class _Steps(_Prior):
    """Reports 3 steps of value `shrink` to the pruner and says how it ended, like a real adapter."""

    name = "spy_steps"

    def fit(self, X_train, y_train, X_val, y_val):
        for step in (1, 2, 3):
            self.ctx.report_value(step, self.params["shrink"])
        super().fit(X_train, y_train, X_val, y_val)
        self.ctx.record_end(TrialEnd.EARLY_STOPPED, iterations=3, best=2, unit="epochs")


class _FailsWhenTuned(_Prior):
    name = "spy_fails_tuned"

    def fit(self, X_train, y_train, X_val, y_val):
        if self.params["shrink"] != self.defaults["shrink"]:
            raise RuntimeError("only the defaults work")
        super().fit(X_train, y_train, X_val, y_val)


def test_every_trial_says_how_it_ended(make_ds):
    ds = make_ds("binary", n=120)
    out = _tune(_Steps, ds, Budget(14))
    ends = {t["end"] for t in out.trials}
    assert ends == {TrialEnd.EARLY_STOPPED, TrialEnd.PRUNED}, ends  # TPE prunes the low values
    for t in out.trials:
        if t["end"] == TrialEnd.PRUNED:
            assert t["iterations"] == t["last_step"] and t["best_iteration"] is None
        else:
            assert (t["iterations"], t["best_iteration"]) == (3, 2)
        assert t["iteration_unit"] == "epochs" and t["cpu_seconds"] >= 0 and t["fits"] == 1
    silent = _tune(_Prior, ds, Budget(2))  # an adapter that never calls record_end
    assert [(t["end"], t["iterations"]) for t in silent.trials] == [(TrialEnd.CONVERGED, None)] * 2
    failing = _tune(_FailsWhenTuned, ds, Budget(3))
    assert [t["end"] for t in failing.trials] == [TrialEnd.CONVERGED, TrialEnd.FAILED, TrialEnd.FAILED]
    assert failing.only_defaults and not silent.only_defaults


def test_random_search_never_prunes(make_ds):
    out = _tune(_Steps, make_ds("binary", n=120), Budget(14, sampler="random"))
    assert all(t["state"] == "COMPLETE" for t in out.trials)
    with pytest.raises(BenchError, match="--sampler must be one of tpe, random, got 'grid'"):
        Budget(2, sampler="grid")


def test_tpe_starts_with_the_draws_of_random_search(make_ds):
    """What README and bench.tuning.samplers state: TPE's startup trials are random search's draws."""
    ds = make_ds("binary", n=120)
    runs = [[t["params"] for t in _tune(_Prior, ds, Budget(12, sampler=s)).trials] for s in ("random", "tpe")]
    assert runs[0][:10] == runs[1][:10] and runs[0][10:] != runs[1][10:]


class _Work(_Prior):
    """Busy (CPU) in the defaults trial, asleep in the others: CPU seconds tell them apart."""

    name = "spy_work"

    def fit(self, X_train, y_train, X_val, y_val):
        start = time.process_time()
        if self.params["shrink"] == self.defaults["shrink"]:
            while time.process_time() - start < 0.2:
                np.sqrt(np.arange(1000.0))
        else:
            time.sleep(0.2)
        super().fit(X_train, y_train, X_val, y_val)


def _job(tmp_path, ds, model, trials=3, **config):
    store = ResultStore(tmp_path / "run")
    suite = SimpleNamespace(name="t", protocol=Protocol(folds=2, repeats=1))
    loaded = [SimpleNamespace(dataset=ds, task_splits=None)]
    cfg = SweepConfig(suite="t", models=["test_prior"], out=store.run_dir, trials=trials, device="cpu", **config)
    job = plan_jobs(cfg, suite, loaded, store)[0]
    from dataclasses import replace

    return replace(job, model=model)


def test_records_carry_trial_counts_costs_and_the_declared_budget(make_ds, tmp_path):
    job = _job(tmp_path, make_ds("binary", n=120), "spy_work", sampler="random")
    records = {r["variant"]: r for r in execute_job(job, _Work)}
    assert {r["status"] for r in records.values()} == {"ok"}
    default, tuned = records["default"], records["tuned"]
    trials = tuned["trials"]
    assert tuned["trial_counts"] == trial_counts(trials) == {"total": 3, "completed": 3, "pruned": 0,
                                                             "deadline": 0, "failed": 0}
    assert trials[0]["cpu_seconds"] >= 0.2 and all(t["cpu_seconds"] < 0.2 for t in trials[1:])
    assert all(t["seconds"] >= 0.2 for t in trials)
    assert tuned["only_defaults"] is False and default["only_defaults"] is None
    assert default["device_seconds"]["cpu"] >= trials[0]["cpu_seconds"]
    assert tuned["device_seconds"]["cpu"] >= sum(t["cpu_seconds"] for t in trials)
    assert tuned["device_seconds"]["cpu"] < sum(t["cpu_seconds"] for t in trials) + 0.15  # no refits: 1 seed
    assert default["device_seconds"]["gpu"] == tuned["device_seconds"]["gpu"] == 0.0  # a CPU job
    assert tuned["budget"] == {"trials": 3, "seconds": None, "sampler": "random", "pruner": "none",
                               "inner_folds": 1, "time_limit": None, "pack": 1}


def test_a_tuned_record_whose_tuning_trials_all_failed_says_only_defaults(make_ds, tmp_path):
    job = _job(tmp_path, make_ds("binary", n=120), "spy_fails_tuned")
    records = {r["variant"]: r for r in execute_job(job, _FailsWhenTuned)}
    tuned = records["tuned"]
    assert tuned["status"] == "ok" and tuned["only_defaults"] is True and tuned["trial_number"] == 0
    assert tuned["trial_counts"]["failed"] == 2 and tuned["budget"]["pruner"] == "median"


def test_sampler_and_inner_folds_are_part_of_the_run_identity(tmp_path):
    from types import SimpleNamespace

    from bench.suites import Protocol

    suite = SimpleNamespace(name="t", protocol=Protocol())
    store = ResultStore(tmp_path / "run")
    store.write_config(store.check_config(SweepConfig(suite="t", models=["linear"]).identity(suite))[0])
    with pytest.raises(BenchError, match="sampler: 'tpe' -> 'random'"):
        store.check_config(SweepConfig(suite="t", models=["linear"], sampler="random").identity(suite))
    with pytest.raises(BenchError, match="inner_folds: 1 -> 5"):
        store.check_config(SweepConfig(suite="t", models=["linear"], inner_folds=5).identity(suite))


def test_the_job_time_limit_is_part_of_the_run_identity(tmp_path, capsys):
    """--time-limit decides which trials the clock cuts and which jobs time out: a folder holds one.
    Rerunning with another limit is refused like another budget; a folder whose run.json predates the
    field takes the limit of its next run."""
    from bench.suites import Protocol
    from tests.cli_helpers import data_file, records, run_cli, suite_file

    suite = SimpleNamespace(name="t", protocol=Protocol())
    store = ResultStore(tmp_path / "run")
    config = store.check_config(SweepConfig(suite="t", models=["linear"], time_limit=600).identity(suite))[0]
    assert config["time_limit"] == 600
    store.write_config(config)
    with pytest.raises(BenchError, match=r"time_limit: 600 -> 1200"):
        store.check_config(SweepConfig(suite="t", models=["linear"], time_limit=1200).identity(suite))
    with pytest.raises(BenchError, match=r"time_limit: 600 -> None"):
        store.check_config(SweepConfig(suite="t", models=["linear"], time_limit=None).identity(suite))
    del config["time_limit"]  # a folder made before the limit was recorded
    store.write_config(config)
    assert store.check_config(SweepConfig(suite="t", models=["linear"], time_limit=1200).identity(suite))[0][
        "time_limit"] == 1200

    data_file(tmp_path / "b.parquet", "binary", n=100)
    suite_path = suite_file(tmp_path / "s.toml", {"b": ("b.parquet", "binary")})
    args = ["run", "--suite", suite_path, "--models", "test_prior", "--trials", 2, "--jobs", 0, "--splits", 1,
            "--out", tmp_path / "cli", "--quiet"]
    code, text = run_cli(capsys, *args, "--time-limit", 300)
    assert code == 0, text
    assert {r["budget"]["time_limit"] for r in records(tmp_path / "cli").values()} == {300}
    code, text = run_cli(capsys, *args, "--time-limit", 900)
    assert code == 2 and "holds a run with other settings (time_limit: 300.0 -> 900.0)" in text, text
    assert run_cli(capsys, *args, "--time-limit", 300)[0] == 0  # the same limit resumes


class _UntilDeadline(_Prior):
    """An iterative learner too slow for any limit: steps until its deadline (at most 20 s), then stops
    with what it has, as the harness's iterative adapters do."""

    name = "spy_until_deadline"

    def fit(self, X_train, y_train, X_val, y_val):
        CALLS.append({"default": self.params["shrink"] == self.defaults["shrink"], "deadline": self.ctx.deadline})
        give_up = time.monotonic() + 20
        while not self.ctx.deadline_passed() and time.monotonic() < give_up:
            time.sleep(0.02)
        super().fit(X_train, y_train, X_val, y_val)
        self.ctx.record_end(TrialEnd.DEADLINE if self.ctx.deadline_passed() else TrialEnd.MAX_ITERATIONS)


def test_fits_stop_before_the_job_time_limit_with_a_reserve():
    from bench.execution.jobs import job_limit_deadline

    assert job_limit_deadline(None, 100.0) is None
    assert job_limit_deadline(600, 100.0) == 100 + 540  # 10% reserve
    assert job_limit_deadline(100, 0.0) == 70  # at least 30 s
    assert job_limit_deadline(20, 0.0) == 10  # at most half the limit


def test_the_job_time_limit_cuts_the_defaults_trial_visibly(make_ds, tmp_path):
    """A model slower than --time-limit stops before it with its best state: an ok record whose
    defaults trial ended `deadline`, counted as clock-cut in the leaderboard's columns and warnings,
    instead of a timeout with nothing. No tuning trial starts after the limit."""
    from bench.analysis.budget import budget_warnings, entry_budget

    CALLS.clear()
    job = _job(tmp_path, make_ds("binary", n=120), "spy_until_deadline", trials=3, time_limit=4.0)
    started = time.monotonic()
    records = {r["variant"]: r for r in execute_job(job, _UntilDeadline)}
    # The fit stops at the limit less its reserve (half of a 4 s limit), not at the adapter's own 20 s.
    assert [c["default"] for c in CALLS] == [True] and started + 1.5 < CALLS[0]["deadline"] <= started + 2.5
    assert {r["status"] for r in records.values()} == {"ok"}
    default, tuned = records["default"], records["tuned"]
    assert [t["end"] for t in default["trials"]] == [TrialEnd.DEADLINE] and tuned["only_defaults"] is True
    store = ResultStore(job.run_dir)
    store.write(list(records.values()))
    frame = store.frame()
    assert dict(zip(frame.variant, frame.clock_cut)) == {"default": 1, "tuned": 1, "ensemble": 1}
    table = entry_budget(frame).set_index("variant")
    assert table.loc["default", "clock_cut"] == 1 and pd.isna(table.loc["default", "only_defaults"])
    warnings = budget_warnings(frame)
    assert any(w.startswith("spy_until_deadline/default: 1 of 1 defaults trial cut by the job's time limit")
               for w in warnings)


def test_without_a_time_limit_the_defaults_trial_has_no_deadline(make_ds, tmp_path):
    CALLS.clear()
    job = _job(tmp_path, make_ds("binary", n=120), "spy_work", trials=1)
    assert job.budget.time_limit is None
    execute_job(job, _Spy)
    assert [c["deadline"] for c in CALLS] == [None]
