"""The one early-stopping rule of every iterative adapter: XGBoost, LightGBM, CatBoost and the torch loop.

What it stops on. Classification early-stops on validation **log loss** (binary and multiclass),
regression on RMSE. The value reported to the pruner and the trial's value stay the task's objective
(bench.metrics: binary ROC AUC, multiclass log loss, regression RMSE), read from the same evaluation.
Why (issue 13): ROC AUC is a step function of the ranking; on a validation part with a few dozen
minority rows it peaks after a handful of rounds by chance, and early stopping then throws the rest of
the model away (XGBoost kept 7 of 57 rounds; CatBoost at learning rate 0.03 kept 31 iterations, its
probabilities barely off the prior). Log loss is a smooth, strictly proper score; it keeps improving
while the probabilities do. H2O's GBM/XGBoost/Deep Learning stop classification on logloss by default
(h2o-3 docs, "Early stopping": stopping_metric).

When it may stop. Never before MIN_ITERATIONS rounds / epochs, and the patience counts from there:
training stops at iteration t once t - max(best, MIN_ITERATIONS) >= patience, so the earliest stop is
MIN_ITERATIONS + patience (70 boosting rounds with the GBDTs' patience of 50; 36 epochs with the
networks' patience of 16). MIN_ITERATIONS = 20 follows the default early-stopping rule of pytabkit
(Holzmüller et al. 2024, RealMLP's code: stop once epoch > 2 * best_epoch + 20, i.e. never before
epoch 20), which also lets the patience start only after a warm-up (Keras EarlyStopping's
start_from_epoch is the same idea).

What is kept. The best iteration on the stopping metric seen so far (ties: the earliest), whether
training ended by early stopping, the round / epoch cap, or the tuning deadline.
"""

from __future__ import annotations

import math

MIN_ITERATIONS = 20


def stopping_metric(task_type: str) -> str:
    """The bench.metrics name early stopping watches: log loss for classification, RMSE for regression."""
    return "rmse" if task_type == "regression" else "log_loss"


class EarlyStopper:
    """Tracks the best iteration of a lower-is-better validation curve and applies the rule above.

    Iterations are 1-based counts (after iteration t, t rounds / epochs are done)."""

    def __init__(self, patience: int, minimum: int = MIN_ITERATIONS):
        if int(patience) < 1:
            raise ValueError(f"early-stopping patience must be at least 1, got {patience}")
        self.patience, self.minimum = int(patience), int(minimum)
        self.best_iteration, self.best_value = 0, math.inf

    def update(self, iteration: int, value: float) -> bool:
        """Record the validation value after `iteration`; True when it is the best so far."""
        if math.isfinite(value) and value < self.best_value:
            self.best_iteration, self.best_value = int(iteration), float(value)
            return True
        return False

    def should_stop(self, iteration: int) -> bool:
        return iteration - max(self.best_iteration, self.minimum) >= self.patience
