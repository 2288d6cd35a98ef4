"""knn, extra_trees, ebm, tabnet and tabr: what check_adapter (tests/test_check_adapter.py) cannot see.

The shared early-stopping rule where the adapter applies it (TabNet, TabR): at least MIN_ITERATIONS epochs,
then the patience, and the best epoch's model is the one kept; the values reported to the pruner are the
task's objective on the validation part; the target scaling of Extra Trees; EBM's deadline callback.
"""

import importlib.util
import pickle
import time

import numpy as np
import pytest

from bench.adapters import FitContext, get_adapter
from bench.adapters.framework.early_stopping import MIN_ITERATIONS
from bench.metrics import score_predictions
from tests.adapter_helpers import check_output, fit_predict, make_data

needs = {name: pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} not installed")
         for name, module in (("tabnet", "pytorch_tabnet"), ("ebm", "interpret"), ("tabr", "skorch"))}


def _val_scores(adapter, pre, data, task_type, n_classes):
    X, y, tr, va, te = data
    return score_predictions(task_type, y[va], adapter.predictions(pre.transform(X.iloc[va])), n_classes)


def test_knn_clips_k_to_the_training_part_and_keys_preprocessing_on_the_scaler():
    data = make_data("multiclass", n=60)
    adapter, pred, _ = fit_predict(get_adapter("knn"), "multiclass", data, {"n_neighbors": 500})
    assert adapter.ctx.info["n_neighbors_used"] == len(data[2]) and adapter.ctx.info["stopped_by"] == "converged"
    check_output(pred, len(data[4]), "multiclass", 3)
    keys = {get_adapter("knn")(adapter.task, {"scaler": s}).preprocessing_key() for s in ("standard", "quantile")}
    assert len(keys) == 2  # the tuner must not reuse a standard-scaled matrix for a quantile trial


def test_extra_trees_regression_does_not_depend_on_the_targets_unit():
    """min_impurity_decrease is absolute: on the raw target its effect would change with the unit."""
    from sklearn.ensemble import ExtraTreesRegressor

    X, y, tr, va, te = make_data("regression", n=300)
    y = y / np.std(y)
    params = {"min_impurity_decrease": 1e-3, "n_estimators": 20}
    _, base, pre = fit_predict(get_adapter("extra_trees"), "regression", (X, y, tr, va, te), params)
    _, small, _ = fit_predict(get_adapter("extra_trees"), "regression", (X, y / 1000, tr, va, te), params)
    # nearly the same forest (a few deep splits whose gain sits at the threshold flip on float rounding)
    assert np.mean(np.abs(1000 * small - base)) < 0.05  # in units of the target's standard deviation
    raw = ExtraTreesRegressor(n_estimators=20, max_features=1.0, min_impurity_decrease=1e-3, random_state=0)
    raw.fit(pre.transform(X.iloc[tr]), y[tr] / 1000)  # unscaled, the threshold stops nearly every split
    assert np.mean(np.abs(1000 * raw.predict(pre.transform(X.iloc[te])) - base)) > 0.5
    assert get_adapter("extra_trees").defaults_for("regression")["max_features"] == 1.0  # scikit-learn's


@needs["ebm"]
def test_ebm_deadline_callback_is_picklable_and_fires_once_the_deadline_passed():
    from bench.adapters.models.ebm import DeadlineCallback

    later, earlier = DeadlineCallback(time.monotonic() + 60), DeadlineCallback(time.monotonic() - 1)
    assert pickle.loads(pickle.dumps(later))(0, 1, True, 0.5) is False  # EBM runs bags in worker processes
    assert earlier(0, 1, True, 0.5) is True


@needs["ebm"]
def test_ebm_records_max_iterations_when_a_bag_cannot_have_stopped_early():
    cls = get_adapter("ebm")
    adapter, pred, _ = fit_predict(cls, "binary", make_data("binary", n=200), {**cls.smoke_params, "max_rounds": 30})
    n_terms = 6  # main effects: one term per feature of make_data (5 numerics, 1 categorical)
    assert adapter.ctx.info["stopped_by"] == "max_iterations" and adapter.ctx.info["iterations"] == 30 * n_terms
    assert adapter.ctx.info["iteration_unit"] == "boosting steps"
    assert "min_hessian" not in cls.search_space_for("regression")
    assert cls.defaults_for("regression")["min_hessian"] == 0


