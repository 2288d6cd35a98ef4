"""XGBoost, LightGBM and CatBoost adapters on small synthetic data and on anneal (offline-20).

Round caps are small (FAST) and everything runs on one thread: the point is the wiring (shapes,
missing classes, metric scale, pruning, determinism, data warts), not accuracy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import optuna
import pandas as pd
import pytest

from bench.adapters import FitContext
from bench.adapters.framework.early_stopping import MIN_ITERATIONS, stopping_metric
from bench.adapters.framework.registry import _REGISTRY
from bench.adapters.models.catboost import CatBoostAdapter
from bench.adapters.models.lightgbm import LightGBMAdapter
from bench.adapters.models.xgboost import XGBoostAdapter
from bench.adapters.space import invalid_values, suggest_params
from bench.metrics import objective_value, score_predictions

from .adapter_helpers import TASKS, check_output, fit_predict, make_data
from .conftest import shared_data_or_skip

ADAPTERS = {"xgboost": XGBoostAdapter, "lightgbm": LightGBMAdapter, "catboost": CatBoostAdapter}
ROUNDS_KEY = {"xgboost": "n_estimators", "lightgbm": "n_estimators", "catboost": "iterations"}
FAST = {name: {key: 60, "early_stopping_rounds": 20} for name, key in ROUNDS_KEY.items()}
LOG_LOSS = {"xgboost": ("logloss", "mlogloss"), "lightgbm": ("binary_logloss", "multi_logloss"),
            "catboost": ("Logloss", "MultiClass")}


def fit_fast(name, task_type, data, params=None, **kwargs):
    """fit_predict with this file's quick round caps under the test's own params."""
    return fit_predict(ADAPTERS[name], task_type, data, {**FAST[name], **(params or {})}, **kwargs)


@pytest.fixture(scope="module")
def datasets():
    return {t: make_data(t) for t in TASKS}


@pytest.mark.parametrize("task_type", list(TASKS))
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_shapes_metric_scale_and_better_than_prior(name, task_type, datasets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # CatBoost would write catboost_info/ here if allowed to
    X, y, tr, va, te = data = datasets[task_type]
    reported = []
    ctx = FitContext(seed=0, threads=1, report=lambda step, value: reported.append((step, value)))
    adapter, pred, pre = fit_fast(name, task_type, data, params={"early_stopping_rounds": 60}, ctx=ctx)
    k = TASKS[task_type]
    check_output(pred, len(te), task_type, k)
    score = objective_value(task_type, y[te], pred, k)
    if task_type == "binary":
        assert score > 0.9
    elif task_type == "multiclass":
        prior = np.bincount(y[tr], minlength=k) / len(tr)
        assert score < 0.7 * objective_value(task_type, y[te], np.tile(prior, (len(te), 1)), k)
    else:
        assert score < 0.6 * np.std(y[te])
    # Early stopping watches the library's log loss / RMSE, on the same scale as bench.metrics.
    val = score_predictions(task_type, y[va], adapter.predictions(pre.transform(X.iloc[va])), k)
    assert ctx.info["best_val_score"] == pytest.approx(val[stopping_metric(task_type)], rel=1e-4)
    assert [s for s, _ in reported] == [25, 50]  # every 25 rounds, 60 rounds without early stop
    assert 1 <= ctx.info["best_iteration"] <= ctx.info["iterations"] == 60
    assert ctx.info["stopped_by"] == "max_iterations" and ctx.info["iteration_unit"] == "rounds"
    assert not (tmp_path / "catboost_info").exists()


@pytest.mark.parametrize("task_type", ["binary", "multiclass"])
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_classification_stops_on_log_loss_and_reports_the_objective(name, task_type, datasets):
    """The stopping metric is log loss; the values the pruner gets are the task's objective (binary:
    ROC AUC), taken from the library's own evaluation of the same round."""
    X, y, tr, va, te = datasets[task_type]
    k = TASKS[task_type]
    reported = {}
    slow = {"learning_rate": 0.03, "early_stopping_rounds": 60}  # log loss still falls at round 25
    ctx = FitContext(seed=0, threads=1, report=lambda step, value: reported.__setitem__(step, value))
    fit_fast(name, task_type, datasets[task_type], params=slow, ctx=ctx)
    assert ctx.info["early_stopping_metric"] == "log_loss" and ctx.info["library_metric"] in LOG_LOSS[name]
    # The same fit cut at 25 rounds (the first report): its validation objective is the reported value.
    ctx25 = FitContext(seed=0, threads=1)
    short, _, pre = fit_fast(name, task_type, datasets[task_type], params={**slow, ROUNDS_KEY[name]: 25},
                             ctx=ctx25)
    assert ctx25.info["best_iteration"] == 25  # so its predictions are those of round 25
    val = score_predictions(task_type, y[va], short.predictions(pre.transform(X.iloc[va])), k)
    objective = "roc_auc" if task_type == "binary" else "log_loss"
    assert reported[25] == pytest.approx(val[objective], abs=1e-4)


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_minimum_rounds_before_early_stopping(name, datasets):
    """Random labels and a high learning rate: validation log loss is best after a few rounds, yet
    training goes on to MIN_ITERATIONS + patience rounds, and the model keeps the best round."""
    X, y, tr, va, te = datasets["binary"]
    noise = np.random.default_rng(1).integers(0, 2, len(y))
    ctx = FitContext(seed=0, threads=1)
    fit_fast(name, "binary", (X, noise, tr, va, te),
             params={"learning_rate": 0.9, ROUNDS_KEY[name]: 300, "early_stopping_rounds": 5}, ctx=ctx)
    info = ctx.info
    assert info["stopped_by"] == "early_stopped"
    assert info["best_iteration"] < MIN_ITERATIONS  # the minimum is what kept training going
    assert info["iterations"] == MIN_ITERATIONS + 5


