"""Helpers shared by the adapter tests: synthetic data with real-data warts and one fit/predict pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_regression

from bench.adapters import FitContext, TaskInfo

TASKS = {"binary": 2, "multiclass": 3, "regression": 0}
# Column names XGBoost/LightGBM reject ('[', ':', ',', '<'): every adapter must cope with them.
AWKWARD_COLUMNS = ["x[0]", "x:1", "x,2", "x<3"]


def make_data(task_type: str, n: int = 500, seed: int = 0, n_features: int = 5):
    """Easy synthetic data with the warts real data has: awkward column names, a categorical column
    with NaN, a level seen only in the test part, and missing numerics.
    Returns (X, y, train, val, test) with index arrays for the three parts."""
    rng = np.random.default_rng(seed)
    if task_type == "regression":
        X, y = make_regression(n_samples=n, n_features=n_features, n_informative=4, noise=10.0,
                               random_state=seed)
    else:
        X, y = make_classification(n_samples=n, n_features=n_features, n_informative=4, n_redundant=0,
                                   n_classes=TASKS[task_type], n_clusters_per_class=1, class_sep=1.5,
                                   random_state=seed)
    columns = (AWKWARD_COLUMNS + [f"x{i}" for i in range(len(AWKWARD_COLUMNS), n_features)])[:n_features]
    frame = pd.DataFrame(X, columns=columns)
    frame.loc[rng.random(n) < 0.05, columns[0]] = np.nan
    cat = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    cat[rng.random(n) < 0.1] = None
    idx = rng.permutation(n)
    train, val, test = idx[: int(0.6 * n)], idx[int(0.6 * n): int(0.8 * n)], idx[int(0.8 * n):]
    cat[test[:10]] = "only_in_test"
    frame["cat"] = pd.Series(cat).astype("category")
    return frame, y, train, val, test


def fit_predict(adapter_cls, task_type, data, params=None, ctx=None, n_classes=None):
    """Fit on the train part (validation part for early stopping); predict the test part.
    params go to the adapter as given: callers merge in their own quick settings."""
    X, y, tr, va, te = data
    task = TaskInfo(task_type, TASKS[task_type] if n_classes is None else n_classes)
    adapter = adapter_cls(task, params or {}, ctx or FitContext(seed=0, threads=1))
    pre = adapter.make_preprocessor()
    pre.fit(X.iloc[tr])
    adapter.fit(pre.transform(X.iloc[tr]), y[tr], pre.transform(X.iloc[va]), y[va])
    return adapter, adapter.predictions(pre.transform(X.iloc[te])), pre


def check_output(pred, n_rows, task_type, n_classes):
    if task_type == "regression":
        assert pred.shape == (n_rows,) and np.all(np.isfinite(pred))
    else:
        assert pred.shape == (n_rows, n_classes)
        assert np.all(pred >= 0)
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-6)