def _early_stopping_run(name, task_type, params):
    reported = []
    ctx = FitContext(seed=0, threads=1, report=lambda step, value: reported.append((step, value)))
    data = make_data(task_type, n=400)
    n_classes = {"binary": 2, "multiclass": 3, "regression": 0}[task_type]
    adapter, _, pre = fit_predict(get_adapter(name), task_type, data, params, ctx)
    return adapter, dict(reported), _val_scores(adapter, pre, data, task_type, n_classes)


@needs["tabnet"]
def test_tabnet_follows_the_shared_rule_and_keeps_the_best_epoch():
    adapter, reported, val = _early_stopping_run("tabnet", "multiclass", {"patience": 3, "max_epochs": 200,
                                                                         "lr": 0.025, "batch_size": 256})
    info = adapter.ctx.info
    assert info["stopped_by"] == "early_stopped" and info["early_stopping_metric"] == "log_loss"
    best, done = info["best_iteration"], info["iterations"]
    assert done == max(best, MIN_ITERATIONS) + 3 and sorted(reported) == list(range(1, done + 1))
    # multiclass reports the validation log loss: the kept model is the best epoch's
    assert reported[best] == pytest.approx(min(reported.values())) == pytest.approx(val["log_loss"], rel=1e-5)


@needs["tabnet"]
def test_tabnet_regression_reports_rmse_in_target_units():
    adapter, reported, val = _early_stopping_run("tabnet", "regression", {"patience": 3, "max_epochs": 40})
    assert reported[adapter.ctx.info["best_iteration"]] == pytest.approx(val["rmse"], rel=1e-5)


@needs["tabr"]
def test_tabr_follows_the_shared_rule_and_keeps_the_best_epoch():
    params = {"patience": 2, "n_epochs": 60, "d_main": 32, "lr": 1e-3}
    adapter, reported, val = _early_stopping_run("tabr", "multiclass", params)
    info = adapter.ctx.info
    best, done = info["best_iteration"], info["iterations"]
    assert info["stopped_by"] == "early_stopped" and done == max(best, MIN_ITERATIONS) + 2
    assert sorted(reported) == list(range(1, done + 1))  # one report per epoch, none for the sanity check
    # multiclass reports Lightning's val_loss (cross-entropy); pytabkit restores the best epoch's weights
    assert reported[best] == pytest.approx(min(reported.values()))
    assert reported[best] == pytest.approx(val["log_loss"], rel=1e-4)


@needs["tabr"]
@pytest.mark.parametrize("task_type, metric", [("binary", "roc_auc"), ("regression", "rmse")])
def test_tabr_reports_the_objective_on_the_validation_part(task_type, metric):
    """Binary: ROC AUC of the validation logits; regression: RMSE in target units (pytabkit trains on the
    standardized target)."""
    adapter, reported, val = _early_stopping_run("tabr", task_type, {"n_epochs": 5, "d_main": 32})
    assert adapter.ctx.info["stopped_by"] == "max_iterations" and sorted(reported) == [1, 2, 3, 4, 5]
    assert reported[adapter.ctx.info["best_iteration"]] == pytest.approx(val[metric], rel=1e-4)


@needs["tabr"]
def test_tabr_frame_one_hot_encodes_categoricals_with_a_missing_or_unseen_column():
    from bench.adapters.models.tabr.adapter import TabRFramePreprocessor

    X, y, tr, va, te = make_data("binary", n=200)
    pre = TabRFramePreprocessor().fit(X.iloc[tr])
    out = pre.transform(X.iloc[te])
    onehot = [c for c in out.columns if c.startswith("__cat")]
    assert len(onehot) == 4 and "cat" not in out.columns  # levels a, b, c and missing
    codes = np.column_stack([out[c].astype(int) for c in onehot])
    assert np.all(codes.sum(axis=1) == 1)  # exactly one indicator per row
    unseen = (X.iloc[te]["cat"] == "only_in_test").to_numpy()
    assert np.all(codes[unseen, -1] == 1)  # a level unseen in training counts as missing


@needs["ebm"]
def test_ebm_with_a_deadline_runs_in_the_sweeps_daemonic_workers(monkeypatch):
    """The deadline callback makes EBM start a SharedMemoryManager process; the harness's workers are
    daemonic processes (bench.execution.runner), which may not start children unless the adapter allows it
    for the fit. This process plays such a worker."""
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)
    ctx = FitContext(seed=0, threads=1, deadline=time.monotonic() + 120)
    cls = get_adapter("ebm")
    adapter, pred, _ = fit_predict(cls, "binary", make_data("binary", n=200), dict(cls.smoke_params), ctx)
    check_output(pred, 40, "binary", 2)
    assert adapter.ctx.info["stopped_by"] != "deadline" and multiprocessing.current_process().daemon
