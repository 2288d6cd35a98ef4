"""Explanations of fitted models (bench/explain): TreeSHAP additivity, the permutation explainer, BoostIn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.adapters import FitContext, TaskInfo, get_adapter
from bench.explain.influence import boostin
from bench.explain.shap_values import FrameCodec, gbdt_margin, gbdt_shap, permutation_shap, side_by_side

from .adapter_helpers import TASKS, make_data


def _fit(name: str, task_type: str, data, params=None):
    X, y, tr, va, te = data
    cls = get_adapter(name)
    params = {getattr(cls, "rounds_key", k) if k == "n_estimators" else k: v for k, v in (params or {}).items()}
    adapter = cls(TaskInfo(task_type, TASKS[task_type]), {**cls.smoke_params, **params}, FitContext(seed=0))
    pre = adapter.make_preprocessor()
    pre.fit(X.iloc[tr])
    adapter.fit(pre.transform(X.iloc[tr]), y[tr], pre.transform(X.iloc[va]), y[va])
    return adapter, pre


@pytest.mark.parametrize("task_type", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", ["xgboost", "lightgbm", "catboost"])
def test_gbdt_shap_values_sum_to_the_margin_minus_the_expected_value(name, task_type):
    data = make_data(task_type, n=200)
    adapter, pre = _fit(name, task_type, data, {"n_estimators": 40, "early_stopping_rounds": 5})
    X_test = pre.transform(data[0].iloc[data[4]])
    expl = gbdt_shap(adapter, X_test)
    margin = gbdt_margin(adapter, X_test)
    k = 3 if task_type == "multiclass" else 1
    assert expl.values.shape == (len(X_test), X_test.shape[1], k) and expl.expected.shape == (k,)
    assert expl.scale == "margin" and expl.features == [str(c) for c in X_test.columns]
    np.testing.assert_allclose(expl.values.sum(axis=1) + expl.expected, margin, rtol=1e-5,
                               atol=1e-5 * max(1.0, float(np.abs(margin).max())))
    # The margin is the kept model's: the probabilities the adapter predicts come from it.
    if task_type == "binary":
        np.testing.assert_allclose(1 / (1 + np.exp(-margin[:, 0])), adapter.predictions(X_test)[:, 1], rtol=1e-5)
    # Only the informative features carry weight: the importance shares sum to 1.
    assert expl.importance().sum() == pytest.approx(1.0)


@pytest.mark.slow  # ~30 s: shap's masking code is compiled by numba on its first call in a process
def test_permutation_shap_explains_a_neural_model_on_the_original_columns():
    pytest.importorskip("shap")
    data = make_data("multiclass", n=150)
    X, y, tr, va, te = data
    adapter, pre = _fit("mlp", "multiclass", data)
    rows = X.iloc[te[:4]]

    def predict(frame):
        return adapter.predictions(pre.transform(frame))

    expl = permutation_shap(predict, rows, X.iloc[tr[:8]], max_evals=2 * X.shape[1] + 1)
    assert expl.values.shape == (4, X.shape[1], 3) and expl.features == list(X.columns)
    # Exactly additive: each row's values sum to its prediction minus the background's mean prediction.
    np.testing.assert_allclose(expl.values.sum(axis=1) + expl.expected, predict(rows), atol=1e-6)
    table = side_by_side({"mlp": expl, "mlp again": expl}, top=3)
    assert list(table.index) == [1, 2, 3] and ("mlp", "feature") in table.columns


def test_frame_codec_round_trips_categoricals_and_missing_values():
    X = make_data("binary", n=60)[0]
    codec = FrameCodec(X)
    back = codec.decode(codec.encode(X))
    pd.testing.assert_frame_equal(back, X.reset_index(drop=True), check_categorical=False, check_dtype=False)


def _planted(seed: int, n: int, sep: float, n_features: int):
    """Two classes along feature a (plus noise features); the most typical class-0 training row is
    relabelled 1. Returns train, validation and test frames and labels, and the planted row's position."""
    rng = np.random.default_rng(seed)

    def part(m):
        y = np.arange(m) % 2
        cols = [np.where(y == 1, sep, -sep) + rng.normal(0, 1, m)] + [rng.normal(0, 1, m)
                                                                       for _ in range(n_features - 1)]
        return pd.DataFrame(np.column_stack(cols), columns=[f"f{i}" for i in range(n_features)]), y

    (Xt, yt), (Xv, yv), (Xs, ys) = part(n), part(30), part(40)
    bad = int(np.argmin(np.abs(Xt["f0"].to_numpy() + sep) + 10 * (yt == 1)))
    yt = yt.copy()
    yt[bad] = 1
    return Xt, yt, Xv, yv, Xs, ys, bad


@pytest.mark.parametrize("name,n,sep,n_features,params", [
    ("xgboost", 40, 2.0, 1, {}),  # XGBoost defaults
    ("lightgbm", 60, 2.5, 2, {"min_data_in_leaf": 5}),  # 20 rows per leaf would not fit 60 rows
])
@pytest.mark.parametrize("seed", range(4))
def test_a_planted_mislabeled_row_is_the_most_harmful_training_row(name, n, sep, n_features, params, seed):
    Xt, yt, Xv, yv, Xs, ys, bad = _planted(seed, n, sep, n_features)
    cls = get_adapter(name)
    adapter = cls(TaskInfo("binary", 2), params, FitContext(seed=0))
    pre = adapter.make_preprocessor().fit(Xt)
    adapter.fit(pre.transform(Xt), yt, pre.transform(Xv), yv)
    influence = boostin(adapter, pre.transform(Xt), yt, pre.transform(Xs), ys)
    ranking = influence.ranking(top=3)
    assert ranking.iloc[0]["row"] == bad and ranking.iloc[0]["kind"] == "harmful"
    assert influence.leaf_fit_error < 1e-3


@pytest.mark.parametrize("task_type", ["multiclass", "regression"])
@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_boostin_recomputes_the_models_leaf_values_from_its_gradients(name, task_type):
    # The Newton steps BoostIn differentiates are the model's own: the gradient, hessian and L2
    # conventions match the library's (a wrong one shows up as a large leaf_fit_error).
    data = make_data(task_type, n=200)
    adapter, pre = _fit(name, task_type, data, {"n_estimators": 30})
    X, y, tr, va, te = data
    influence = boostin(adapter, pre.transform(X.iloc[tr]), y[tr], pre.transform(X.iloc[te]), y[te])
    assert influence.leaf_fit_error < 1e-3
    assert influence.removal_effect.shape == (len(tr),) and np.isfinite(influence.removal_effect).all()


def test_unsupported_models_are_refused_by_name():
    data = make_data("binary", n=120)
    adapter, pre = _fit("catboost", "binary", data)
    X, y, tr, va, te = data
    with pytest.raises(ValueError, match="xgboost and lightgbm, not 'catboost'"):
        boostin(adapter, pre.transform(X.iloc[tr]), y[tr], pre.transform(X.iloc[te]), y[te])
    mlp, mpre = _fit("mlp", "binary", data)
    with pytest.raises(ValueError, match="use permutation_shap"):
        gbdt_shap(mlp, mpre.transform(X.iloc[te]))
