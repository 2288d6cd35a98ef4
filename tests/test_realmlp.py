"""RealMLP through pytabkit: real (few-epoch) fits on data with missing values and categoricals, the
harness's tuning path, determinism, and the preprocessing it relies on. Skipped without the extra."""

import time

import numpy as np
import pandas as pd
import pytest

from bench.adapters import FitContext, TaskInfo, get_adapter
from bench.adapters.models.realmlp import HIDDEN_SIZES, ImputedFramePreprocessor, RealMLPAdapter
from bench.adapters.space import invalid_values
from bench.metrics import score_predictions
from bench.tuning import Budget, Parts, tune
from tests.adapter_helpers import check_output, fit_predict, make_data

pytest.importorskip("pytabkit")
N_CLASSES = {"binary": 2, "multiclass": 3, "regression": 0}


class ShortRealMLP(RealMLPAdapter):
    """RealMLP with the small smoke network and 30 epochs as defaults, so that the harness's own tuning
    path stays quick (30: RealMLP's learning-rate warm-up makes the first few epochs of a regression fit
    worse than predicting the mean)."""

    defaults = {**RealMLPAdapter.defaults, **RealMLPAdapter.smoke_params, "n_epochs": 30}


def _fit(task_type, data, params=None, seed=0, n_classes=None):
    params = {**RealMLPAdapter.defaults_for(task_type), **RealMLPAdapter.smoke_params, **(params or {})}
    return fit_predict(RealMLPAdapter, task_type, data, params, FitContext(seed=seed, threads=1), n_classes)


@pytest.mark.parametrize("task_type, trials", [("binary", 2), ("multiclass", 1), ("regression", 1)])
def test_through_the_harness_beats_the_trivial_prediction(task_type, trials, make_ds):
    """Dataset with a categorical column holding NaN (conftest); defaults trial (+ one TPE trial)."""
    ds = make_ds(task_type, n=300)
    idx = np.random.default_rng(0).permutation(ds.n_rows)
    rows = {"train": idx[:180], "val": idx[180:240], "test": idx[240:]}
    take = {k: ds.X.iloc[v].reset_index(drop=True) for k, v in rows.items()}
    parts = Parts(take["train"], ds.y[rows["train"]], take["val"], ds.y[rows["val"]], take["test"], ds.y[rows["test"]])
    task = TaskInfo(ds.task_type, ds.n_classes)
    out = tune(ShortRealMLP, task, parts, Budget(trials), seed=0, threads=1, device="cpu", storage=None,
               study_name="r")
    variants = {v.variant: v for v in out.variants}
    assert set(variants) == ({"default", "tuned"} if trials > 1 else {"default"}) and not out.failures
    default = variants["default"]
    assert default.params["lr"] == (0.2 if task_type == "regression" else 0.04)  # RealMLP-TD per task
    assert ("ls_eps" in default.params) == (task_type != "regression")
    assert default.fit_info["best_iteration"] is not None
    assert default.fit_info["stopped_by"] == "max_iterations" and default.fit_info["iteration_unit"] == "epochs"
    y_test = parts.y_test
    if task_type == "binary":
        assert default.test_metrics["roc_auc"] > 0.8
    elif task_type == "multiclass":
        prior = np.bincount(parts.y_train, minlength=3) / len(parts.y_train)
        assert default.test_metrics["log_loss"] < score_predictions(
            task_type, y_test, np.tile(prior, (len(y_test), 1)), 3)["log_loss"]
    else:
        assert default.test_metrics["rmse"] < np.std(y_test)


@pytest.mark.parametrize("task_type", ["binary", "multiclass", "regression"])
def test_awkward_data_gives_well_formed_predictions(task_type):
    """Awkward column names, NaN numerics, a test-only category (tests.adapter_helpers.make_data)."""
    data = make_data(task_type, n=300)
    adapter, pred, _ = _fit(task_type, data)
    check_output(pred, len(data[4]), task_type, N_CLASSES[task_type])
    # best epoch chosen like every adapter's early stopping: log loss (classification) / RMSE
    info = adapter.ctx.info
    assert info["library_metric"] == {"binary": "cross_entropy", "multiclass": "cross_entropy",
                                      "regression": "rmse"}[task_type]
    assert info["early_stopping_metric"] == ("rmse" if task_type == "regression" else "log_loss")


