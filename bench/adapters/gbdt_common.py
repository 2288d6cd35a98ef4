"""Edge-case helpers shared by the XGBoost, LightGBM and CatBoost adapters."""

from __future__ import annotations

import numpy as np


def positional_columns(X):
    return X.set_axis([f"f{i}" for i in range(X.shape[1])], axis=1)


def nothing_to_learn(task, X_train, y_train) -> bool:
    """No usable feature, or a classification training part with one class: CatBoost raises, XGBoost and
    LightGBM return a clipped base score (P(unseen class) ~ 1e-6 / 1e-15, a huge log loss)."""
    return X_train.shape[1] == 0 or (task.is_classification and len(np.unique(y_train)) < 2)


def constant_prediction(task, y: np.ndarray) -> np.ndarray:
    """Laplace-smoothed class prior (finite log loss) or the mean: the fallback when nothing is learnable."""
    if not task.is_classification:
        return np.array([float(np.mean(y))])
    counts = np.bincount(np.asarray(y, dtype=int), minlength=task.n_classes) + 1.0
    return counts / counts.sum()


def objective_defined(task, y_val: np.ndarray) -> bool:
    """ROC AUC is undefined on a one-class validation part (XGBoost then gives NaN, LightGBM 1.0, and
    early stopping keeps one tree). The adapters then stop on log loss and report nothing, like the MLP."""
    return task.task_type != "binary" or len(np.unique(y_val)) == 2


def early_stopping_metric(task, y_val: np.ndarray, objectives: dict, fallback: str) -> tuple[bool, str]:
    """(report to the tuner?, library metric to early-stop on): the objective's metric when defined."""
    report = objective_defined(task, y_val)
    return report, (objectives[task.task_type][1] if report else fallback)


class TrivialFitFallback:
    """Mixin for adapters: when nothing is learnable, predict the smoothed prior / mean instead."""

    _constant = None

    def fit_constant_if_trivial(self, X_train, y_train) -> bool:
        self._constant = None
        if nothing_to_learn(self.task, X_train, y_train):
            self._constant = constant_prediction(self.task, y_train)
            self.ctx.info.update(constant_model=True, best_iteration=0)
            return True
        return False

    def constant_output(self, n_rows: int) -> np.ndarray:
        out = np.tile(self._constant, (n_rows, 1))
        return out if self.task.is_classification else out.ravel()
