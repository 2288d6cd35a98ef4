"""What the XGBoost, LightGBM and CatBoost adapters share: the GBDTAdapter base class.

A library adapter keeps only what is specific to it: its defaults and cited search space (data), its
preprocessor, its table of library metric names (`METRICS`), how to train with a per-round callback
(`_train`) and how to predict with the rounds kept (`_predict_kept`). The base class does the rest:
  * the trivial-fit fallback (no usable feature, or one class in training: smoothed prior / mean);
  * which library metrics each round evaluates on the validation part: the early-stopping metric
    (log loss for classification, RMSE for regression; bench.adapters.early_stopping) and, where it
    differs and is defined, the one equal to the task's objective (binary: AUC). Both come from the
    library's own evaluation (multi-metric eval lists), so nothing is predicted twice;
  * the per-round decisions (RoundMonitor): a pruning report of the objective's value every
    REPORT_EVERY rounds, the shared early-stopping rule (minimum rounds, then patience =
    `early_stopping_rounds`), and the tuning deadline (ctx.deadline), checked after every round;
  * the bookkeeping: ctx.record_end(stopped_by, iterations=rounds trained, best=rounds kept,
    unit="rounds"), plus early_stopping_metric and best_val_score (the stopping metric at the kept round).
The model kept is the best round on the stopping metric, however training ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from bench.adapters.base import Adapter, TrivialFitFallback, objective_defined
from bench.adapters.early_stopping import EarlyStopper
from bench.records.schema import TrialEnd

REPORT_EVERY = 25  # rounds between pruning reports: frequent enough to prune, cheap for the study DB
PATIENCE_KEY = "early_stopping_rounds"


@dataclass(frozen=True)
class LibraryMetrics:
    """One task type in a library's own names."""

    objective: str  # the training loss / objective
    stop: str  # validation metric early stopping watches: log loss (classification) or RMSE
    report: str  # validation metric equal to the bench.metrics objective (AUC / log loss / RMSE)

    def evaluated(self, report: bool) -> list[str]:
        """Metrics to evaluate each round, the stopping one first."""
        return [self.stop] + ([self.report] if report and self.report != self.stop else [])


def positional_columns(X):
    """XGBoost and LightGBM reject feature names with '[', ']', '<', ',', ':' ...: use f0, f1, ..."""
    return X.set_axis([f"f{i}" for i in range(X.shape[1])], axis=1)


class RoundMonitor:
    """The per-round decisions, called by each library's callback after every boosting round."""

    def __init__(self, ctx, patience: int, metrics: LibraryMetrics, report: bool):
        self.ctx, self.metrics = ctx, metrics
        self.report_metric = metrics.report if report else None
        self.stopper = EarlyStopper(patience)
        self.rounds = 0
        self.stopped_by: TrialEnd | None = None  # None: the round cap was reached

    def after_round(self, rounds: int, values: Mapping[str, float]) -> bool:
        """`values`: this round's validation values by library metric name. True: stop training now.
        May raise optuna.TrialPruned (through ctx.report_value)."""
        self.rounds = rounds
        self.stopper.update(rounds, float(values[self.metrics.stop]))
        if self.report_metric and rounds % REPORT_EVERY == 0:
            value = float(values[self.report_metric])
            if value == value and abs(value) != float("inf"):
                self.ctx.report_value(rounds, value)
        if self.stopper.should_stop(rounds):
            self.stopped_by = TrialEnd.EARLY_STOPPED
        elif self.ctx.deadline_passed():
            self.stopped_by = TrialEnd.DEADLINE
        return self.stopped_by is not None

    def replay(self, curve: list[float]) -> None:
        """For fits without callbacks (CatBoost on GPU): the stopping metric's curve, after the fact."""
        for rounds, value in enumerate(curve, start=1):
            self.rounds = rounds
            self.stopper.update(rounds, float(value))


class GBDTAdapter(TrivialFitFallback, Adapter):
    family = "gbdt"
    rounds_key: ClassVar[str] = "n_estimators"  # the parameter capping the number of rounds
    METRICS: ClassVar[dict[str, LibraryMetrics]] = {}  # task type -> the library's names

    def _library_params(self) -> dict[str, Any]:
        """self.params without the keys the adapter handles itself (round cap, patience)."""
        return {k: v for k, v in self.params.items() if k not in (self.rounds_key, PATIENCE_KEY)}

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        metrics = self.METRICS[self.task.task_type]
        # ROC AUC is undefined on a one-class validation part: nothing is reported then (early stopping
        # is on log loss either way).
        monitor = RoundMonitor(self.ctx, int(self.params[PATIENCE_KEY]), metrics,
                               report=objective_defined(self.task, y_val))
        extra = self._train(X_train, y_train, X_val, y_val, monitor) or {}
        self.kept_rounds = kept = self._kept_rounds(monitor)
        self.ctx.record_end(monitor.stopped_by or TrialEnd.MAX_ITERATIONS, iterations=monitor.rounds,
                            best=kept, unit="rounds", early_stopping_metric=metrics.stop,
                            best_val_score=monitor.stopper.best_value, **extra)

    def _train(self, X_train, y_train, X_val, y_val, monitor: RoundMonitor) -> dict | None:
        """Train up to self.params[self.rounds_key] rounds, calling monitor.after_round after each and
        stopping when it says so. Returns extra ctx.info items, if any."""
        raise NotImplementedError

    def _kept_rounds(self, monitor: RoundMonitor) -> int:
        """Rounds the fitted model predicts with (1-based count): the best on the stopping metric."""
        return monitor.stopper.best_iteration or monitor.rounds

    def _predict_kept(self, X):
        raise NotImplementedError

    def _predict_raw(self, X):
        if self._constant is not None:
            return self.constant_output(len(X))
        return self._predict_kept(X)
