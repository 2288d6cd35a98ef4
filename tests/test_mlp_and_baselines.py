"""MLP, the shared torch training loop and the scikit-learn baselines on small synthetic data."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import optuna
import pytest

from bench.adapters import FitContext
from bench.adapters.framework.early_stopping import MIN_ITERATIONS
from bench.adapters.framework.registry import _REGISTRY
from bench.adapters.models.baselines import DummyAdapter, LinearAdapter, RandomForestAdapter
from bench.adapters.models.mlp import MLPAdapter
from bench.adapters.space import invalid_values, suggest_params
from bench.metrics import objective_value, score_predictions

from .adapter_helpers import TASKS, fit_predict, make_data

ADAPTERS = {"dummy": DummyAdapter, "linear": LinearAdapter, "random_forest": RandomForestAdapter,
            "mlp": MLPAdapter}
# Small and quick: a few epochs of a narrow net, a small forest.
FAST = {"mlp": {"d_block": 64, "n_blocks": 2, "max_epochs": 8, "lr": 3e-3},
        "random_forest": {"n_estimators": 30}}


def fit_fast(name, task_type, data, params=None, **kwargs):
    """fit_predict with this file's small nets and forests under the test's own params."""
    return fit_predict(ADAPTERS[name], task_type, data, {**FAST.get(name, {}), **(params or {})}, **kwargs)


@pytest.fixture(scope="module")
def datasets():
    return {t: make_data(t, n=600, n_features=6) for t in TASKS}


@pytest.mark.parametrize("task_type", list(TASKS))
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_shapes_and_better_than_dummy(name, task_type, datasets):
    data = datasets[task_type]
    y_test = data[1][data[4]]
    _, pred, _ = fit_fast(name, task_type, data)
    if task_type == "regression":
        assert pred.shape == (len(y_test),) and np.all(np.isfinite(pred))
    else:
        assert pred.shape == (len(y_test), TASKS[task_type])
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-6)
        assert np.all(pred >= 0)
    score = objective_value(task_type, y_test, pred, TASKS[task_type])
    if name == "dummy":
        return
    _, dummy_pred, _ = fit_fast("dummy", task_type, data)
    baseline = objective_value(task_type, y_test, dummy_pred, TASKS[task_type])
    if task_type == "binary":
        assert score > 0.9 and baseline == 0.5
    elif task_type == "multiclass":
        # Forests put exact zeros in their probabilities, which log loss punishes hard (see
        # bench.metrics clipping), so accuracy is the clear signal here and log loss only must improve.
        assert score < baseline
        assert score_predictions(task_type, y_test, pred, 3)["accuracy"] > 0.8
    else:
        assert score < 0.5 * baseline


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_class_missing_from_training_keeps_all_columns(name, datasets):
    X, y, tr, va, te = datasets["multiclass"]
    tr = tr[y[tr] != 2]  # class 2 never seen in training
    _, pred, _ = fit_fast(name, "multiclass", (X, y, tr, va, te))
    assert pred.shape == (len(te), 3)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-6)
    assert pred[:, 2].mean() < 0.2  # pushed down by training, never the usual prediction


@pytest.mark.parametrize("name", ["mlp", "random_forest"])
@pytest.mark.parametrize("task_type", ["multiclass", "regression"])
def test_same_seed_same_predictions(name, task_type, datasets):
    runs = [fit_fast(name, task_type, datasets[task_type], ctx=FitContext(seed=s))[1] for s in (7, 7, 8)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_defaults_inside_search_space_and_registered(name):
    cls = ADAPTERS[name]
    assert _REGISTRY[name] is cls
    assert invalid_values(cls.search_space, cls.defaults) == []
    assert set(cls.search_space) <= set(cls.defaults)  # every tuned key has an untuned value


@pytest.mark.parametrize("name", ["linear", "random_forest", "mlp"])
def test_sampled_configs_fit(name, datasets):
    """Every corner of the search space is accepted by the library (None depths, 'log2', ...)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(4):
        params = suggest_params(study.ask(), ADAPTERS[name].search_space)
        if name == "mlp":
            params.update(d_block=min(params["d_block"], 128), max_epochs=2)
        _, pred, _ = fit_fast(name, "binary", datasets["binary"], params=params)
        assert np.all(np.isfinite(pred))


