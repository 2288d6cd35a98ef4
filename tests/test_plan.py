"""`bench plan` arithmetic on a hand-made run folder with known costs (bench.analysis.costs,
bench.workflows.plan)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pandas as pd
import pytest

from bench.analysis.costs import CostModel, JobBudget, data_size, job_seconds, measure
from bench.workflows import plan
from tests.hand_records import record, trial, write_run

# dataset -> rows, defaults trial seconds, other trials' seconds, job seconds (10 s overhead each)
KNOWN = {"a": (100, 4.0, (2.0, 4.0), 20.0), "b": (400, 16.0, (12.0, 12.0), 50.0)}


def _trials(defaults: float, others) -> list[dict]:
    out = [dict(trial(0, 0.8, 0.8), seconds=defaults)]
    return out + [dict(trial(i, 0.7, 0.7), seconds=s) for i, s in enumerate(others, 1)]


def _run(tmp_path, inner_folds: dict[str, int] | None = None, run_inner_folds: int = 1):
    """`inner_folds`: per dataset, the inner folds its records say its jobs used (default none: 1)."""
    records = []
    for ds, (rows, defaults, others, job) in KNOWN.items():
        folds = {"inner_folds": inner_folds[ds]} if inner_folds else {}
        for variant in ("default", "tuned"):
            records.append(record(ds, "xgboost", variant, score=0.8, trials=_trials(defaults, others), n_rows=rows,
                                  n_features=10, n_classes=2, job_seconds=job, device="cpu", threads=1,
                                  test_by_seed=[{"seed": 1}], finished_at="2026-01-01T00:01:00+00:00", **folds))
    store = write_run(tmp_path / "run", records)
    store.write_config({"suite": "hand", "trials": 3, "tune_seconds": None, "inner_folds": run_inner_folds,
                        "time_limit": None, "seeds": 1})
    jobs = {f"{ds}/xgboost/r0f0": {"dataset": ds, "model": "xgboost", "variants": ["default", "tuned", "ensemble"],
                                   "split_index": 0} for ds in KNOWN}
    store.write_plan({}, jobs)
    return store


def _budget(trials=5, seeds=3, time_limit=None, tune_seconds=None, inner_folds=1) -> JobBudget:
    return JobBudget(trials, tune_seconds, inner_folds, time_limit, seeds)


def test_measured_parts_of_a_job(tmp_path):
    costs = {c.dataset: c for c in measure(_run(tmp_path).load_all())}
    a = costs["a"]
    assert (a.defaults, a.trial, a.overhead) == (4.0, 3.0, 10.0)
    assert a.refit == pytest.approx(5.0)  # default and tuned: fit 2.0 + predict 0.5 each
    assert a.size == data_size(100, 10, 2, "binary") == 1000


def test_plan_arithmetic_measured_scaled_and_limited(tmp_path):
    model = CostModel(measure(_run(tmp_path).load_all()))
    a = model.parts("xgboost", "a", 1000)
    # 10 overhead + 4 defaults + 4 more trials x 3 s + 2 extra seeds x 5 s
    assert job_seconds(a, _budget()) == (pytest.approx(36.0), 4.0)
    assert job_seconds(a, _budget(inner_folds=2))[0] == pytest.approx(10 + 8 + 4 * 6 + 2 * 5)
    assert job_seconds(a, _budget(trials=None, tune_seconds=7.0))[0] == pytest.approx(10 + 4 + 7 + 10)
    assert job_seconds(a, _budget(time_limit=30.0))[0] == 30.0
    # A dataset never measured: defaults = a * size^b fitted on a (1000 -> 4 s) and b (4000 -> 16 s): b = 1.
    c = model.parts("xgboost", "c", 16000)
    assert c.source == "scaled" and model.exponent("xgboost") == pytest.approx(1.0)
    assert c.defaults == pytest.approx(64.0) and c.trial == pytest.approx(48.0)  # trial/defaults ratio 0.75
    assert c.overhead == pytest.approx(10.0)
    assert job_seconds(c, _budget(seeds=1))[0] == pytest.approx(10 + 64 + 4 * 48)
    assert model.parts("mlp", "a", 1000) is None


def test_sweep_totals_wall_time_and_time_limit(tmp_path):
    model = CostModel(measure(_run(tmp_path).load_all()))
    limit = _budget(trials=5, seeds=1, time_limit=100.0)
    jobs = [plan.PlannedJob(ds, m, 0, "cpu", size, 2, limit)
            for ds, size in (("a", 1000), ("b", 4000), ("c", 16000)) for m in ("xgboost", "mlp")]
    est = plan.estimate_sweep(jobs, model, cpu_slots=2, gpu_slots=0)
    seconds = est.jobs.set_index(["dataset", "model"]).seconds
    assert seconds["a", "xgboost"] == pytest.approx(10 + 4 + 12)  # 26
    assert seconds["b", "xgboost"] == pytest.approx(10 + 16 + 4 * 12)  # 74
    assert seconds["c", "xgboost"] == 100.0  # 266 expected, stopped at the limit
    assert est.unknown == ["mlp"] and math.isnan(seconds["a", "mlp"])
    assert est.cpu_hours == pytest.approx((26 + 74 + 100) * 2 / 3600)  # 2 threads per job
    assert est.gpu_hours == 0.0
    assert est.wall_seconds == pytest.approx(26 + 100)  # slot 1: a then c; slot 2: b
    assert est.over_limit == {}
    assert plan.estimate_sweep(jobs, model, 1, 0).wall_seconds == pytest.approx(200.0)
    tight = [plan.PlannedJob(j.dataset, j.model, 0, "cpu", j.size, 1, _budget(time_limit=10.0)) for j in jobs]
    assert plan.estimate_sweep(tight, model, 1, 0).over_limit == {"xgboost": ["b", "c"]}  # defaults 16, 64 > 10


def test_wall_time_replays_the_schedule_per_kind():
    jobs = pd.DataFrame({"seconds": [5.0, 3.0, 3.0, 1.0, 10.0], "device": ["cpu", "cpu", "cpu", "cpu", "cuda"]})
    assert plan.wall_seconds(jobs, 2, 1) == 10.0  # the GPU job ends last
    assert plan.wall_seconds(jobs[jobs.device == "cpu"], 2, 0) == 6.0  # 5 | 3 + 3, then 1 on the first free


def test_check_a_run_against_itself_is_exact(tmp_path):
    store = _run(tmp_path)
    result = plan.check(store.run_dir, CostModel(measure(store.load_all())), cpu_slots=1)
    assert result.total_ratio() == pytest.approx(1.0)
    per_model = result.per_model()
    assert per_model.estimated.iloc[0] == pytest.approx(70.0) and per_model.actual.iloc[0] == 70.0
    assert result.estimated_wall == pytest.approx(70.0)
    assert result.actual_wall == pytest.approx(50.0)  # both ended at one stamp: the longer job's span
    assert result.pace_ratio() is None  # the hand-made trials recorded no CPU seconds


def test_check_takes_each_jobs_own_inner_folds(tmp_path):
    """A suite's inner folds apply to its small datasets only (protocol.inner_folds_max_rows): the run says 3,
    the large dataset's jobs ran a holdout. Its jobs are estimated with the folds they ran, so a run checked
    against itself is exact (it was 2.1x here when every job took the run's 3)."""
    store = _run(tmp_path, inner_folds={"a": 3, "b": 1}, run_inner_folds=3)
    result = plan.check(store.run_dir, CostModel(measure(store.load_all())), cpu_slots=1)
    assert result.total_ratio() == pytest.approx(1.0)


def test_plan_gives_large_datasets_the_holdout_as_bench_run_does():
    from bench.execution.sweep import SweepConfig

    jobs, _ = plan.planned_jobs(SweepConfig(suite="demo", models=["xgboost"], trials=4, max_splits=1))
    folds = {j.dataset: j.budget.inner_folds for j in jobs}
    # suites/demo.toml: inner 3-fold for datasets of at most 1,000 rows, the holdout above
    assert folds["wine"] == folds["breast_cancer"] == 3
    assert folds["kr-vs-kp"] == folds["digits"] == folds["titanic"] == 1
    _, notes = plan.planned_jobs(SweepConfig(suite="demo", models=["mlp"], trials=4, max_splits=1, pack=4))
    assert any(n.startswith("--pack 4: trials are estimated as trained one at a time") for n in notes)


def test_cli_plan_needs_one_cost_source_and_prints_the_estimate(tmp_path, capsys):
    from bench.cli.main import main

    assert main(["plan", "--suite", "demo", "--models", "xgboost"]) == 2
    store = _run(tmp_path)
    assert main(["plan", "--suite", "demo", "--models", "xgboost,mlp", "--trials", "5", "--splits", "1",
                 "--time-limit", "30", "--from", str(store.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "16 jobs, 80 trials" in out  # 8 datasets x 2 models x 5 trials
    assert "no measurement for mlp" in out
    assert main(["plan", "--suite", "demo", "--models", "xgboost", "--check", str(store.run_dir), "--from",
                 str(store.run_dir)]) == 0
    assert "estimate / actual = 1.00" in capsys.readouterr().out


def test_refits_of_extra_seeds_are_measured_from_each_seed(tmp_path):
    seeds = [{"seed": 0, "fit_seconds": 9.0, "predict_seconds": 1.0}] + \
        [{"seed": s, "fit_seconds": 3.0, "predict_seconds": 1.0} for s in (1, 2)]
    records = [record("a", "xgboost", v, score=0.8, trials=_trials(4.0, (2.0, 4.0)), n_rows=100, n_features=10,
                      n_classes=2, job_seconds=40.0, test_by_seed=seeds) for v in ("default", "tuned")]
    (cost,) = measure(write_run(tmp_path / "seeds", records).load_all())
    assert cost.refit == pytest.approx(8.0)  # one more seed: 3 + 1 for each of the two variants
    assert cost.overhead == pytest.approx(40.0 - 10.0 - 16.0)  # job - trials - 2 extra seeds x 2 variants x 4


@pytest.mark.slow
def test_calibration_runs_the_defaults_and_sampled_trials_on_a_spread_of_datasets(tmp_path):
    from bench.execution.sweep import SweepConfig

    config = SweepConfig(suite="demo", models=["test_prior"], trials=10, workers=1, device="cpu")
    names = plan.calibration_datasets(config)
    assert names == ["cpu", "titanic", "breast_cancer"]  # smallest, median, 75% quantile of rows x features x classes
    folders = plan.calibrate(config, tmp_path / "calibration")
    model = plan.cost_model(folders)
    # the sampled trials' cost is measured, not assumed equal to the defaults trial's
    assert {c.dataset for c in model.costs} == set(names) and all(c.trial is not None for c in model.costs)
    # each dataset draws its own configurations (one seed would draw the same two on all three)
    from bench.records.store import ResultStore

    draws = {json.dumps(t["params"], sort_keys=True) for folder in folders for r in ResultStore(folder).load_all()
             if r.get("variant") == "tuned" for t in r["trials"] if not t.get("is_default")}
    assert len(draws) == 2 * len(names)
    defaults_only = replace(config, trials=1)
    model = plan.cost_model(plan.calibrate(defaults_only, tmp_path / "defaults-only"))
    assert all(c.trial is None for c in model.costs)  # a sweep that does not tune calibrates no tuning trial
    jobs, notes = plan.planned_jobs(config)
    est = plan.estimate_sweep(jobs, model, *plan.slots(config))
    assert len(jobs) == 8 * 3 and not notes and not est.unknown  # 8 datasets x 3 folds
    assert set(est.jobs.source) == {"measured", "scaled"}


def test_the_measured_pace_is_stated(tmp_path):
    cpu_bound = [dict(t, cpu_seconds=t["seconds"] * 0.5) for t in _trials(4.0, (2.0, 4.0))]
    records = [record("a", "xgboost", v, score=0.8, trials=cpu_bound, n_rows=100, n_features=10, n_classes=2,
                      job_seconds=20.0, threads=2) for v in ("default", "tuned")]
    model = CostModel(measure(write_run(tmp_path / "pace", records).load_all()))
    assert model.pace() == pytest.approx(0.25)  # 0.5 CPU s per wall s, over 2 threads
    jobs = [plan.PlannedJob("a", "xgboost", 0, "cpu", 1000, 2, _budget())]
    assert any("0.25 CPU seconds per wall second" in n for n in plan.estimate_sweep(jobs, model, 1, 0).notes)


def _sized_run(tmp_path):
    """One dataset measured at train size 0.5 (cheap) and at the whole split (dear)."""
    records = []
    for size, defaults, job in (("0.5", 1.0, 5.0), ("1", 8.0, 40.0)):
        for variant in ("default", "tuned"):
            records.append(record("a", "xgboost", variant, score=0.8, trials=_trials(defaults, (defaults,)),
                                  n_rows=1000, n_test=200, n_features=10, n_classes=2, job_seconds=job,
                                  job_id=f"a/xgboost/r0f0-size{size}", train_size=size, test_by_seed=[{"seed": 1}],
                                  finished_at="2026-01-01T00:01:00+00:00"))
    store = write_run(tmp_path / "sized", records)
    store.write_config({"suite": "hand", "trials": 2, "tune_seconds": None, "inner_folds": 1, "time_limit": None,
                        "seeds": 1})
    store.write_plan({}, {f"a/xgboost/r0f0-size{size}": {"dataset": "a", "model": "xgboost", "split_index": 0,
                                                          "variants": ["default", "tuned", "ensemble"]}
                          for size in ("0.5", "1")})
    return store


def test_costs_of_training_set_sizes_are_measured_apart_and_scaled_by_their_rows(tmp_path):
    store = _sized_run(tmp_path)
    costs = {c.dataset: c for c in measure(store.load_all())}
    assert set(costs) == {"a@0.5", "a"}  # the whole split keeps the plain key: a sweep without sizes finds it
    assert costs["a@0.5"].defaults == 1.0 and costs["a"].defaults == 8.0  # never averaged together
    assert costs["a@0.5"].size == data_size(500, 10, 2, "binary")  # half of the learning rows' share
    # each job estimated from its own size's costs: exact per job, not only in the sum
    result = plan.check(store.run_dir, CostModel(measure(store.load_all())), cpu_slots=1)
    assert list(result.jobs.seconds) == list(result.jobs.actual) == [5.0, 40.0]
    assert list(result.jobs.train_size) == ["0.5", "1"]


def test_plan_with_train_sizes_plans_each_size_and_leaves_out_the_too_small_ones(tmp_path, capsys):
    from bench.execution.sweep import SweepConfig

    config = SweepConfig(suite="demo", models=["xgboost"], trials=4, max_splits=1, train_sizes="0.05,1")
    jobs, notes = plan.planned_jobs(config)
    by_size = {size: {j.dataset: j for j in jobs if j.train_size == size} for size in ("0.05", "1")}
    assert len(by_size["1"]) == 8
    # 5% of wine, cpu and penguins leaves fewer than 10 rows to fit on (inner 3-fold): skipped by bench run too
    assert set(by_size["1"]) - set(by_size["0.05"]) == {"wine", "cpu", "penguins"}
    assert sum("train size 0.05" in n and "fewer than 10" in n for n in notes) == 3
    assert by_size["0.05"]["digits"].size == pytest.approx(0.05 * by_size["1"]["digits"].size, rel=0.01)
    store = _sized_run(tmp_path)
    est = plan.estimate_sweep(jobs, CostModel(measure(store.load_all())), 1, 0)
    assert set(est.jobs.train_size) == {"0.05", "1"} and not est.unknown

    from bench.cli.main import main

    assert main(["plan", "--suite", "demo", "--models", "xgboost", "--trials", "4", "--splits", "1",
                 "--train-sizes", "0.05,1", "--from", str(store.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "13 jobs, 52 trials" in out and "per training-set size (--train-sizes): 0.05: 5 jobs" in out
    assert "wine: train size 0.05 on split r0f0: 4 rows each model is fit on (inner 3-fold), fewer than 10" in out
