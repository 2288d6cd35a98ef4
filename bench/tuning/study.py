"""Optuna tuning of one model on one split, producing the "default" and "tuned" variants.

Trial 0 is always the adapter's defaults (enqueued), so the default variant costs nothing extra and
the tuned variant can never be worse on validation than the defaults. TPE is seeded; pruning uses the
intermediate validation values adapters report per boosting-round block or epoch; the study lives in
persistent storage (SQLite by default) so a killed job resumes with the trials it already finished.

Model selection, pruning and early stopping see only the training and validation parts. The test
part is scored (1) for each chosen variant after the study, refit with `seeds` model seeds, and (2)
after every completed trial, purely for reporting tuning curves (best-so-far by validation -> its
test score, bench.analysis.curves). That per-trial test score is stored as a trial attribute and is never
read by the objective, the sampler, the pruner or the selection of variants.
"""

from __future__ import annotations

import math
import time
import traceback
import weakref
from dataclasses import dataclass, field

import numpy as np
import optuna

from bench.adapters.base import Adapter, FitContext, TaskInfo
from bench.adapters.space import suggest_params
from bench.metrics import objective_value, score_predictions
from bench.seeding import refit_seeds

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
    # One entry per model seed: {"seed", "fit_seconds", "predict_seconds", metrics...} or
    # {"seed", "error"}; test_metrics is the per-metric mean over the seeds that finished.
    by_seed: list[dict] = field(default_factory=list)


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
        self._test: dict[tuple, object] = {}
        # weak keys: a model dropped from `kept` frees its predictions, and a new model never
        # inherits an old one's entry
        self._predictions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self, model: Adapter):
        key = model.preprocessing_key()
        if key not in self._cache:
            pre = model.make_preprocessor()
            pre.fit(self.parts.X_train)
            self._cache[key] = (pre, pre.transform(self.parts.X_train), pre.transform(self.parts.X_val))
        return self._cache[key]

    def test(self, model: Adapter):
        """The test part through the preprocessor fit on the training part (transform only)."""
        key = model.preprocessing_key()
        if key not in self._test:
            self._test[key] = self.get(model)[0].transform(self.parts.X_test)
        return self._test[key]

    def predict_test(self, model: Adapter) -> tuple[np.ndarray, float]:
        """A fitted model's test predictions and the seconds they took, computed once per model: the
        per-trial test score (tuning curves) and the final evaluation share them."""
        if model not in self._predictions:
            X_test = self.test(model)
            start = time.perf_counter()
            pred = model.predictions(X_test)
            self._predictions[model] = (pred, time.perf_counter() - start)
        return self._predictions[model]


def tune(adapter_cls: type[Adapter], task: TaskInfo, parts: Parts, budget: Budget, *, seed: int,
         threads: int, device: str, storage: str | None, study_name: str, seeds: int = 1,
         tuner: str = "") -> TuningOutcome:
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
    defaults = adapter_cls.defaults_for(task.task_type)
    # Creating a study is atomic in the storage, so with several tuners exactly one enqueues the
    # defaults. A sole tuner resuming also re-enqueues them when an earlier process died while they
    # were running (that trial stays RUNNING forever).
    live = (optuna.trial.TrialState.WAITING, *FINISHED)
    has_default = any(t.user_attrs.get("is_default") and t.state in live for t in study.trials)
    if created or (not tuner and not has_default):
        study.enqueue_trial({k: defaults[k] for k in tunable if k in defaults},
                            user_attrs={"is_default": True})
    prepared = _Prepared(parts)
    kept: dict[int, Adapter] = {}  # trial number -> fitted model (defaults and best so far)
    default_number = [-1]

    deadline: list[float | None] = [None]  # set when tuning starts; final refits run without it

    def fit_one(params: dict, report, model_seed: int = seed) -> tuple[Adapter, float, float]:
        ctx = FitContext(seed=model_seed, threads=threads, device=device, report=report,
                         deadline=deadline[0] if report is not None else None)
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
        params = {**defaults, **suggest_params(trial, tunable)}

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
        # Reporting only (tuning curves): written after the trial's value is fixed and never read
        # by selection, pruning or early stopping (tests/test_tuning.py permutes the test labels to
        # prove the chosen configurations do not change).
        trial.set_user_attr("test_score", _test_objective(task, parts, prepared, model))
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
    if budget.seconds:
        deadline[0] = time.monotonic() + budget.seconds
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
                                      lambda params, s: fit_one(params, None, s), refit_seeds(seed, seeds)))
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


def _evaluate(adapter_cls, task, parts, prepared, trial, kept, variant, refit, seeds: list[int]):
    """Test metrics of the chosen configuration, refit once per model seed (the first seed's model
    is the one tuning already fitted)."""
    params = {**adapter_cls.defaults_for(task.task_type), **trial.params}
    by_seed, first = [], None
    for index, model_seed in enumerate(seeds):
        model = kept.get(trial.number) if index == 0 else None
        fit_seconds = trial.user_attrs.get("fit_seconds", float("nan"))
        try:
            if model is None:  # another seed, or a trial finished in an earlier, interrupted process
                model, _, fit_seconds = refit(params, model_seed)
            pred, predict_seconds = prepared.predict_test(model)
            metrics = score_predictions(task.task_type, parts.y_test, pred, task.n_classes)
        except Exception as exc:
            if index == 0:
                raise  # the tuning seed itself failed: the variant fails (caller records why)
            by_seed.append({"seed": model_seed, "error": _error_text(exc)})
            continue
        by_seed.append({"seed": model_seed, "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                        **metrics})
        first = first or model
    finished = [s for s in by_seed if "error" not in s]
    mean_metrics = {k: float(np.mean([s[k] for s in finished])) for k in finished[0]
                    if k not in ("seed", "fit_seconds", "predict_seconds")}
    return VariantResult(variant, params, trial.number, float(trial.value), mean_metrics,
                         by_seed[0]["fit_seconds"], by_seed[0]["predict_seconds"],
                         _jsonable(first.ctx.info), by_seed)


def _test_objective(task: TaskInfo, parts: Parts, prepared: _Prepared, model: Adapter) -> float | None:
    try:
        value = objective_value(task.task_type, parts.y_test, prepared.predict_test(model)[0], task.n_classes)
    except Exception:  # a reporting number must never fail the trial
        return None
    return float(value) if math.isfinite(value) else None


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
        "test_score": t.user_attrs.get("test_score"),  # reporting only (tuning curves)
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
