"""The one stopping protocol of every iterative adapter: the rule, its precedence, and the monitor that runs it.

Who uses it. XGBoost, LightGBM and CatBoost (per boosting round, gbdt_base), the shared torch loop (per
epoch: MLP, ResNet, FT-Transformer, MLP-PLR, TabM, ModernNCA, ExcelFormer; per stage: GrowNet, through
the loop's stage hook), TabNet and TabR (per epoch, in their libraries' callbacks) all call one
StoppingMonitor after every iteration. It scores the iteration (or takes the library's value), keeps
the best, reports the objective to the pruner, checks the deadline, decides early stopping and records
how the fit ended (ctx.record_end). EBM and RealMLP stop inside their libraries; they name their end
with `end_reason`, the same precedence.

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
training ended by early stopping, the round / epoch cap, or the deadline. ctx.info gets
best_iteration, best_val_score (the stopping metric at the kept iteration, which the returned model
scores on the validation part: bench.testing checks it) and early_stopping_metric.

Precedence of ends (issue 17: the GBDTs used to check early stopping first and the others the deadline
first, so one event was `early_stopped` for one family and `deadline` for another). After iteration t,
in this order:
  1. diverged: the iteration's outputs are not finite; nothing after it is usable.
  2. deadline, when the clock interrupted iteration t (an epoch / stage cut between batches): the last
     iteration is not the one an unlimited run would have trained.
  3. early_stopped: the rule fires at the completed iteration t; an unlimited run stops here too, with
     the same kept iteration, so the clock changed nothing.
  4. max_iterations: the cap is reached, likewise.
  5. deadline: the clock has run out after a complete iteration t and training would have gone on.
A `deadline` end therefore always means that the clock changed the result (leaderboards count it as
clock-cut). Pruning is not a fit's end: the report comes before the decision and raises TrialPruned.

The deadline leaves room for what follows the fit (issue 17): ctx.predict_rows rows (the test part)
are predicted with the kept model once fit returns, so the monitor stops when the clock plus the
time that prediction will take reaches the deadline. That time is measured during the fit: the
validation pass every epoch (networks: cost per row), or a probe that predicts a few validation rows
at rounds 8, 16, 32, ... (boosting: cost per row and kept round). ctx.info["deadline_reserve_s"] says
how much was left for it.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from bench.adapters.framework.context import FitContext, TaskInfo
from bench.adapters.framework.contract import objective_defined
from bench.metrics import epoch_scores
from bench.vocabulary import TrialEnd

MIN_ITERATIONS = 20
PROBE_ROWS = 256  # validation rows a boosting probe predicts to time the post-fit prediction
FIRST_PROBE = 8  # probes run at rounds 8, 16, 32, ...: their total cost is about twice the last one's

Lazy = Any  # a value, or a callable returning it (computed only when needed)


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


def end_reason(*, diverged: bool = False, interrupted: bool = False, early_stopped: bool = False,
               at_cap: bool = False, out_of_time: bool = False) -> TrialEnd | None:
    """How a fit ends after an iteration, by the precedence in the module docstring; None: it goes on.
    interrupted: the clock cut the iteration short; out_of_time: the deadline has passed after it."""
    if diverged:
        return TrialEnd.DIVERGED
    if interrupted:
        return TrialEnd.DEADLINE
    if early_stopped:
        return TrialEnd.EARLY_STOPPED
    if at_cap:
        return TrialEnd.MAX_ITERATIONS
    if out_of_time:
        return TrialEnd.DEADLINE
    return None


def _value(lazy: Lazy):
    return lazy() if callable(lazy) else lazy


class StoppingMonitor:
    """Runs the protocol for one fit; the adapter calls it after every iteration (module docstring).

    unit: what an iteration is ("rounds", "epochs", "stages"); max_iterations: the cap (its iteration
    ends `max_iterations`); report_every: iterations between pruning reports; time_limit_s: a per-fit
    wall-clock limit on top of ctx.deadline; probe: for learners whose prediction cost grows with the
    iterations kept (boosting), a callable that predicts a few validation rows with the model as it
    is and returns (seconds, rows), called at rounds 8, 16, 32, ... while a deadline and post-fit rows
    exist."""

    def __init__(self, ctx: FitContext, task: TaskInfo, y_val, patience: int, *, unit: str,
                 max_iterations: int | None = None, report_every: int = 1, time_limit_s: float | None = None,
                 minimum: int = MIN_ITERATIONS, probe: Callable[[], tuple[float, int]] | None = None):
        self.ctx, self.task, self.unit = ctx, task, unit
        self.y_val = np.asarray(y_val)
        self.metric, self.objective = stopping_metric(task.task_type), task.objective.metric
        # A binary validation part with one class has no ROC AUC: nothing is reported then (the tuner's
        # direction is that of ROC AUC); early stopping is on log loss either way.
        self.report = objective_defined(task, self.y_val)
        self.stopper = EarlyStopper(patience, minimum)
        self.max_iterations, self.report_every = max_iterations, max(1, int(report_every))
        self.started = ctx.clock()
        self.limit = None if time_limit_s is None else self.started + float(time_limit_s)
        self.probe = probe
        self.iterations = 0
        self.end: TrialEnd | None = None
        self.kept_predictions: np.ndarray | None = None  # validation predictions of the kept iteration
        # timed predictions: (seconds per predicted row, iterations predicted with or None), the last two
        self._costs: list[tuple[float, int | None]] = []

    @property
    def best_iteration(self) -> int:
        return self.stopper.best_iteration

    @property
    def best_value(self) -> float:
        return self.stopper.best_value

    # --- the clock -------------------------------------------------------------------------------

    def reserve(self) -> float:
        """Seconds the prediction of ctx.predict_rows rows with the kept model will take (0: unknown).
        Boosting: in proportion to the rounds kept up to the last probe; beyond it at the marginal cost per
        round between the last two probes (later trees cost more than the average: LightGBM on letter,
        2.5 us per row and round at 64 rounds, 4.1 us at 256), at least the average."""
        if not self._costs or not self.ctx.predict_rows:
            return 0.0
        per_row, at = self._costs[-1]
        if at is not None:
            kept = max(self.best_iteration, 1)
            if kept <= at or len(self._costs) < 2:
                per_row *= kept / at
            else:
                before, at_before = self._costs[-2]
                slope = (per_row - before) / (at - at_before) if at_before is not None and at > at_before else 0.0
                per_row += max(slope, per_row / at) * (kept - at)
        return self.ctx.predict_rows * per_row

    @property
    def deadline(self) -> float | None:
        """ctx.deadline or the end of time_limit_s, whichever comes first (None: neither)."""
        ends = [t for t in (self.ctx.deadline, self.limit) if t is not None]
        return min(ends) if ends else None

    def time_up(self) -> bool:
        """True once the clock plus the post-fit reserve has reached the deadline (ctx.deadline_passed)
        or the end of time_limit_s; loops that can stop between batches call it before each batch after
        the iteration's first."""
        reserve = self.reserve()
        if self.limit is not None and self.ctx.clock() + reserve >= self.limit:
            return True
        return self.ctx.deadline_passed(reserve)

    def note_prediction_cost(self, seconds: float, rows: int, iterations: int | None = None) -> None:
        """A timed prediction of `rows` rows; `iterations`: the iterations the model predicted with, when
        the cost grows with them (boosting), else None (a network of fixed size)."""
        if rows > 0 and seconds >= 0:
            self._costs = [*self._costs[-1:], (seconds / rows, iterations)]

    def _maybe_probe(self, iteration: int) -> None:
        if (self.probe is None or self.deadline is None or not self.ctx.predict_rows
                or iteration < FIRST_PROBE or iteration & (iteration - 1)):  # powers of two from FIRST_PROBE
            return
        seconds, rows = self.probe()
        self.note_prediction_cost(seconds, rows, iteration)

    # --- one iteration ---------------------------------------------------------------------------

    def after_iteration(self, iteration: int, value: float, objective: Lazy = None, *,
                        keep: Callable[[], None] | None = None, predictions: Lazy = None,
                        interrupted: bool = False) -> bool:
        """The protocol after `iteration` (1-based), whose stopping-metric value is `value`.

        objective: the task's objective for the pruner (or a callable computing it, called only at a
        report); keep: saves the model state when the iteration is the best so far; predictions: its
        validation predictions (or a callable), kept when best; interrupted: the clock cut this
        iteration short. May raise optuna.TrialPruned (through ctx.report). True: training ends now."""
        self.iterations = int(iteration)
        if self.stopper.update(iteration, float(value)):
            if keep is not None:
                keep()
            if predictions is not None:
                self.kept_predictions = _value(predictions)
        if self.report and objective is not None and iteration % self.report_every == 0:
            reported = _value(objective)
            if reported is not None and math.isfinite(reported):
                self.ctx.report_value(iteration, float(reported))
        self._maybe_probe(iteration)
        cap = self.max_iterations is not None and iteration >= self.max_iterations
        self.end = end_reason(interrupted=interrupted, early_stopped=self.stopper.should_stop(iteration),
                              at_cap=cap, out_of_time=self.time_up())
        return self.end is not None

    def after_predictions(self, iteration: int, pred: np.ndarray, *, keep: Callable[[], None] | None = None,
                          interrupted: bool = False) -> bool:
        """after_iteration for adapters that predict the validation part themselves: scores `pred` once
        (bench.metrics.epoch_scores) for both the stopping metric and the objective; non-finite
        predictions end the fit `diverged` (the best iteration so far is kept)."""
        if not np.all(np.isfinite(pred)):
            return self.diverge(iteration)
        names = {self.metric, *([self.objective] if self.report else [])}
        scores = epoch_scores(self.task.task_type, self.y_val, pred, self.task.n_classes, names)
        return self.after_iteration(iteration, scores[self.metric], scores.get(self.objective), keep=keep,
                                    predictions=pred, interrupted=interrupted)

    def stopping_value(self, pred: np.ndarray) -> float:
        """The stopping metric on validation predictions, as bench.metrics defines it."""
        return epoch_scores(self.task.task_type, self.y_val, pred, self.task.n_classes, {self.metric})[self.metric]

    def objective_of(self, pred: np.ndarray) -> float | None:
        """The task's objective on validation predictions (for reports from predictions a library kept)."""
        if not self.report:
            return None
        names = {self.objective}
        return epoch_scores(self.task.task_type, self.y_val, pred, self.task.n_classes, names)[self.objective]

    def diverge(self, iteration: int) -> bool:
        self.iterations, self.end = int(iteration), TrialEnd.DIVERGED
        return True

    def replay(self, curve) -> None:
        """For fits without callbacks (CatBoost on GPU): the stopping metric's curve, after the fact."""
        for iteration, value in enumerate(curve, start=1):
            self.iterations = iteration
            self.stopper.update(iteration, float(value))

    def finish(self, best: int | None = None, **extra: Any) -> None:
        """ctx.record_end with how the fit ended (the cap when the library ran out of iterations on its
        own), the iterations done and kept (`best` where the library decides which), the stopping
        metric and its value at the best iteration (unless `extra` gives best_val_score)."""
        info = dict(early_stopping_metric=self.metric, **extra)
        if math.isfinite(self.best_value):
            info.setdefault("best_val_score", self.best_value)
        reserve = self.reserve()
        if reserve > 0:
            info["deadline_reserve_s"] = round(reserve, 3)
        info.setdefault("fit_seconds", round(self.ctx.clock() - self.started, 3))
        self.ctx.record_end(self.end or TrialEnd.MAX_ITERATIONS, iterations=self.iterations,
                            best=self.best_iteration if best is None else best, unit=self.unit, **info)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(fn(), seconds it took): for note_prediction_cost."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start
