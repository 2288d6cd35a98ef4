"""Inner K-fold cross-validation (protocol inner_folds): folds, out-of-fold scores, averaged test
predictions, preprocessing per fold, and inner_folds = 1 being exactly the holdout protocol."""

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.adapters import TaskInfo, get_adapter
from bench.errors import SuiteFormatError
from bench.execution.jobs import execute_job
from bench.execution.sweep import SweepConfig, plan_jobs
from bench.metrics import objective_value, score_predictions
from bench.records.store import ResultStore
from bench.suites.spec import parse_suite_file
from bench.tuning import Budget, tune
from bench.tuning.crossfit import make_folds
from tests.fault_adapters import _Prior
from tests.test_splits import Protocol
from tests.test_tuning import _parts


def _tune(cls, task, parts, trials=1, inner_folds=1, **kw):
    return tune(cls, task, parts, Budget(trials, inner_folds=inner_folds), seed=3, threads=1, device="cpu",
                storage=None, study_name="cv", **kw)


@pytest.mark.parametrize("task_type", ["binary", "multiclass", "regression"])
def test_folds_partition_the_outer_training_part_seeded_and_stratified(make_ds, task_type):
    ds = make_ds(task_type, n=200)
    parts, task = _parts(ds), TaskInfo(ds.task_type, ds.n_classes)
    folds, y = make_folds(parts, task, 4, seed=3)
    outer = np.concatenate([parts.y_train, parts.y_val])
    assert len(folds) == 4 and np.array_equal(y, outer)
    rows = np.concatenate([f.val_rows for f in folds])
    assert sorted(rows.tolist()) == list(range(len(outer)))  # every row validated exactly once
    for f in folds:
        assert len(f.y_train) + len(f.y_val) == len(outer) and np.array_equal(f.y_val, outer[f.val_rows])
        if task_type != "regression":  # stratified: each fold's class shares follow the whole part's
            share = np.bincount(f.y_val, minlength=ds.n_classes) / len(f.y_val)
            assert np.abs(share - np.bincount(outer, minlength=ds.n_classes) / len(outer)).max() < 0.05
    again, _ = make_folds(parts, task, 4, seed=3)
    other, _ = make_folds(parts, task, 4, seed=4)
    assert all(np.array_equal(a.val_rows, b.val_rows) for a, b in zip(folds, again))
    assert not all(np.array_equal(a.val_rows, b.val_rows) for a, b in zip(folds, other))
    holdout, y_holdout = make_folds(parts, task, 1, seed=3)
    assert holdout[0].X_train is parts.X_train and y_holdout is not None and holdout[0].val_rows is None


SEEN: dict[str, list] = {"pre": [], "val": [], "reports": []}


class _RowPreprocessor:
    """Passes the row ids through and records which rows it was fit on."""

    def fit(self, X, y=None):
        SEEN["pre"].append(set(X["row_id"].astype(int)))
        return self

    def transform(self, X):
        return X[["row_id"]].to_numpy(dtype="float64")


class _RowSpy(_Prior):
    name = "spy_rows"

    def make_preprocessor(self):
        return _RowPreprocessor()

    def fit(self, X_train, y_train, X_val, y_val):
        SEEN["val"].append(X_val[:, 0].astype(int).tolist())
        SEEN["reports"].append(self.ctx.report is not None)
        super().fit(X_train, y_train, X_val, y_val)


