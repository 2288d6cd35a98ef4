"""bench.metrics computes the objective metrics (RMSE, log loss, ROC AUC) without scikit-learn's input
validation, as scikit-learn computes them: the same bits on every input, so records do not change while
ensemble selection, which evaluates the objective thousands of times per split, gets ~10x cheaper."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from bench.metrics import _EPS, check_proba, objective_value, score_predictions

SIZES = [2, 3, 7, 64, 129, 500, 4099]


def _binary_cases(rng):
    for n in SIZES:
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        for p in (rng.random(n), np.round(rng.random(n), 1), np.full(n, 0.5), (y + rng.random(n)) / 2.0):
            yield y, np.c_[1 - p, p]


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_is_scikit_learns_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for y, proba in _binary_cases(rng):
        expected = skm.roc_auc_score(y, check_proba(proba, 2)[:, 1])  # what bench.metrics gave before
        assert objective_value("binary", y, proba, 2) == expected
        assert score_predictions("binary", y, proba, 2)["roc_auc"] == expected
    assert np.isnan(objective_value("binary", np.zeros(4, int), np.full((4, 2), 0.5), 2))


@pytest.mark.parametrize("seed", range(5))
def test_log_loss_is_scikit_learns_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for n in SIZES:
        k = int(rng.integers(2, 9))
        y = rng.integers(0, k - 1, n)  # the last class never occurs: labels= must still count it
        proba = rng.dirichlet(np.full(k, 0.3), n)
        proba[0] = np.eye(k)[(y[0] + 1) % k]  # a confident mistake: the clipping decides
        expected = skm.log_loss(y, np.clip(check_proba(proba, k), _EPS, 1.0), labels=list(range(k)))
        task = "binary" if k == 2 else "multiclass"
        assert score_predictions(task, y, proba, k)["log_loss"] == expected
        if k > 2:
            assert objective_value("multiclass", y, proba, k) == expected


@pytest.mark.parametrize("seed", range(5))
def test_rmse_is_scikit_learns_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for n in SIZES:
        y, pred = rng.normal(size=n) * rng.uniform(0.1, 1e3), rng.normal(size=n)
        expected = float(np.sqrt(skm.mean_squared_error(y, pred)))
        assert objective_value("regression", y, pred) == expected
        assert objective_value("regression", y.astype(int), pred) == float(np.sqrt(skm.mean_squared_error(
            y.astype(int), pred)))
