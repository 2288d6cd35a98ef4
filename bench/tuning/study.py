"""Optuna tuning of one model on one split, producing the "default", "tuned" and "ensemble" variants.

Trial 0 is always the adapter's defaults (enqueued), so the default variant costs nothing extra and
the tuned variant can never be worse on validation than the defaults. The study lives in persistent
storage (SQLite by default) so a killed job resumes with the trials it already finished, exactly as an
uninterrupted run would go on (bench.tuning.progress: the killed trial is re-run under its number, the
sampler's draws are seeded per trial, the tuning budget spent so far is kept with the study).

Budget: the defaults trial is its own track. It runs first, without a tuning deadline, so "default"
means the same model on every machine and under any load; only the job's time limit (--time-limit,
`TuningRequest.limit_deadline`) bounds it. The tuning budget (`Budget.trials` in all, `Budget.seconds` of wall clock)
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

import functools
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from bench.adapters import Adapter, FitContext, TaskInfo
from bench.adapters.space import suggest_params
from bench.metrics import Direction, score_predictions
from bench.seeding import refit_seeds
from bench.tuning import trials as T
from bench.tuning.budget import Budget
from bench.tuning.crossfit import FoldModels, Parts, Prepared, fit_folds, make_folds
from bench.tuning.ensemble import ensemble_variant
from bench.tuning.packing import TrialStart, optimize_packed
from bench.tuning.predictions import Stored, TrialPredictions
from bench.tuning.progress import Progress, reopen_interrupted
from bench.tuning.samplers import make_pruner, make_sampler
from bench.tuning.variants import VariantResult, evaluate_variant
from bench.vocabulary import Variant

__all__ = ["Budget", "Parts", "TuningOutcome", "TuningRequest", "TuningSession", "VariantResult", "tune"]


@dataclass(frozen=True)
class TuningRequest:
    """What to tune (a model on one split's parts, with a seed and `seeds` model seeds for the final
    configurations), with what budget (bench.tuning.budget: trials, seconds, sampler, inner folds), on
    what (threads, device, `limit_deadline`: the time.monotonic() value at which every fit stops, the
    job's time limit), and where to keep things: the Optuna study `study_name` in `storage` (None: in
    memory) under this `tuner`'s name, and the predictions file `predictions` keyed by `job_key`.

    Several processes may tune one study in a shared RDB storage (PostgreSQL) at the same time, each
    with its own `tuner` name and budget: the study then ends with the sum of their trials, and the
    defaults are enqueued once. With the default tuner "" the caller is the study's only tuner.
    `predictions`: every completed trial's validation and test predictions are kept there, and a tuning
    job also gets the `ensemble` variant (bench.tuning.ensemble); None keeps nothing and makes no ensemble."""

    adapter_cls: type[Adapter]
    task: TaskInfo
    parts: Parts
    budget: Budget
    seed: int
    seeds: int = 1
    threads: int = 1
    device: str = "cpu"
    limit_deadline: float | None = None
    storage: str | optuna.storages.BaseStorage | None = None  # a URL, or an opened storage
    study_name: str = "study"
    tuner: str = ""
    predictions: str | Path | None = None
    job_key: str = ""
    on_trial: Callable[[dict], None] | None = None  # each finished trial's summary (bench.tuning.trials)


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
    # no predictions were kept (no predictions path in the request).
    predictions: dict | None = field(default=None)
    resumes: int = 0  # how many times a later process took the study up again (bench.tuning.progress)


def tune(adapter_cls: type[Adapter], task: TaskInfo, parts: Parts, budget: Budget, **request) -> TuningOutcome:
    """Tune until this tuner has `budget.trials` finished trials in its study (or the budget's seconds,
    counted after the defaults trial, are spent); `request`: TuningRequest's other fields."""
    return TuningSession(TuningRequest(adapter_cls, task, parts, budget, **request)).run()


