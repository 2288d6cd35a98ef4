"""What the XGBoost, LightGBM and CatBoost adapters share: the GBDTAdapter base class.

A library adapter keeps only what is specific to it: its defaults and cited search space (data), its
preprocessor, its table of library metric names (`METRICS`), how to train with a per-round callback
(`_train`) and how to predict with the rounds kept (`_predict_kept`). The base class does the rest:
  * the trivial-fit fallback (no usable feature, or one class in training: smoothed prior / mean);
  * the per-round protocol, through the shared StoppingMonitor (bench.adapters.framework.early_stopping): the
    early-stopping metric (log loss for classification, RMSE for regression) from the library's own
    evaluation of the validation part, a pruning report of the objective every REPORT_EVERY rounds,
    the shared rule (minimum rounds, then patience = `early_stopping_rounds`), the deadline (with room
    for the test prediction that follows the fit) and the one precedence of ends;
  * scoring once, not per round: where the library hands the callback its current validation
    predictions (LightGBM, XGBoost: `_after_round(..., current=...)`), the objective is computed from
    them at report rounds only (the library evaluates the stopping metric alone), and the predictions
    of the best round are kept, so the harness does not predict the validation part again after the
    fit (Adapter.validation_predictions). CatBoost, whose callback sees metric values only, evaluates
    the objective as a second library metric (`LibraryMetrics.report`);
  * the bookkeeping: ctx.record_end(stopped_by, iterations=rounds trained, best=rounds kept,
    unit="rounds"), plus early_stopping_metric and best_val_score (the stopping metric at the kept round)
    and library_metric (the library's name of the stopping metric).
The model kept is the best round on the stopping metric, however training ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Generic, Mapping, TypedDict

import numpy as np

from bench.adapters.framework.contract import Adapter, ParamsT, TrivialFitFallback, expand_proba
from bench.adapters.framework.early_stopping import PROBE_ROWS, StoppingMonitor, timed

REPORT_EVERY = 25  # rounds between pruning reports: frequent enough to prune, cheap for the study DB
PATIENCE_KEY = "early_stopping_rounds"


class GBDTParams(TypedDict):
    """The key every GBDT's params have besides the library's own (its TypedDict extends this one)."""

    early_stopping_rounds: int  # patience of the shared early-stopping rule, in rounds


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


def probe_rows(X_val):
    """The validation rows a deadline probe predicts (bench.adapters.framework.early_stopping.PROBE_ROWS)."""
    return positional_columns(X_val.iloc[:PROBE_ROWS])


def timed_probe(predict: Callable[[], Any], rows: int) -> tuple[float, int]:
    """(seconds predict() took, rows it predicted): a StoppingMonitor probe's answer."""
    return timed(predict)[1], rows


class GBDTAdapter(TrivialFitFallback, Adapter[ParamsT], Generic[ParamsT]):
    family = "gbdt"
    rounds_key: ClassVar[str] = "n_estimators"  # the parameter capping the number of rounds
    METRICS: ClassVar[dict[str, LibraryMetrics]] = {}  # task type -> the library's names

    def _library_params(self) -> dict[str, Any]:
        """self.params without the keys the adapter handles itself (round cap, patience)."""
        return {k: v for k, v in self.params.items() if k not in (self.rounds_key, PATIENCE_KEY)}

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        self.kept_val_predictions = None
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        monitor = StoppingMonitor(self.ctx, self.task, y_val, int(self.params[PATIENCE_KEY]), unit="rounds",
                                  max_iterations=int(self.params[self.rounds_key]), report_every=REPORT_EVERY)
        extra = self._train(X_train, y_train, X_val, y_val, monitor) or {}
        # The rounds kept: the best on the stopping metric (the monitor's, for every library alike).
        self.kept_rounds = kept = monitor.best_iteration or monitor.iterations
        self.kept_val_predictions = monitor.kept_predictions if kept == monitor.best_iteration else None
        extra.update(self._keep_rounds(kept, monitor, X_val))
        monitor.finish(best=kept, library_metric=self.METRICS[self.task.task_type].stop, **extra)

    def _after_round(self, monitor: StoppingMonitor, rounds: int, values: Mapping[str, float],
                     current: Callable[[], np.ndarray] | None = None) -> bool:
        """The protocol after a boosting round. `values`: the round's validation values by library metric
        name; `current`: the library's validation predictions after this round, if it has them (raw
        output as _as_predictions takes it). True: stop training now. May raise optuna.TrialPruned."""
        metrics = self.METRICS[self.task.task_type]
        if current is not None:
            def predictions():
                return self._as_predictions(current())

            def objective():
                return monitor.objective_of(predictions())
            return monitor.after_iteration(rounds, float(values[metrics.stop]), objective, predictions=predictions)
        return monitor.after_iteration(rounds, float(values[metrics.stop]),
                                       lambda: values.get(metrics.report))

    def _as_predictions(self, raw: np.ndarray) -> np.ndarray:
        """The library's probabilities (over all task classes) or values as Adapter.predictions gives them;
        always a fresh array (libraries reuse their prediction buffers)."""
        if not self.task.is_classification:
            return np.array(raw, dtype="float64").ravel()
        return np.array(expand_proba(raw, np.arange(self.task.n_classes), self.task.n_classes), dtype="float64")

    def _train(self, X_train, y_train, X_val, y_val, monitor: StoppingMonitor) -> dict | None:
        """Train up to self.params[self.rounds_key] rounds, calling self._after_round after each and
        stopping when it says so. Returns extra ctx.info items, if any."""
        raise NotImplementedError

    def _keep_rounds(self, kept: int, monitor: StoppingMonitor, X_val) -> dict:
        """After training: make the model predict with its first `kept` rounds (where the library needs
        more than an iteration count at prediction time). Returns extra ctx.info items."""
        return {}

    def _predict_kept(self, X):
        raise NotImplementedError

    def predict_raw(self, X):
        if self._constant is not None:
            return self.constant_output(len(X))
        return self._predict_kept(X)
