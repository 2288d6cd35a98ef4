"""Optuna tuning of one model on one split, producing the "default", "tuned" and "ensemble" variants.

Trial 0 is always the adapter's defaults (enqueued), so the default variant costs nothing extra and
the tuned variant can never be worse on validation than the defaults. The study lives in persistent
storage (SQLite by default) so a killed job resumes with the trials it already finished, exactly as an
uninterrupted run would go on (bench.tuning.progress: the killed trial is re-run under its number, the
sampler's draws are seeded per trial, the tuning budget spent so far is kept with the study).

Budget: the defaults trial is its own track. It runs first, without a tuning deadline, so "default"
means the same model on every machine and under any load; only the job's time limit (--time-limit,
`limit_deadline`) bounds it. The tuning budget (`Budget.trials` in all, `Budget.seconds` of wall clock)
covers the other trials; its clock starts when the defaults trial ends (and runs only while a process
tunes: a resumed job gets what is left of it), and it is both Optuna's timeout and every such trial's
ctx.deadline (iterative learners stop there and keep their best state). The job's
time limit bounds every trial the same way, the defaults trial included: an iterative learner stops
shortly before it (bench.execution.jobs.JOB_LIMIT_RESERVE) with its best state, the trial ends
`deadline` and the records count it as clock-cut, instead of the runner killing the job with nothing.
Final refits for further model seeds have no deadline (only the hard limit).

Model selection, pruning and early stopping see only the training and validation parts (or the inner
folds, bench.tuning.crossfit). The test part is scored once after every completed trial, with the
trial's own model: its test metrics are stored as the trial attribute `test` (with the objective's
`score` for tuning curves: best-so-far by validation -> its test score, bench.analysis.curves) and are
never read by the objective, the sampler, the pruner or the selection of variants. A chosen
variant's tuning-seed numbers are its trial's (bench.tuning.variants); further `seeds` refit it.

Ensemble (bench.tuning.ensemble, bench.tuning.predictions): every completed trial's validation and
test predictions are kept in the job's predictions file; the `ensemble` variant is a Caruana
selection over them on validation, its test prediction the weighted mean of the members' (no refit).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from bench.adapters.base import Adapter, FitContext, TaskInfo
from bench.adapters.space import suggest_params
from bench.metrics import Direction, score_predictions
from bench.seeding import refit_seeds
from bench.tuning import trials as T
from bench.tuning.budget import Budget
from bench.tuning.crossfit import FoldModels, Parts, Prepared, fit_folds, make_folds
from bench.tuning.ensemble import ensemble_variant
from bench.tuning.predictions import TrialPredictions
from bench.tuning.progress import Clock, Progress, reopen_interrupted
from bench.tuning.samplers import make_pruner, make_sampler
from bench.tuning.variants import VariantResult, evaluate_variant

__all__ = ["Budget", "Parts", "TuningOutcome", "VariantResult", "tune"]


@dataclass
class TuningOutcome:
    variants: list[VariantResult]
    failures: dict[str, str]  # variant -> error text, for variants with no usable trial
    trials: list[dict]
    tuning_seconds: float
    objective: str
    direction: str
    # variant -> {"cpu": process CPU seconds, "wall": seconds} of what it cost: the default variant its
    # defaults trial(s) and refits; the tuned variant every trial and its refits.
    costs: dict[str, dict[str, float]]
    only_defaults: bool  # no trial other than the defaults trial completed
    # What the job's predictions file holds (bench.tuning.predictions: kept, without, cap); None when
    # no predictions were kept (tune() called without a predictions path).
    predictions: dict | None = field(default=None)
    resumes: int = 0  # how many times a later process took the study up again (bench.tuning.progress)


def tune(adapter_cls: type[Adapter], task: TaskInfo, parts: Parts, budget: Budget, *, seed: int,
         threads: int, device: str, storage: str | None, study_name: str, seeds: int = 1,
         tuner: str = "", predictions: str | Path | None = None,
         job_key: str = "", limit_deadline: float | None = None) -> TuningOutcome:
    """Tune into `study_name` until this tuner has `budget.trials` finished trials there (or the
    budget's seconds, counted after the defaults trial, are spent).

    Several processes may tune one study in a shared RDB storage (PostgreSQL) at the same time, each
    with its own `tuner` name and budget: the study then ends with the sum of their trials, and the
    defaults are enqueued once. With the default tuner "" the caller is the study's only tuner.
    `budget`: bench.tuning.budget (its sampler: bench.tuning.samplers; its inner folds: bench.tuning.crossfit).
    `predictions`: the job's predictions file (bench.tuning.predictions, keyed by `job_key`): every
    completed trial's validation and test predictions are kept there, and a tuning job also gets the
    `ensemble` variant (bench.tuning.ensemble). None keeps nothing and makes no ensemble.
    `limit_deadline`: time.monotonic() value at which every fit stops (the job's time limit), or None.
    """
    objective = task.objective
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # per-trial INFO lines would drown the progress bar
    study, created = _open_study(storage, study_name, objective.direction, seed, budget.sampler, tuner)
    # Trials a killed process left RUNNING go back in the queue under their numbers (bench.tuning.progress).
    reported = {} if created else reopen_interrupted(study, tuner)
    progress = Progress(study, tuner, budget.seconds, limit_deadline)
    tunable = adapter_cls.search_space_for(task.task_type)
    budget = budget.for_model(bool(tunable))  # nothing to tune: more trials would repeat the defaults
    defaults = adapter_cls.defaults_for(task.task_type)
    # Creating a study is atomic in the storage, so with several tuners exactly one enqueues the
    # defaults. A sole tuner enqueues them again when its study has none (a process killed between
    # creating the study and enqueueing them).
    live = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING, *T.FINISHED)
    has_default = any(t.user_attrs.get("is_default") and t.state in live for t in study.trials)
    if created or (not tuner and not has_default):
        study.enqueue_trial({k: defaults[k] for k in tunable if k in defaults},
                            user_attrs={"is_default": True})
    folds, y_scored = make_folds(parts, task, budget.inner_folds, seed)
    store = None
    if predictions is not None:
        store = TrialPredictions(Path(predictions), job_key, _study_uid(study), y_scored,
                                 objective.direction == "maximize", task.is_classification)
    prepared = [Prepared(fold, parts.X_test) for fold in folds]
    clock = progress.clock

    def fit_config(params: dict, model_seed: int, deadline: float | None, report=None, on_fold=None):
        def make_ctx(fold: int) -> FitContext:  # only the first fold's values reach the pruner
            return FitContext(seed=model_seed, threads=threads, device=device,
                              report=report if fold == 0 else None, deadline=deadline)

        return fit_folds(adapter_cls, task, folds, prepared, y_scored, params, make_ctx, on_fold)

    def run_trial(trial: optuna.Trial) -> float:
        cpu_start, fits = time.process_time(), [0]
        try:
            return _run_trial(trial, fits)
        finally:  # process CPU time covers every thread of the trial's native libraries
            trial.set_user_attr("cpu_seconds", time.process_time() - cpu_start)
            trial.set_user_attr("fits", fits[0])

    def _run_trial(trial: optuna.Trial, fits: list[int]) -> float:
        if tuner:
            trial.set_user_attr("tuner", tuner)
        params = {**defaults, **suggest_params(trial, tunable)}
        is_default = bool(trial.user_attrs.get("is_default"))
        # The defaults trial is its own budget track: only the job's time limit bounds it.
        deadline = clock.limit if is_default else clock.start()
        already = reported.get(trial.number, set())  # steps a killed run of this trial reported

        def report(step: int, value: float) -> None:
            if step not in already:  # Optuna keeps the first value of a step (a deterministic fit repeats it)
                trial.report(float(value), step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        def on_fold(index: int) -> None:
            fits[0] = index + 1

        try:
            fitted, value, fit_seconds = fit_config(params, seed, deadline, report, on_fold)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", T.error_text(exc))
            raise
        trial.set_user_attr("fit_seconds", fit_seconds)
        trial.set_user_attr("fit_info", T.jsonable(fitted.info))
        # Written after the trial's value is fixed and never read by selection, pruning or early
        # stopping (tests/test_tuning.py permutes the test labels to prove the chosen configurations
        # do not change): the tuning curves' per-trial test score, and the numbers a chosen variant
        # reports for its tuning seed (bench.tuning.variants).
        _score_test(trial, task, parts.y_test, fitted)
        if store is not None:  # before the trial is COMPLETE: a resumed study's trials all have theirs
            _keep_predictions(store, trial, value, fitted, fit_seconds, is_default)
        return value

    _optimize(study, run_trial, budget, tuner, clock, progress)
    progress.save()
    tuning_seconds = progress.tuning_seconds

    all_trials = study.trials  # one storage read for everything below
    trials = T.summarize(all_trials)
    completed = T.completed(all_trials)
    default_trials = [t for t in all_trials if t.user_attrs.get("is_default")]
    default_trial = next((t for t in default_trials if t.state == optuna.trial.TrialState.COMPLETE),
                         default_trials[0] if default_trials else None)
    default_ok = default_trial is not None and default_trial.state == optuna.trial.TrialState.COMPLETE
    chosen = {"default": default_trial if default_ok else None}
    if budget.tunes:
        chosen["tuned"] = all_trials[T.best(completed, objective.direction)] if completed else None
    stored = store.collect({number for _, number in completed}) if store is not None else None
    trial_cost = {"default": T.cost([t for t in trials if t["is_default"]]), "tuned": T.cost(trials)}
    variants, failures, costs = [], {}, {}
    for variant, trial in chosen.items():
        cpu, wall = trial_cost[variant]
        costs[variant] = {"cpu": cpu, "wall": wall}
        if trial is None:
            failures[variant] = T.no_trial_reason(default_trial if variant == "default" else None, all_trials)
            continue
        params = {**defaults, **trial.params}
        try:
            result = evaluate_variant(variant, task, parts.y_test, params, trial, stored,
                                      lambda p, s: fit_config(p, s, None), refit_seeds(seed, seeds))
        except Exception as exc:  # e.g. non-finite test predictions: this variant fails, not the job
            failures[variant] = T.error_text(exc)
            continue
        variants.append(result)
        costs[variant] = {"cpu": cpu + result.refit_cpu_seconds, "wall": wall + result.refit_wall_seconds}
    if budget.tunes and stored is not None:
        cpu, wall = trial_cost["tuned"]
        costs["ensemble"] = {"cpu": cpu, "wall": wall}
        try:
            result = ensemble_variant(task, parts.y_test, stored, seed, seeds)
        except Exception as exc:
            failures["ensemble"] = T.error_text(exc)
        else:
            variants.append(result)
            costs["ensemble"] = {"cpu": cpu + result.refit_cpu_seconds, "wall": wall + result.refit_wall_seconds}
    if store is not None and stored is not None:
        # Last: until here the parts keep every trial's exact predictions for a process resuming the job.
        store.write(stored)
    only_defaults = not any(t.state == optuna.trial.TrialState.COMPLETE and not t.user_attrs.get("is_default")
                            for t in all_trials)
    return TuningOutcome(variants, failures, trials, tuning_seconds, objective.metric, objective.direction,
                         costs, only_defaults, stored.info if stored is not None else None, progress.resumes)


def _study_uid(study: optuna.Study) -> str:
    """An id of this very study (not its name): predictions of an earlier study under the same name
    (--retry-failed deletes and recreates it) have another and are never mixed in."""
    uid = study.user_attrs.get("predictions_uid")
    if uid is None:
        uid = uuid.uuid4().hex[:12]
        study.set_user_attr("predictions_uid", uid)
    return uid


def _keep_predictions(store: TrialPredictions, trial: optuna.Trial, value: float, fitted: FoldModels,
                      fit_seconds: float, is_default: bool) -> None:
    try:
        pred, predict_seconds = fitted.predict_test()  # cached: computed once for the test score above
        store.add(trial.number, value, fitted.val_pred, pred, fit_seconds, predict_seconds, is_default)
    except Exception as exc:  # keeping predictions must never fail the trial; it is then no member
        trial.set_user_attr("predictions_error", T.error_text(exc)[:500])


def _optimize(study: optuna.Study, run_trial, budget: Budget, tuner: str, clock: Clock, progress: Progress) -> None:
    """The defaults trial first, on its own and without a timeout; then the rest of the budget, whose
    clock `progress` saves with the study after every trial."""
    mine = sum(t.state in T.FINISHED and t.user_attrs.get("tuner", "") == tuner for t in study.trials)
    remaining = None if budget.trials is None else budget.trials - mine
    if remaining is not None and remaining <= 0:
        return
    waiting = optuna.trial.TrialState.WAITING
    if any(t.user_attrs.get("is_default") and t.state == waiting for t in study.trials):
        # enqueued trials are asked for first (in trial-number order)
        study.optimize(run_trial, n_trials=1, catch=(Exception,), gc_after_trial=False, callbacks=[progress.save])
        remaining = None if remaining is None else remaining - 1
    if remaining is not None and remaining <= 0:
        return
    clock.start()
    left = clock.left()
    if left is not None and left <= 0:
        return
    study.optimize(run_trial, n_trials=remaining, timeout=left, catch=(Exception,), gc_after_trial=False,
                   callbacks=[progress.save])


def _open_study(storage, study_name: str, direction: Direction, seed: int, sampler: str,
                tuner: str = "") -> tuple[optuna.Study, bool]:
    """The study and whether this call created it, with a sampler whose draw for trial n is seeded from
    (seed, n, tuner) (bench.tuning.samplers), whatever the study already holds."""
    kwargs = {"storage": storage, "study_name": study_name, "pruner": make_pruner(sampler),
              "sampler": make_sampler(sampler, seed, tuner)}
    try:
        return optuna.create_study(direction=direction, **kwargs), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(**kwargs), False


def _score_test(trial: optuna.Trial, task: TaskInfo, y_test, fitted: FoldModels) -> None:
    """The trial's `test` attribute: {"metrics", "score" (the objective, None when not finite),
    "predict_seconds"}, or {"error"} when its test predictions could not be scored. Reporting only, never
    read by tuning (see tune); one storage write."""
    try:
        pred, predict_seconds = fitted.predict_test()  # cached: the stored predictions reuse it
        metrics = score_predictions(task.task_type, y_test, pred, task.n_classes)
    except Exception as exc:  # a reporting number must never fail the trial; the variant fails instead
        trial.set_user_attr("test", {"error": T.error_text(exc)[:1500], "score": None})
        return
    value = metrics[task.objective.metric]
    trial.set_user_attr("test", {"metrics": metrics, "score": float(value) if math.isfinite(value) else None,
                                 "predict_seconds": predict_seconds})