class TuningSession:
    """One tuning of a request: the study opened (or resumed) and its defaults trial enqueued, the data
    cut into folds, then run(): the defaults trial, the tuning loop, the variants and the ensemble."""

    def __init__(self, request: TuningRequest):
        self.request = r = request
        self.adapter_cls, self.task, self.parts = r.adapter_cls, r.task, r.parts
        self.space = r.adapter_cls.search_space_for(r.task.task_type)
        self.budget = r.budget.for_model(bool(self.space))  # nothing to tune: more trials would repeat the defaults
        self.defaults = r.adapter_cls.defaults_for(r.task.task_type)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # per-trial INFO lines would drown the progress bar
        self.study, created = _open_study(r.storage, r.study_name, r.task.objective.direction, r.seed,
                                          self.budget.sampler, r.tuner)
        # Trials a killed process left RUNNING go back in the queue under their numbers (bench.tuning.progress).
        self.reported = {} if created else reopen_interrupted(self.study, r.tuner)
        self.progress = Progress(self.study, r.tuner, self.budget.seconds, r.limit_deadline)
        self._enqueue_defaults(created)
        self.folds, self.y_scored = make_folds(r.parts, r.task, self.budget.inner_folds, r.seed)
        self.prepared = [Prepared(fold, r.parts.X_test) for fold in self.folds]
        self.store = None if r.predictions is None else TrialPredictions(
            Path(r.predictions), r.job_key, _study_uid(self.study), self.y_scored,
            r.task.objective.direction == "maximize", r.task.is_classification, persistent=r.storage is not None)
        self._fits = 0  # folds fit by the running trial
        # Trials trained together (--pack K): only by models that can (Capabilities.pack), else one at a time.
        self.pack = self.budget.pack if r.adapter_cls.capabilities.pack else 1

    def run(self) -> TuningOutcome:
        self._optimize()
        self.progress.save()
        return self._outcome()

    # --- trials --------------------------------------------------------------------------------
    def _enqueue_defaults(self, created: bool) -> None:
        """Trial 0 is the adapter's defaults. Creating a study is atomic in the storage, so with several
        tuners exactly one enqueues them. A sole tuner enqueues them again when its study has none (a
        process killed between creating the study and enqueueing them)."""
        live = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING, *T.FINISHED)
        has_default = any(t.user_attrs.get("is_default") and t.state in live for t in self.study.trials)
        if created or (not self.request.tuner and not has_default):
            self.study.enqueue_trial({k: self.defaults[k] for k in self.space if k in self.defaults},
                                     user_attrs={"is_default": True})

    def context(self, model_seed: int, deadline: float | None, report=None) -> FitContext:
        """A fit's context: the request's threads and device, the trial's deadline and pruning report."""
        r = self.request
        return FitContext(seed=model_seed, threads=r.threads, device=r.device, report=report, deadline=deadline)

    def fit(self, params: dict, model_seed: int, deadline: float | None, report=None,
            on_fold=None) -> tuple[FoldModels, float, float]:
        """Fit `params` on every fold: (models, validation value, fit seconds); only the first fold's
        values reach the pruner (`report`)."""
        return fit_folds(self.adapter_cls, self.task, self.folds, self.prepared, self.y_scored, params,
                         lambda fold: self.context(model_seed, deadline, report if fold == 0 else None), on_fold)

    def _count_fold(self, index: int) -> None:
        self._fits = index + 1

    def _run_trial(self, trial: optuna.Trial) -> float:
        """Optuna's objective: the trial's validation value, with its CPU seconds and fits as attributes."""
        cpu_start, self._fits = time.process_time(), 0
        try:
            return self._trial_value(trial)
        finally:  # process CPU time covers every thread of the trial's native libraries
            trial.set_user_attr("cpu_seconds", time.process_time() - cpu_start)
            trial.set_user_attr("fits", self._fits)

    def begin(self, trial: optuna.Trial) -> TrialStart:
        """A trial's configuration and how it may run: the defaults trial is its own budget track (only the
        job's time limit bounds it), every other trial ends with the tuning clock."""
        if self.request.tuner:
            trial.set_user_attr("tuner", self.request.tuner)
        params = {**self.defaults, **suggest_params(trial, self.space)}
        is_default = bool(trial.user_attrs.get("is_default"))
        clock = self.progress.clock
        report = functools.partial(_report, trial, self.reported.get(trial.number, set()))
        return TrialStart(params, is_default, clock.limit if is_default else clock.start(), report)

    def _trial_value(self, trial: optuna.Trial) -> float:
        start = self.begin(trial)
        try:
            fitted, value, fit_seconds = self.fit(start.params, self.request.seed, start.deadline, start.report,
                                                  self._count_fold)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", T.error_text(exc))
            raise
        return self.conclude(trial, fitted, value, fit_seconds, start.is_default)

    def conclude(self, trial: optuna.Trial, fitted: FoldModels, value: float, fit_seconds: float,
                 is_default: bool) -> float:
        """What a fitted trial leaves in the study and the predictions file; its value."""
        trial.set_user_attr("fit_seconds", fit_seconds)
        trial.set_user_attr("fit_info", T.jsonable(fitted.info))
        # Written after the trial's value is fixed and never read by selection, pruning or early
        # stopping (tests/test_tuning.py permutes the test labels to prove the chosen configurations
        # do not change): the tuning curves' per-trial test score, and the numbers a chosen variant
        # reports for its tuning seed (bench.tuning.variants).
        _score_test(trial, self.task, self.parts.y_test, fitted)
        if self.store is not None:  # before the trial is COMPLETE: a resumed study's trials all have theirs
            _keep_predictions(self.store, trial, value, fitted, fit_seconds, is_default)
        return value

    # --- the tuning loop -----------------------------------------------------------------------
    def _optimize(self) -> None:
        """The defaults trial first, on its own and without a timeout; then the rest of the budget, whose
        clock `progress` saves with the study after every trial (every pack, with --pack K)."""
        study, tuner, progress = self.study, self.request.tuner, self.progress
        mine = sum(t.state in T.FINISHED and t.user_attrs.get("tuner", "") == tuner for t in study.trials)
        remaining = None if self.budget.trials is None else self.budget.trials - mine
        if remaining is not None and remaining <= 0:
            return
        on_trial = self.request.on_trial
        heartbeat = [] if on_trial is None else [lambda _study, trial: on_trial(T.summarize([trial])[0])]
        optimize = functools.partial(study.optimize, self._run_trial, catch=(Exception,), gc_after_trial=False,
                                     callbacks=[progress.save, *heartbeat])
        waiting = optuna.trial.TrialState.WAITING
        if any(t.user_attrs.get("is_default") and t.state == waiting for t in study.trials):
            optimize(n_trials=1)  # enqueued trials are asked for first (in trial-number order)
            remaining = None if remaining is None else remaining - 1
        if remaining is not None and remaining <= 0:
            return
        progress.clock.start()
        left = progress.clock.left()
        if left is not None and left <= 0:
            return
        if self.pack > 1:
            optimize_packed(self, remaining, left)
        else:
            optimize(n_trials=remaining, timeout=left)

    # --- variants and ensemble ------------------------------------------------------------------
    def _outcome(self) -> TuningOutcome:
        all_trials = self.study.trials  # one storage read for everything below
        trials = T.summarize(all_trials)
        completed = T.completed(all_trials)
        stored = self.store.collect({number for _, number in completed}) if self.store is not None else None
        every = T.cost(trials)
        cost = {Variant.DEFAULT.value: T.cost([t for t in trials if t["is_default"]]), Variant.TUNED.value: every,
                Variant.ENSEMBLE.value: every}
        variants, failures, costs = [], {}, {}
        for variant in self.budget.variants:
            if variant == Variant.ENSEMBLE and stored is None:
                continue  # no predictions kept: nothing to ensemble
            cpu, wall = cost[variant]
            costs[variant] = {"cpu": cpu, "wall": wall}
            try:
                result = self._ensemble(stored) if variant == Variant.ENSEMBLE else \
                    self._evaluate(variant, all_trials, completed, stored)
            except _NoTrial as exc:
                failures[variant] = str(exc)
                continue
            except Exception as exc:  # e.g. non-finite test predictions: this variant fails, not the job
                failures[variant] = T.error_text(exc)
                continue
            variants.append(result)
            costs[variant] = {"cpu": cpu + result.refit_cpu_seconds, "wall": wall + result.refit_wall_seconds}
        if self.store is not None and stored is not None:
            # Last: until here the parts keep every trial's exact predictions for a process resuming the job.
            self.store.write(stored)
        only_defaults = not any(t.state == optuna.trial.TrialState.COMPLETE and not t.user_attrs.get("is_default")
                                for t in all_trials)
        objective = self.task.objective
        return TuningOutcome(variants, failures, trials, self.progress.tuning_seconds, objective.metric,
                             objective.direction, costs, only_defaults, stored.info if stored is not None else None,
                             self.progress.resumes)

    def _evaluate(self, variant: str, all_trials, completed, stored: Stored | None) -> VariantResult:
        """The default variant (the defaults trial) or the tuned one (the best trial on validation)."""
        defaults = [t for t in all_trials if t.user_attrs.get("is_default")]
        default_trial = next((t for t in defaults if t.state == optuna.trial.TrialState.COMPLETE),
                             defaults[0] if defaults else None)
        if variant == Variant.DEFAULT:
            ok = default_trial is not None and default_trial.state == optuna.trial.TrialState.COMPLETE
            trial = default_trial if ok else None
        else:
            trial = all_trials[T.best(completed, self.task.objective.direction)] if completed else None
        if trial is None:
            raise _NoTrial(T.no_trial_reason(default_trial if variant == Variant.DEFAULT else None, all_trials))
        r = self.request
        return evaluate_variant(variant, self.task, self.parts.y_test, {**self.defaults, **trial.params}, trial,
                                stored, functools.partial(self.fit, deadline=None), refit_seeds(r.seed, r.seeds))

    def _ensemble(self, stored: Stored | None) -> VariantResult:
        return ensemble_variant(self.task, self.parts.y_test, stored, self.request.seed, self.request.seeds)


class _NoTrial(Exception):
    """No usable trial for a variant; its message is the record's (the reason, not a traceback)."""


def _report(trial: optuna.Trial, already: set[int], step: int, value: float) -> None:
    """A fit's intermediate validation value, to the pruner (ctx.report). `already`: steps a killed run
    of this trial reported; Optuna keeps the first value of a step (a deterministic fit repeats it)."""
    if step not in already:
        trial.report(float(value), step)
    if trial.should_prune():
        raise optuna.TrialPruned()


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