@pytest.mark.parametrize("task_type", list(TASKS))
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_a_passed_deadline_stops_after_one_round_with_a_usable_model(name, task_type, datasets):
    X, y, tr, va, te = datasets[task_type]
    ctx = FitContext(seed=0, threads=1, deadline=time.monotonic() - 1.0)
    _, pred, _ = fit_fast(name, task_type, datasets[task_type], params={ROUNDS_KEY[name]: 2000}, ctx=ctx)
    assert ctx.info["stopped_by"] == "deadline"
    assert ctx.info["iterations"] == ctx.info["best_iteration"] == 1
    check_output(pred, len(te), task_type, TASKS[task_type])


class DeadlineAfter(FitContext):
    """A deadline that passes after the n-th time fit looks at it: deterministic, no clocks."""

    def __init__(self, looks: int, **kwargs):
        super().__init__(**kwargs)
        self.looks, self.seen = looks, 0

    def deadline_passed(self, reserve: float = 0.0) -> bool:
        self.seen += 1
        return self.seen >= self.looks


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_deadline_stop_keeps_the_best_round_so_far(name, datasets):
    """Random labels, a high learning rate, no patience limit in sight: the deadline cuts at round 40
    and the model predicts with the best round on validation log loss before it, not the last."""
    X, y, tr, va, te = datasets["binary"]
    y = np.random.default_rng(1).integers(0, 2, len(y))
    ctx = DeadlineAfter(40, seed=0, threads=1)
    adapter, _, pre = fit_fast(name, "binary", (X, y, tr, va, te),
                               params={"learning_rate": 0.9, ROUNDS_KEY[name]: 2000, "early_stopping_rounds": 500},
                               ctx=ctx)
    info = ctx.info
    assert info["stopped_by"] == "deadline" and info["iterations"] == 40
    assert 1 <= info["best_iteration"] < 40
    val = score_predictions("binary", y[va], adapter.predictions(pre.transform(X.iloc[va])), 2)
    assert val["log_loss"] == pytest.approx(info["best_val_score"], rel=1e-4)


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_class_missing_from_training_keeps_all_columns(name, datasets):
    X, y, tr, va, te = datasets["multiclass"]
    tr = tr[y[tr] != 2]  # class 2 never seen in training (but present in validation and test)
    _, pred, _ = fit_fast(name, "multiclass", (X, y, tr, va, te))
    check_output(pred, len(te), "multiclass", 3)
    assert pred[:, 2].mean() < 0.2