def test_each_fold_preprocesses_on_its_training_rows_and_scores_each_row_once(make_ds):
    ds = make_ds("binary", n=150)
    ds.X["row_id"] = np.arange(ds.n_rows, dtype=float)
    parts = _parts(ds)
    for v in SEEN.values():
        v.clear()
    _tune(_RowSpy, TaskInfo("binary", 2), parts, trials=2, inner_folds=3)
    outer = set(parts.X_train["row_id"].astype(int)) | set(parts.X_val["row_id"].astype(int))
    test = set(parts.X_test["row_id"].astype(int))
    assert len(SEEN["pre"]) == 3  # one preprocessor per fold, reused by the second trial
    first_trial = SEEN["val"][:3]
    assert sorted(r for rows in first_trial for r in rows) == sorted(outer)  # no row scored twice
    for fitted_on, val_rows in zip(SEEN["pre"], first_trial):
        assert fitted_on == outer - set(val_rows) and not fitted_on & test
    assert SEEN["reports"][:3] == [True, False, False]  # only the first fold reports to the pruner


def test_the_trial_value_is_out_of_fold_and_the_test_prediction_averages_the_fold_models(make_ds):
    ds = make_ds("multiclass", n=240)
    parts, task, linear = _parts(ds), TaskInfo(ds.task_type, ds.n_classes), get_adapter("linear")
    out = _tune(linear, task, parts, inner_folds=4)
    folds, y = make_folds(parts, task, 4, seed=3)
    oof, test_preds = np.zeros((len(y), ds.n_classes)), []
    for fold in folds:
        model = linear(task)
        pre = model.make_preprocessor().fit(fold.X_train)
        model.fit(pre.transform(fold.X_train), fold.y_train, pre.transform(fold.X_val), fold.y_val)
        oof[fold.val_rows] = model.predictions(pre.transform(fold.X_val))
        test_preds.append(model.predictions(pre.transform(parts.X_test)))
    assert out.trials[0]["value"] == pytest.approx(objective_value("multiclass", y, oof, ds.n_classes), rel=1e-12)
    expected = score_predictions("multiclass", parts.y_test, np.mean(test_preds, axis=0), ds.n_classes)
    default = out.variants[0]
    assert default.test_metrics == pytest.approx(expected, rel=1e-12)
    assert out.trials[0]["test_score"] == pytest.approx(expected["log_loss"], rel=1e-12)
    assert out.trials[0]["fits"] == 4 and len(default.fit_info["folds"]) == 4


@pytest.mark.parametrize("task_type", ["binary", "regression"])
def test_one_inner_fold_is_exactly_the_holdout_protocol(make_ds, task_type):
    ds = make_ds(task_type, n=200)
    parts, task, xgb = _parts(ds), TaskInfo(ds.task_type, ds.n_classes), get_adapter("xgboost")
    out = _tune(xgb, task, parts, inner_folds=1)
    from bench.adapters import FitContext

    model = xgb(task, None, FitContext(seed=3, threads=1))
    pre = model.make_preprocessor().fit(parts.X_train)
    model.fit(pre.transform(parts.X_train), parts.y_train, pre.transform(parts.X_val), parts.y_val)
    value = objective_value(task_type, parts.y_val, model.predictions(pre.transform(parts.X_val)), ds.n_classes)
    assert out.trials[0]["value"] == value  # bit for bit
    test = score_predictions(task_type, parts.y_test, model.predictions(pre.transform(parts.X_test)), ds.n_classes)
    assert out.variants[0].test_metrics == test and "folds" not in out.variants[0].fit_info