def test_same_seed_same_predictions():
    data = make_data("multiclass", n=240)
    runs = [_fit("multiclass", data, seed=s)[1] for s in (3, 3, 4)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_class_missing_from_training_keeps_all_columns():
    X, y, tr, va, te = make_data("multiclass", n=300)
    tr, va = tr[y[tr] != 2], va[y[va] != 2]  # class 2 never seen before the test part
    _, pred, _ = _fit("multiclass", (X, y, tr, va, te))
    assert pred.shape == (len(te), 3) and np.all(pred[:, 2] == 0)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-6)


def test_one_class_in_training_falls_back_to_the_prior():
    X, y, tr, va, te = make_data("binary", n=200)
    adapter, pred, _ = _fit("binary", (X, y, tr[y[tr] == 0], va, te))
    assert adapter.ctx.info["constant_model"] and pred.shape == (len(te), 2) and pred[0, 0] > pred[0, 1]


def test_preprocessor_imputes_from_training_and_flags_missing_values():
    train = pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0], "b": [1.0, 2.0, 3.0, 4.0],
                          "c": pd.Categorical(["x", "y", None, "x"])})
    test = pd.DataFrame({"a": [np.nan, 2.0], "b": [np.nan, 0.0], "c": pd.Categorical(["new", "y"])})
    pre = ImputedFramePreprocessor().fit(train)
    out = pre.transform(test)
    assert out["a"].tolist() == [3.0, 2.0]  # median of the training part's 1, 3, 5
    assert out["b"].tolist() == [2.5, 0.0]  # no NaN in training: imputed, but no indicator column
    assert out["__missing_0"].tolist() == [1.0, 0.0] and list(out.columns) == ["a", "b", "__missing_0", "c"]
    assert out["c"].isna().tolist() == [True, False]  # unseen level -> pytabkit's missing/unknown code
    assert not out[["a", "b"]].isna().any().any()


def test_defaults_and_space_follow_the_task_type():
    cls = get_adapter("realmlp")
    assert cls is RealMLPAdapter and cls.unavailable_reason() is None
    for task_type in ("binary", "regression"):
        space, defaults = cls.search_space_for(task_type), cls.defaults_for(task_type)
        assert invalid_values(space, defaults) == [] and set(space) <= set(defaults)
    assert "ls_eps" not in cls.search_space_for("regression")
    assert cls.defaults_for("regression")["act"] == "mish" and cls.defaults_for("binary")["act"] == "selu"


def test_every_choice_of_the_search_space_fits():
    """Each embedding type, width, activation, and no label smoothing: all accepted by pytabkit."""
    data = make_data("binary", n=200)
    space = RealMLPAdapter.search_space
    widths, acts = list(HIDDEN_SIZES), space["act"].choices
    for i, emb in enumerate(space["num_emb_type"].choices):
        params = {"num_emb_type": emb, "hidden_sizes": widths[i % 3], "act": acts[i % 3],
                  "add_front_scale": i % 2 == 0, "ls_eps": 0.0, "wd": 0.0, "p_drop": 0.3, "n_epochs": 2}
        assert invalid_values(space, params) == []
        _, pred, _ = _fit("binary", data, params)
        check_output(pred, len(data[4]), "binary", 2)


def test_the_tuning_deadline_stops_training_and_keeps_the_best_epoch():
    data = make_data("binary", n=200)
    ctx = FitContext(seed=0, threads=1, deadline=time.monotonic() + 2)
    adapter, pred, _ = fit_predict(RealMLPAdapter, "binary", data,
                                   {**RealMLPAdapter.defaults, **RealMLPAdapter.smoke_params, "n_epochs": 100_000}, ctx)
    check_output(pred, len(data[4]), "binary", 2)
    info = adapter.ctx.info
    assert info["stopped_by"] == "deadline"
    assert 1 <= info["best_iteration"] <= info["iterations"] < 100_000  # stopped long before; best epoch restored


def test_a_deadline_already_passed_trains_one_epoch():
    data = make_data("binary", n=200)
    ctx = FitContext(seed=0, threads=1, deadline=time.monotonic() - 1)
    adapter, pred, _ = fit_predict(RealMLPAdapter, "binary", data,
                                   {**RealMLPAdapter.defaults, **RealMLPAdapter.smoke_params}, ctx)
    check_output(pred, len(data[4]), "binary", 2)
    assert ctx.info["stopped_by"] == "deadline" and ctx.info["iterations"] == 1