def test_pruning_propagates_out_of_mlp_fit(datasets):
    seen = []

    def report(step, value):
        seen.append((step, value))
        if step == 2:
            raise optuna.TrialPruned()

    ctx = FitContext(seed=0, report=report)
    with pytest.raises(optuna.TrialPruned):
        fit_fast("mlp", "binary", datasets["binary"], ctx=ctx)
    assert [s for s, _ in seen] == [1, 2]
    assert all(0.0 <= v <= 1.0 for _, v in seen)  # ROC AUC values, the binary objective


def test_regression_target_is_standardized(datasets):
    X, y, tr, va, te = datasets["regression"]
    scaled = (X, y * 1000.0 + 5000.0, tr, va, te)
    _, pred, _ = fit_fast("mlp", "regression", scaled, params={"max_epochs": 20})
    assert score_predictions("regression", scaled[1][te], pred)["r2"] > 0.5
    assert abs(np.mean(pred) - 5000.0) < 0.2 * np.std(scaled[1])


def test_early_stopping_restores_best_epoch(datasets):
    """A large net with a high learning rate overfits quickly; the returned weights are those of the
    best validation epoch, not the last."""
    X, y, tr, va, te = datasets["multiclass"]
    reported = {}
    ctx = FitContext(seed=0, report=lambda step, value: reported.__setitem__(step, value))
    params = {"d_block": 256, "n_blocks": 3, "dropout": 0.0, "lr": 1e-2, "max_epochs": 60, "patience": 4}
    adapter, _, pre = fit_fast("mlp", "multiclass", datasets["multiclass"], params=params, ctx=ctx)
    info = ctx.info
    assert info["stopped_by"] == "early_stopped" and info["iteration_unit"] == "epochs"
    # the shared rule: never before MIN_ITERATIONS epochs, then patience counts
    assert info["iterations"] == max(info["best_iteration"], MIN_ITERATIONS) + 4 < 60
    # multiclass: the stopping metric (log loss) is also the reported objective
    assert info["best_val_score"] == min(reported.values()) == reported[info["best_iteration"]]
    val_pred = adapter.predict_proba(pre.transform(X.iloc[va]))
    assert objective_value("multiclass", y[va], val_pred, 3) == pytest.approx(info["best_val_score"], rel=1e-9)


def test_binary_mlp_stops_on_log_loss_and_reports_roc_auc(datasets):
    """Early stopping watches validation log loss; the pruner still gets the objective, ROC AUC."""
    X, y, tr, va, te = datasets["binary"]
    reported = {}
    ctx = FitContext(seed=0, report=lambda step, value: reported.__setitem__(step, value))
    adapter, _, pre = fit_fast("mlp", "binary", datasets["binary"], params={"max_epochs": 6}, ctx=ctx)
    info = ctx.info
    assert info["early_stopping_metric"] == "log_loss" and sorted(reported) == list(range(1, 7))
    scores = score_predictions("binary", y[va], adapter.predict_proba(pre.transform(X.iloc[va])), 2)
    assert info["best_val_score"] == pytest.approx(scores["log_loss"], rel=1e-9)
    assert reported[info["best_iteration"]] == pytest.approx(scores["roc_auc"], rel=1e-9)