def test_inner_folds_in_the_suite_protocol_and_on_the_command_line(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\n[protocol]\ninner_folds = 5\n[[datasets]]\nembedded = "wine"\n')
    parsed = parse_suite_file(suite)
    assert parsed.protocol.inner_folds == 5
    assert SweepConfig(suite="s", models=["linear"]).resolved_inner_folds(parsed) == 5
    assert SweepConfig(suite="s", models=["linear"], inner_folds=2).resolved_inner_folds(parsed) == 2
    suite.write_text('name = "s"\n[protocol]\ninner_folds = 0\n[[datasets]]\nembedded = "wine"\n')
    with pytest.raises(SuiteFormatError, match="protocol.inner_folds"):
        parse_suite_file(suite)


def test_inner_folds_only_for_small_datasets(make_ds, tmp_path):
    """protocol.inner_folds_max_rows: the suite's inner folds tune datasets of at most that many rows, larger
    ones keep the holdout; --inner-folds applies to every dataset. The demo suite (the default sweep) says so."""
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\n[protocol]\ninner_folds = 3\ninner_folds_max_rows = 200\n'
                     '[[datasets]]\nembedded = "wine"\n')
    parsed = parse_suite_file(suite)
    assert parsed.protocol.inner_folds_max_rows == 200
    loaded = [SimpleNamespace(dataset=make_ds("binary", n=n, name=f"n{n}"), task_splits=None) for n in (150, 400)]
    protocol = Protocol(folds=2, repeats=1, inner_folds=3, inner_folds_max_rows=200)
    for given, expected in ((None, {"n150": 3, "n400": 1}), (2, {"n150": 2, "n400": 2})):
        store = ResultStore(tmp_path / f"run{given}")
        config = SweepConfig(suite="t", models=["test_prior"], out=store.run_dir, trials=2, inner_folds=given)
        jobs = plan_jobs(config, SimpleNamespace(name="t", protocol=protocol), loaded, store)
        assert {j.dataset: j.budget.inner_folds for j in jobs} == expected
    demo = parse_suite_file(Path(__file__).resolve().parents[1] / "suites" / "demo.toml").protocol
    assert (demo.inner_folds, demo.inner_folds_max_rows) == (3, 1000)
    suite.write_text('name = "s"\n[protocol]\ninner_folds_max_rows = 0\n[[datasets]]\nembedded = "wine"\n')
    with pytest.raises(SuiteFormatError, match="protocol.inner_folds_max_rows"):
        parse_suite_file(suite)


def test_inner_cv_records_say_k_fits_and_what_the_sizes_mean(make_ds, tmp_path):
    ds = make_ds("binary", n=120)
    store = ResultStore(tmp_path / "run")
    suite = SimpleNamespace(name="t", protocol=Protocol(folds=2, repeats=1, inner_folds=3))
    config = SweepConfig(suite="t", models=["test_prior"], out=store.run_dir, trials=3, device="cpu")
    job = plan_jobs(config, suite, [SimpleNamespace(dataset=ds, task_splits=None)], store)[0]
    assert job.budget.inner_folds == 3
    records = execute_job(job)
    outer = 60  # 2 outer folds of 120 rows: the training part (train + validation rows) is the other 60
    for r in records:
        assert r["status"] == "ok" and r["inner_folds"] == r["budget"]["inner_folds"] == 3
        assert (r["n_train"], r["n_val"]) == (40, outer)
        assert [t["fits"] for t in r["trials"]] == [3, 3, 3]
    holdout = execute_job(replace(job, budget=replace(job.budget, inner_folds=1), run_dir=str(tmp_path / "h")))
    assert holdout[0]["n_train"] + holdout[0]["n_val"] == outer and holdout[0]["inner_folds"] == 1


def test_too_few_rows_for_the_folds_is_a_failure_record_not_a_crash(make_ds, tmp_path):
    with pytest.raises(ValueError, match="inner_folds = 5 needs at least 10 rows"):
        make_folds(_parts(make_ds("regression", n=12)), TaskInfo("regression"), 5, seed=0)
    store = ResultStore(tmp_path / "run")
    suite = SimpleNamespace(name="t", protocol=Protocol(folds=2, repeats=1))
    config = SweepConfig(suite="t", models=["test_prior"], out=store.run_dir, trials=2, device="cpu", inner_folds=5)
    job = plan_jobs(config, suite, [SimpleNamespace(dataset=make_ds("regression", n=16), task_splits=None)], store)[0]
    records = execute_job(job)
    assert [r["status"] for r in records] == ["failed", "failed", "failed"]  # default, tuned, ensemble
    assert "inner_folds = 5 needs at least 10 rows" in records[0]["error"]["message"]