@pytest.mark.parametrize("task_type", ["binary", "multiclass"])
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_one_class_training_part_predicts_the_prior(name, task_type, datasets):
    X, y, tr, va, te = datasets[task_type]
    ctx = FitContext(seed=0, threads=1)
    _, pred, _ = fit_fast(name, task_type, (X, y, tr[y[tr] == 0], va, te), ctx=ctx)
    check_output(pred, len(te), task_type, TASKS[task_type])
    assert ctx.info["constant_model"] and np.all(pred.argmax(axis=1) == 0)


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_no_usable_feature_predicts_the_prior(name):
    X = pd.DataFrame({"const": np.ones(40), "empty": pd.Categorical([None] * 40, categories=["u"])})
    y = np.arange(40) % 2
    ctx = FitContext(seed=0, threads=1)
    _, pred, _ = fit_fast(name, "binary", (X, y, np.arange(30), np.arange(30, 35), np.arange(35, 40)),
                          ctx=ctx)
    check_output(pred, 5, "binary", 2)
    assert ctx.info["constant_model"]


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_one_class_validation_stops_on_log_loss_without_reports(name, datasets):
    X, y, tr, va, te = datasets["binary"]
    ctx = FitContext(seed=0, threads=1, report=lambda step, value: pytest.fail("AUC is undefined here"))
    _, pred, _ = fit_fast(name, "binary", (X, y, tr, va[y[va] == 1], te), ctx=ctx)
    assert ctx.info["early_stopping_metric"] == "log_loss"
    assert objective_value("binary", y[te], pred, 2) > 0.9


