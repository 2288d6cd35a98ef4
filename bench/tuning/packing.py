"""Tuning K trials at a time (--pack K, issue 23): Optuna is asked for K trials, they train together as one
packed model (Adapter.fit_pack; for networks bench.adapters.framework.packed), and each is told its own
result.

What stays as with one trial at a time (bench.tuning.study):
  * the defaults trial runs first, alone, on its own budget track; packs start after it;
  * the budget: at most `trials` in all (the last pack is smaller when fewer are left), and no new pack
    starts once the tuning clock has run out; every member's fit stops at the clock's end (ctx.deadline)
    with its best state and ends `deadline`, as a trial alone would;
  * each trial's record: its own configuration, value, fit info (how it ended, epochs done and kept, by its
    own stopping protocol), test score, stored predictions (ensembles, curves), pruning (its own reports to
    the pruner; a pruned member leaves the pack, the others go on), and failure (its own error);
  * its cost: `cpu_seconds` and `wall_seconds` (the record's `seconds`) are its share of the pack's (each
    epoch's time split among the members still training, bench.adapters.framework.packed.training) plus
    its own scoring, so that the trials' seconds add up to what the job spent; `pack` is its pack's size.

What differs: the sampler proposes the K trials of a pack without the results of each other (as in any
parallel tuning), and a pack shares one batch order (every trial of a job uses the job's seed, so a
member sees the batches it would see alone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import optuna

from bench.tuning import trials as T
from bench.tuning.crossfit import TrialFit, fit_folds_packed

if TYPE_CHECKING:
    from bench.tuning.study import TuningSession

State = optuna.trial.TrialState


@dataclass(frozen=True)
class TrialStart:
    """A trial about to fit: its configuration, whether it is the defaults trial, the time.monotonic()
    at which its fits stop (None: no limit) and its pruning report (FitContext.report)."""

    params: dict
    is_default: bool
    deadline: float | None
    report: Callable[[int, float], None]


def optimize_packed(session: TuningSession, n_trials: int | None, timeout: float | None) -> None:
    """study.optimize(n_trials, timeout) with session.pack trials at a time (module docstring)."""
    started, done = time.monotonic(), 0
    while n_trials is None or done < n_trials:
        if timeout is not None and time.monotonic() - started >= timeout:
            break
        size = session.pack if n_trials is None else min(session.pack, n_trials - done)
        run_pack(session, [session.study.ask() for _ in range(size)])
        done += size
        session.progress.save()


def run_pack(session: TuningSession, trials: list[optuna.Trial]) -> None:
    """Fit the trials together, then conclude and tell each one."""
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    starts = [session.begin(t) for t in trials]

    def make_ctx(member: int, fold: int):
        start = starts[member]
        return session.context(session.request.seed, start.deadline, start.report if fold == 0 else None)

    fits = fit_folds_packed(session.adapter_cls, session.task, session.folds, session.prepared, session.y_scored,
                            [s.params for s in starts], make_ctx)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    total = sum(f.seconds for f in fits)
    for trial, start, fit in zip(trials, starts, fits):
        own_cpu, own_wall = time.process_time(), time.perf_counter()
        state, value = _conclude(session, trial, start, fit)
        share = fit.seconds / total if total > 0 else 1.0 / len(trials)
        trial.set_user_attr("cpu_seconds", cpu * share + time.process_time() - own_cpu)
        trial.set_user_attr("wall_seconds", wall * share + time.perf_counter() - own_wall)
        trial.set_user_attr("fits", fit.fits)
        trial.set_user_attr("pack", len(trials))
        session.study.tell(trial, value, state=state)


def _conclude(session: TuningSession, trial: optuna.Trial, start: TrialStart,
              fit: TrialFit) -> tuple[State, float | None]:
    """(state, value) to tell for a fitted trial, its attributes written as TuningSession._trial_value
    writes a trial's alone."""
    error = fit.error
    if error is None and fit.fitted is not None and fit.value is not None:
        try:
            return State.COMPLETE, session.conclude(trial, fit.fitted, fit.value, fit.seconds, start.is_default)
        except Exception as exc:  # noqa: BLE001 - this trial fails, as Optuna's catch fails it alone
            error = exc
    if isinstance(error, optuna.TrialPruned):
        return State.PRUNED, None
    trial.set_user_attr("error", T.error_text(error or RuntimeError("the pack returned no result for it")))
    return State.FAIL, None
