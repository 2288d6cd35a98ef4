"""What an adapter is told about its task and its fit: TaskInfo (task type, classes) and FitContext (seed,
threads, device, the pruning report, the deadline, and where fit records how it ended)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from bench.metrics import Objective, objective_for
from bench.vocabulary import TrialEnd


@dataclass(frozen=True)
class TaskInfo:
    task_type: str
    n_classes: int = 0  # 0 for regression

    @property
    def objective(self) -> Objective:
        return objective_for(self.task_type)

    @property
    def is_classification(self) -> bool:
        return self.task_type != "regression"


@dataclass
class FitContext:
    seed: int = 0
    threads: int = 1
    device: str = "cpu"  # "cpu" or "cuda" (already pinned by CUDA_VISIBLE_DEVICES)
    # report(step, validation_value): called with the objective metric on the validation part;
    # may raise optuna.TrialPruned. None outside tuning.
    report: Callable[[int, float], None] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # what fit learned: best iteration, epochs...
    # time.monotonic() by which fit should return (the tuning budget's end or the job's time limit,
    # whichever comes first; bench.tuning.study); iterative learners stop early and keep their best
    # state instead of overrunning the budget inside one trial.
    deadline: float | None = None
    # Rows the caller predicts with the fitted model once fit returns (the test part, bench.tuning.crossfit):
    # a deadline leaves room for that prediction (bench.adapters.framework.early_stopping.StoppingMonitor).
    predict_rows: int = 0
    # The clock the deadline is read on (time.monotonic); tests script it to replay a fit's timing.
    clock: Callable[[], float] = time.monotonic

    def report_value(self, step: int, value: float) -> None:
        if self.report is not None:
            self.report(step, value)

    def deadline_passed(self, reserve: float = 0.0) -> bool:
        """True once the deadline has passed (the tuning clock or the job's time limit; refits have none),
        or is less than `reserve` seconds away."""
        return self.deadline is not None and self.clock() + reserve >= self.deadline

    def seconds_left(self) -> float | None:
        """Seconds until the deadline (None: no deadline); may be negative."""
        return None if self.deadline is None else self.deadline - self.clock()

    def record_end(self, stopped_by: TrialEnd | str, iterations: int | None = None, best: int | None = None,
                   unit: str | None = None, **extra: Any) -> None:
        """How fit ended, for the trial's record: `stopped_by` is a bench.records.schema.TrialEnd
        (early_stopped, converged, max_iterations, deadline, diverged), `iterations` the rounds /
        epochs / trees done, `best` the 1-based iteration kept, `unit` what an iteration is."""
        self.info.update(stopped_by=str(TrialEnd(stopped_by)), **extra)
        if iterations is not None:
            self.info["iterations"] = int(iterations)
        if best is not None:
            self.info["best_iteration"] = int(best)
        if unit is not None:
            self.info["iteration_unit"] = unit