@pytest.mark.parametrize("task_type", ["binary", "regression"])
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_same_seed_same_predictions(name, task_type, datasets):
    # Row/column subsampling makes the seed matter (CatBoost's Bayesian bootstrap always uses it).
    params = {"xgboost": {"subsample": 0.7, "colsample_bytree": 0.7},
              "lightgbm": {"bagging_fraction": 0.7, "feature_fraction": 0.7}, "catboost": {}}[name]
    runs = [fit_fast(name, task_type, datasets[task_type], params=params,
                     ctx=FitContext(seed=s, threads=1))[1] for s in (7, 7, 8)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_pruning_propagates_out_of_fit(name, datasets):
    seen = []

    def report(step, value):
        seen.append(step)
        raise optuna.TrialPruned()

    ctx = FitContext(seed=0, threads=1, report=report)
    with pytest.raises(optuna.TrialPruned):
        fit_fast(name, "multiclass", datasets["multiclass"],
                 params={"learning_rate": 0.01, "early_stopping_rounds": 500, ROUNDS_KEY[name]: 500}, ctx=ctx)
    assert seen == [25]  # training stopped at the first report


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_defaults_inside_search_space_and_registered(name):
    cls = ADAPTERS[name]
    assert _REGISTRY[name] is cls and cls.family == "gbdt" and cls.libraries == (name,)
    assert invalid_values(cls.search_space, cls.defaults) == []
    assert set(cls.search_space) <= set(cls.defaults)
    assert ROUNDS_KEY[name] not in cls.search_space  # early stopping decides the number of rounds


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_sampled_configs_fit(name, datasets):
    """Configurations drawn from the space (as trial 1+ would be) are accepted by the library."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for task_type in ("binary", "multiclass"):
        params = suggest_params(study.ask(), ADAPTERS[name].search_space)
        X, y, tr, va, te = datasets[task_type]
        _, pred, _ = fit_fast(name, task_type, datasets[task_type], params=params)
        check_output(pred, len(te), task_type, TASKS[task_type])


@pytest.fixture(scope="module")
def anneal():
    """Six entirely missing nominal columns (one category-less), a declared empty class, rare classes."""
    from bench.datasets import make_dataset

    folder = shared_data_or_skip() / "suites" / "offline-20"
    meta = next(d for d in json.loads((folder / "manifest.json").read_text())["datasets"]
                if d["name"] == "anneal")
    frame = pd.read_parquet(folder / meta["file"])
    ds = make_dataset("anneal", frame.drop(columns=meta["target"]), frame[meta["target"]],
                      task_type=meta["task_type"], categorical=meta["categorical_features"])
    idx = np.random.default_rng(0).permutation(ds.n_rows)
    n = len(idx)
    return ds, (ds.X, ds.y, idx[: int(0.6 * n)], idx[int(0.6 * n): int(0.8 * n)], idx[int(0.8 * n):])


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_anneal_end_to_end(name, anneal):
    ds, (X, y, tr, va, te) = anneal
    _, pred, pre = fit_fast(name, "multiclass", (X, y, tr, va, te), n_classes=ds.n_classes)
    assert pre.plan.dropped  # the all-missing columns never reach the library
    check_output(pred, len(te), "multiclass", ds.n_classes)
    prior = (np.bincount(y[tr], minlength=ds.n_classes) + 1.0) / (len(tr) + ds.n_classes)
    baseline = objective_value("multiclass", y[te], np.tile(prior, (len(te), 1)), ds.n_classes)
    assert objective_value("multiclass", y[te], pred, ds.n_classes) < 0.5 * baseline


def test_listing_models_does_not_import_the_libraries():
    code = ("import sys, bench.adapters.models.xgboost, bench.adapters.models.lightgbm, "
            "bench.adapters.models.catboost; sys.exit(any(m in sys.modules for m in "
            "('xgboost', 'lightgbm', 'catboost')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


class _FakeGPUCatBoost:
    """Stands in for CatBoostClassifier on GPU (no GPU here): takes the params, 'trains' every
    iteration it is allowed, and keeps them all."""

    made: list[dict] = []

    def __init__(self, **params):
        self.params = params
        _FakeGPUCatBoost.made.append(params)

    def fit(self, train, eval_set=None, callbacks=None):
        assert callbacks is None  # CatBoost refuses Python callbacks on GPU
        self.tree_count_ = self.params["iterations"]

    def get_evals_result(self):
        return {"validation": {"Logloss": [1.0 / (i + 1) for i in range(self.tree_count_)]}}


@pytest.mark.parametrize("seconds_left, pace, cap, end", [
    (None, None, 2000, "max_iterations"),  # the defaults trial: no deadline, no cap
    (-1.0, 0.01, 1, "deadline"),  # the budget is already spent: one iteration
    (3.0, 0.01, 300, "deadline"),  # 3 s left at 10 ms per iteration
    (30.0, 0.01, 2000, "max_iterations"),  # enough time for the whole cap
    (3.0, None, 2000, "max_iterations"),  # no pace measured yet (resumed job): only --time-limit bounds it
])
def test_catboost_on_gpu_caps_iterations_at_a_deadline(seconds_left, pace, cap, end, monkeypatch):
    from catboost import Pool

    import bench.adapters.models.catboost as cb
    from bench.adapters import TaskInfo
    from bench.adapters.framework.early_stopping import StoppingMonitor

    X = pd.DataFrame({"a": np.arange(10.0)})
    train = Pool(X, np.arange(10) % 2)
    monkeypatch.setattr(cb, "_GPU_PACE", {} if pace is None else {(10, 1): pace})
    deadline = None if seconds_left is None else time.monotonic() + seconds_left
    ctx = FitContext(seed=0, threads=1, device="cuda", deadline=deadline)
    adapter = CatBoostAdapter(TaskInfo("binary", 2), {}, ctx)
    monitor = StoppingMonitor(ctx, TaskInfo("binary", 2), np.arange(10) % 2, 50, unit="rounds")
    extra = adapter._train_gpu(_FakeGPUCatBoost, train, train, monitor)
    params = _FakeGPUCatBoost.made[-1]
    assert params["task_type"] == "GPU" and "custom_metric" not in params
    assert params["early_stopping_rounds"] == MIN_ITERATIONS + 50  # never stops before the shared rule
    assert abs(params["iterations"] - cap) <= 1
    assert extra == {"interruptible": False, "iteration_cap": params["iterations"]}
    assert (monitor.end or "max_iterations") == end and monitor.iterations == params["iterations"]