def test_minimum_epochs_before_early_stopping(datasets):
    """Random labels: validation log loss is best within the first epochs, yet training goes on to
    MIN_ITERATIONS + patience epochs before stopping, and keeps the best epoch."""
    X, y, tr, va, te = datasets["binary"]
    noise = np.random.default_rng(1).integers(0, 2, len(y))
    ctx = FitContext(seed=0)
    fit_fast("mlp", "binary", (X, noise, tr, va, te), params={"max_epochs": 80, "patience": 2, "lr": 1e-2},
             ctx=ctx)
    info = ctx.info
    assert info["stopped_by"] == "early_stopped"
    assert info["iterations"] == max(info["best_iteration"], MIN_ITERATIONS) + 2
    assert info["iterations"] >= MIN_ITERATIONS + 2


def test_time_limit_stops_training(datasets):
    ctx = FitContext(seed=0)
    _, pred, _ = fit_fast("mlp", "binary", datasets["binary"], params={"time_limit_s": 0.0}, ctx=ctx)
    assert ctx.info["stopped_by"] == "deadline" and ctx.info["iterations"] == 1
    assert pred.shape == (len(datasets["binary"][4]), 2)


def test_one_class_binary_validation_falls_back_to_log_loss(datasets):
    X, y, tr, va, te = datasets["binary"]
    va = va[y[va] == 1]  # no ROC AUC on a one-class validation part
    ctx = FitContext(seed=0, report=lambda step, value: pytest.fail("nothing should be reported"))
    fit_fast("mlp", "binary", (X, y, tr, va, te), ctx=ctx)
    assert ctx.info["early_stopping_metric"] == "log_loss"


class DeadlineAfter(FitContext):
    """A deadline that passes after the n-th time fit looks at it: deterministic, no clocks."""

    def __init__(self, looks: int, **kwargs):
        super().__init__(**kwargs)
        self.looks, self.seen = looks, 0

    def deadline_passed(self, reserve: float = 0.0) -> bool:
        self.seen += 1
        return self.seen >= self.looks


def test_random_forest_grows_in_chunks_and_stops_at_the_deadline(datasets):
    from bench.adapters.models.baselines import trees_per_chunk

    X, y, tr, va, te = datasets["binary"]
    full, full_pred, _ = fit_fast("random_forest", "binary", datasets["binary"], params={"n_estimators": 40})
    assert full.ctx.info["stopped_by"] == "converged" and full.ctx.info["iterations"] == 40
    chunk = trees_per_chunk(40, 1)
    assert chunk == 4
    ctx = DeadlineAfter(3, seed=0)
    cut, pred, _ = fit_fast("random_forest", "binary", datasets["binary"], params={"n_estimators": 40}, ctx=ctx)
    assert ctx.info["stopped_by"] == "deadline" and ctx.info["iterations"] == 3 * chunk
    assert ctx.info["iteration_unit"] == "trees" and len(cut.model.estimators_) == 3 * chunk
    assert pred.shape == full_pred.shape and np.all(np.isfinite(pred))
    # growing in chunks gives the same forest as one fit with the same seed
    from sklearn.ensemble import RandomForestClassifier

    pre = full.make_preprocessor().fit(X.iloc[tr])
    ref = RandomForestClassifier(n_estimators=40, max_features="sqrt", random_state=0, n_jobs=1)
    ref.fit(pre.transform(X.iloc[tr]), y[tr])
    np.testing.assert_array_equal(ref.predict_proba(pre.transform(X.iloc[te])), full_pred)


def test_linear_and_dummy_say_how_they_ended(datasets):
    for name, params, end in (("dummy", {}, "converged"), ("linear", {}, "converged"),
                              ("linear", {"max_iter": 1}, "max_iterations")):
        ctx = FitContext(seed=0)
        fit_fast(name, "multiclass", datasets["multiclass"], params=params, ctx=ctx)
        assert ctx.info["stopped_by"] == end
    assert ctx.info["iterations"] == 1 and ctx.info["interruptible"] is False


def test_importing_the_mlp_module_does_not_import_torch():
    code = "import sys, bench.adapters.models.mlp, bench.adapters.models.baselines; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
