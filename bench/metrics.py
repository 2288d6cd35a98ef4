"""Metrics per task type, and the one metric per task type that tuning optimizes and leaderboards rank.

Objective per task type (explicit, used for Optuna, early stopping and the leaderboard score):
  binary      -> ROC AUC      (maximize; threshold-free, robust to class imbalance)
  multiclass  -> log loss     (minimize; uses the full probability vector)
  regression  -> RMSE         (minimize; on the original target scale)
The same metrics are reported on the test part together with accuracy / log loss / R^2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Direction

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "maximize"


OBJECTIVES = {
    "binary": Objective("roc_auc", "maximize"),
    "multiclass": Objective("log_loss", "minimize"),
    "regression": Objective("rmse", "minimize"),
}

# Probabilities are clipped before log loss so that one confident mistake gives a large but finite loss.
_EPS = 1e-15


def objective_for(task_type: str) -> Objective:
    return OBJECTIVES[task_type]


def score_predictions(task_type: str, y_true: np.ndarray, pred: np.ndarray, n_classes: int = 0) -> dict:
    """All reported metrics. `pred` is a probability matrix (n, n_classes) or regression values (n,)."""
    from sklearn import metrics as skm  # here: importing this module (every adapter does) stays cheap

    if task_type == "regression":
        pred = _regression_values(pred)
        return {"rmse": _rmse(y_true, pred), "mae": float(skm.mean_absolute_error(y_true, pred)),
                "r2": float(skm.r2_score(y_true, pred))}
    proba = check_proba(pred, n_classes)
    out = {"log_loss": _log_loss(y_true, proba, n_classes),
           "accuracy": float(skm.accuracy_score(y_true, proba.argmax(axis=1)))}
    if task_type == "binary":
        out["roc_auc"] = _roc_auc(y_true, proba)
    return out


def objective_value(task_type: str, y_true, pred, n_classes: int = 0) -> float:
    """The objective metric alone: the same number as score_predictions(...)[objective], without the
    other metrics (ensemble selection evaluates it thousands of times per job)."""
    if task_type == "regression":
        return _rmse(y_true, _regression_values(pred))
    proba = check_proba(pred, n_classes)
    return _roc_auc(y_true, proba) if task_type == "binary" else _log_loss(y_true, proba, n_classes)


def _regression_values(pred) -> np.ndarray:
    pred = np.asarray(pred, dtype="float64").ravel()
    if not np.all(np.isfinite(pred)):
        raise ValueError("model produced non-finite regression predictions")
    return pred


def _rmse(y_true, pred: np.ndarray) -> float:
    """scikit-learn's mean_squared_error, square-rooted, without its input validation (bit-identical:
    tests/test_metrics_fast.py)."""
    return float(np.sqrt(np.mean((np.asarray(y_true, dtype="float64") - pred) ** 2)))


def _log_loss(y_true, proba: np.ndarray, n_classes: int) -> float:
    """scikit-learn's log_loss on probabilities clipped to [_EPS, 1] (and then, as it does, to [eps,
    1 - eps]), without its input validation: ~0.1 ms instead of ~5 ms, the same bits (ensemble selection
    calls the objective thousands of times per split; tests/test_metrics_fast.py compares)."""
    eps = np.finfo(np.float64).eps
    picked = proba[np.arange(len(proba)), np.asarray(y_true).astype(int)]
    return float(-np.mean(np.log(np.clip(np.clip(picked, _EPS, 1.0), eps, 1 - eps))))


def _roc_auc(y_true, proba: np.ndarray) -> float:
    """scikit-learn's roc_auc_score (NaN when y_true has one class), computed as it computes it (the ROC
    curve's corners, then the trapezoidal area) without its input validation: the same bits at a tenth
    of the cost (tests/test_metrics_fast.py compares)."""
    y_true = np.asarray(y_true)
    if len(np.unique(y_true)) != 2:
        return float("nan")
    score = proba[:, 1]
    order = np.argsort(score, kind="stable")[::-1]  # descending; the order inside a tie changes nothing
    ranked, positive = score[order], (y_true[order] == 1).astype("float64")
    ends = np.r_[np.nonzero(np.diff(ranked))[0], len(ranked) - 1]  # last row of each distinct score
    tps = np.cumsum(positive)[ends]
    fps = 1 + ends.astype("float64") - tps
    if len(fps) > 2:  # drop points on straight segments (they add no area), as roc_curve does
        corners = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps = fps[corners], tps[corners]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def check_proba(proba: np.ndarray, n_classes: int) -> np.ndarray:
    proba = np.asarray(proba, dtype="float64")
    if proba.ndim != 2 or proba.shape[1] != n_classes:
        raise ValueError(f"expected probabilities of shape (n, {n_classes}), got {proba.shape}")
    if not np.all(np.isfinite(proba)):
        raise ValueError("model produced non-finite probabilities")
    sums = proba.sum(axis=1, keepdims=True)
    if np.any(np.abs(sums - 1.0) > 1e-3):
        raise ValueError("model probabilities do not sum to 1")
    return proba / sums


def epoch_scores(task_type: str, y_true: np.ndarray, pred: np.ndarray, n_classes: int, names) -> dict:
    """Only the metrics in `names` ("log_loss", "roc_auc", "rmse"), for loops that score every epoch.

    Same definitions as score_predictions (which the trial's value and the test records use): log
    loss on probabilities clipped to [_EPS, 1] and then, as scikit-learn does, to [eps, 1 - eps]; ROC
    AUC with tied scores counted one half (the Mann-Whitney U statistic, equal to the area under
    scikit-learn's ROC curve); RMSE. Plain numpy: scikit-learn's input validation costs ~6 ms per call
    (binary, 8,000 rows), which on a GPU is a tenth of an epoch at batch 1024, for the same numbers:
    log loss and RMSE (what early stopping compares) are bit-identical to score_predictions', ROC AUC
    equal up to rounding (tests/test_fast_path.py compares them).
    """
    from scipy.stats import rankdata

    names, out = set(names), {}
    y_true = np.asarray(y_true)
    if task_type == "regression":
        pred = np.asarray(pred, dtype="float64").ravel()
        if not np.all(np.isfinite(pred)):
            raise ValueError("model produced non-finite regression predictions")
        if "rmse" in names:
            out["rmse"] = float(np.sqrt(np.mean((y_true - pred) ** 2)))
        return out
    proba = check_proba(pred, n_classes)
    if "log_loss" in names:
        eps = np.finfo(np.float64).eps
        picked = np.clip(np.clip(proba[np.arange(len(y_true)), y_true.astype(int)], _EPS, 1.0), eps, 1 - eps)
        out["log_loss"] = float(-np.mean(np.log(picked)))
    if "roc_auc" in names:
        positive = y_true == 1
        n_pos = int(positive.sum())
        n_neg = len(y_true) - n_pos
        if n_pos == 0 or n_neg == 0:
            out["roc_auc"] = float("nan")
        else:
            ranks = rankdata(proba[:, 1])  # ties get their mean rank
            out["roc_auc"] = float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return out
