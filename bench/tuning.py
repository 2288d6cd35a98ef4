"""Optuna tuning of one model on one split, producing the "default" and "tuned" variants.

Trial 0 is always the adapter's defaults (enqueued), so the default variant costs nothing extra and
the tuned variant can never be worse on validation than the defaults. TPE is seeded; pruning uses the
intermediate validation values adapters report per boosting-round block or epoch; the study lives in
persistent storage (SQLite by default) so a killed job resumes with the trials it already finished.

Only the training and validation parts are visible here until the study is over; the test part is
transformed and predicted once per variant, after model selection.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import optuna

from bench.adapters.base import Adapter, FitContext, TaskInfo
from bench.adapters.space import suggest_params
from bench.metrics import objective_value, score_predictions

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


@dataclass
class Budget:
    trials: int = 1  # total trials including the defaults trial; 1 = defaults only
    seconds: float | None = None  # wall-clock tuning budget for this job


@dataclass
class Parts:
    """Raw (untransformed) data of one split."""
    X_train: object
    y_train: np.ndarray
    X_val: object
    y_val: np.ndarray
    X_test: object
    y_test: np.ndarray


@dataclass
class VariantResult:
    variant: str  # "default" | "tuned"
    params: dict
    trial_number: int
    val_score: float
    test_metrics: dict
    fit_seconds: float
    predict_seconds: float
    fit_info: dict = field(default_factory=dict)


@dataclass
class TuningOutcome:
    variants: list[VariantResult]
    failures: dict[str, str]  # variant -> error text, for variants with no usable trial
    trials: list[dict]
    tuning_seconds: float
    objective: str
    direction: str


class _Prepared:
    """Preprocessing fit on the training part, reused by every trial with the same preprocessing key."""

    def __init__(self, parts: Parts):
        self.parts = parts
        self._cache: dict[tuple, tuple] = {}

    def get(self, model: Adapter):
        key = model.preprocessing_key()
        if key not in self._cache:
            pre = model.make_preprocessor()
            pre.fit(self.parts.X_train)
            self._cache[key] = (pre, pre.transform(self.parts.X_train), pre.transform(self.parts.X_val))
        return self._cache[key]


def tune(adapter_cls: type[Adapter], task: TaskInfo, parts: Parts, budget: Budget, *, seed: int,
         threads: int, device: str, storage: str | None, study_name: str, tuner: str = "") -> TuningOutcome:
    """Tune into `study_name` until this tuner has `budget.trials` finished trials there.

    Several processes may tune one study in a shared RDB storage (PostgreSQL) at the same time, each
    with its own `tuner` name and budget: the study then ends with the sum of their trials, and the
    defaults are enqueued once. With the default tuner "" the caller is the study's only tuner.
    """
    objective = task.objective
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # per-trial INFO lines would drown the progress bar
    study, created = _open_study(storage, study_name, objective.direction, seed)
    tunable = adapter_cls.search_space_for(task.task_type)
    if not tunable:  # nothing to tune: more trials would repeat the defaults
        budget = Budget(1, budget.seconds)
    # Creating a study is atomic in the storage, so with several tuners exactly one enqueues the
    # defaults. A sole tuner resuming also re-enqueues them when an earlier process died while they
    # were running (that trial stays RUNNING forever).
    live = (optuna.trial.TrialState.WAITING, *FINISHED)
    has_default = any(t.user_attrs.get("is_default") and t.state in live for t in study.trials)
    if created or (not tuner and not has_default):
        study.enqueue_trial({k: adapter_cls.defaults[k] for k in tunable if k in adapter_cls.defaults},
                            user_attrs={"is_default": True})
    prepared = _Prepared(parts)
    kept: dict[int, Adapter] = {}  # trial number -> fitted model (defaults and best so far)
    default_number = [-1]

    def fit_one(params: dict, report) -> tuple[Adapter, float, float]:
        ctx = FitContext(seed=seed, threads=threads, device=device, report=report)
        model = adapter_cls(task, params, ctx)
        _, Xtr, Xva = prepared.get(model)
        start = time.perf_counter()
        model.fit(Xtr, parts.y_train, Xva, parts.y_val)
        fit_seconds = time.perf_counter() - start
        value = objective_value(task.task_type, parts.y_val, model.predictions(Xva), task.n_classes)
        if not math.isfinite(value):
            raise ValueError(f"validation {objective.metric} is {value}")
        return model, value, fit_seconds

    def run_trial(trial: optuna.Trial) -> float:
        if tuner:
            trial.set_user_attr("tuner", tuner)
        params = {**adapter_cls.defaults, **suggest_params(trial, tunable)}

        def report(step: int, value: float) -> None:
            trial.report(float(value), step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            model, value, fit_seconds = fit_one(params, report)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", _error_text(exc))
            raise
        trial.set_user_attr("fit_seconds", fit_seconds)
        trial.set_user_attr("fit_info", _jsonable(model.ctx.info))
        is_default = bool(trial.user_attrs.get("is_default"))
        if is_default:
            kept[trial.number] = model
            default_number[0] = trial.number
        if _best(_completed(study.trials) + [(value, trial.number)], objective.direction) == trial.number:
            for number in [n for n in kept if n != default_number[0]]:
                del kept[number]
            kept[trial.number] = model
        return value

    remaining = budget.trials - sum(t.state in FINISHED and t.user_attrs.get("tuner", "") == tuner
                                    for t in study.trials)
    start = time.perf_counter()
    if remaining > 0:
        study.optimize(run_trial, n_trials=remaining, timeout=budget.seconds, catch=(Exception,),
                       gc_after_trial=False)
    tuning_seconds = time.perf_counter() - start

    all_trials = study.trials  # one storage read for everything below
    trials = [_trial_summary(t) for t in all_trials if t.state in FINISHED]
    completed = _completed(all_trials)
    defaults = [t for t in all_trials if t.user_attrs.get("is_default")]
    default_trial = next((t for t in defaults if t.state == optuna.trial.TrialState.COMPLETE),
                         defaults[0] if defaults else None)
    default_ok = default_trial is not None and default_trial.state == optuna.trial.TrialState.COMPLETE
    variants, failures = [], {}
    chosen = {"default": default_trial if default_ok else None}
    if budget.trials > 1:
        chosen["tuned"] = all_trials[_best(completed, objective.direction)] if completed else None
    for variant, trial in chosen.items():
        if trial is None:
            failures[variant] = _no_trial_reason(default_trial if variant == "default" else None, all_trials)
            continue
        try:
            variants.append(_evaluate(adapter_cls, task, parts, prepared, trial, kept, variant,
                                      lambda params: fit_one(params, None)))
        except Exception as exc:  # e.g. non-finite test predictions: this variant fails, not the job
            failures[variant] = _error_text(exc)
    return TuningOutcome(variants, failures, trials, tuning_seconds, objective.metric, objective.direction)


def _open_study(storage, study_name: str, direction: str, seed: int) -> tuple[optuna.Study, bool]:
    """The study and whether this call created it."""
    kwargs = dict(storage=storage, study_name=study_name, sampler=optuna.samplers.TPESampler(seed=seed),
                  pruner=optuna.pruners.MedianPruner(n_startup_trials=5))
    try:
        return optuna.create_study(direction=direction, **kwargs), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(**kwargs), False


def _evaluate(adapter_cls, task, parts, prepared, trial, kept, variant, refit):
    params = {**adapter_cls.defaults, **trial.params}
    model = kept.get(trial.number)
    fit_seconds = trial.user_attrs.get("fit_seconds", float("nan"))
    if model is None:  # trial finished in an earlier, interrupted process: refit its configuration
        model, _, fit_seconds = refit(params)
    pre, _, _ = prepared.get(model)
    X_test = pre.transform(parts.X_test)
    start = time.perf_counter()
    pred = model.predictions(X_test)
    predict_seconds = time.perf_counter() - start
    metrics = score_predictions(task.task_type, parts.y_test, pred, task.n_classes)
    return VariantResult(variant, params, trial.number, float(trial.value), metrics, fit_seconds,
                         predict_seconds, _jsonable(model.ctx.info))


def _best(candidates: list[tuple[float, int]], direction: str) -> int:
    """Trial number with the best value; ties go to the earlier trial (defaults win a tie)."""
    sign = -1.0 if direction == "maximize" else 1.0
    return min(candidates, key=lambda c: (sign * c[0], c[1]))[1]


def _completed(trials) -> list[tuple[float, int]]:
    return [(t.value, t.number) for t in trials
            if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]


def _no_trial_reason(default_trial, trials) -> str:
    if default_trial is not None and default_trial.user_attrs.get("error"):
        return default_trial.user_attrs["error"]
    errors = [t.user_attrs["error"] for t in trials if t.user_attrs.get("error")]
    if errors:
        return errors[0]
    return "no trial completed within the budget"


def _trial_summary(t: optuna.trial.FrozenTrial) -> dict:
    return {
        "number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
        "is_default": bool(t.user_attrs.get("is_default")),
        "seconds": t.duration.total_seconds() if t.duration else None,
        "fit_seconds": t.user_attrs.get("fit_seconds"), "error": t.user_attrs.get("error"),
        "last_step": t.last_step,
    }


def _error_text(exc: BaseException) -> str:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return f"{type(exc).__name__}: {exc}\n" + "".join(tb[-3:])[-1500:]


def _jsonable(info: dict) -> dict:
    out = {}
    for k, v in info.items():
        if isinstance(v, (np.integer, np.floating)):
            v = v.item()
        out[k] = v if isinstance(v, (int, float, str, bool, list, dict, type(None))) else str(v)
    return out
