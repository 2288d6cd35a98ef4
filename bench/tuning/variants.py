"""The final evaluation of a chosen configuration (the default or the tuned variant) on the test part.

The tuning seed's numbers are the chosen trial's own model's: its validation value and the test metrics
scored from its test predictions when the trial completed (float64, stored with the trial; reporting
only, never read by tuning). So a record's validation and test numbers always come from one model, also
when that model is not in memory (a job resumed after a kill, the best trial from another tuner of a
shared study) and also when the clock cut the trial short (a refit without the deadline would be
another model). The record's `test_source` says where they came from: "trial" (always, for trials run
by this version), else, for a trial of a study begun by an older version, "stored_predictions" (the
trial's stored float32 predictions, bench.tuning.predictions) or "refit" (refit without deadline; the
validation score is then the refit's too).

Further model seeds (`--seeds N`) refit the configuration without any deadline and score each seed's
test predictions. With inner cross-validation a "model" is the K fold models and its test prediction
their mean.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.metrics import score_predictions
from bench.tuning.crossfit import FoldModels
from bench.tuning.trials import error_text, jsonable


@dataclass
class VariantResult:
    variant: str  # bench.records.schema.Variant
    params: dict
    trial_number: int | None  # None for the ensemble (its members are in `ensemble`)
    val_score: float
    test_metrics: dict
    fit_seconds: float
    predict_seconds: float
    fit_info: dict = field(default_factory=dict)
    # One entry per model seed: {"seed", "fit_seconds", "predict_seconds", metrics...}
    # or {"seed", "error"}; test_metrics is the per-metric mean over the seeds that finished.
    by_seed: list[dict] = field(default_factory=list)
    # What the evaluation itself cost beyond the trials (refits for other seeds, test predictions).
    refit_cpu_seconds: float = 0.0
    refit_wall_seconds: float = 0.0
    ensemble: dict | None = None  # the ensemble variant: members, weights, selection (bench.tuning.ensemble)
    test_source: str | None = None  # the tuning seed's: one of SOURCES (None for the ensemble)


Refit = Callable[[dict, int], tuple[FoldModels, float, float]]  # (params, seed) -> (models, value, fit s)
# Where the tuning seed's test metrics come from (the record's `test_source`; module docstring).
SOURCES = ("trial", "stored_predictions", "refit")


def evaluate_variant(variant: str, task, y_test: np.ndarray, params: dict, trial, stored, refit: Refit,
                     seeds: list[int]) -> VariantResult:
    """Test metrics of the chosen configuration for every model seed. Raises when the first (tuning)
    seed fails: the variant then fails; a later seed that fails is recorded in by_seed. `stored`: the
    job's kept predictions (bench.tuning.predictions.Stored) or None."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    first, val_score, fit_info, source = _tuning_seed(task, y_test, params, trial, stored, refit, seeds[0])
    by_seed: list[dict[str, Any]] = [first]
    for model_seed in seeds[1:]:
        try:
            fitted, _, fit_seconds = refit(params, model_seed)
            pred, predict_seconds = fitted.predict_test()
            metrics = score_predictions(task.task_type, y_test, pred, task.n_classes)
        except Exception as exc:
            by_seed.append({"seed": model_seed, "error": error_text(exc)})
            continue
        by_seed.append({"seed": model_seed, "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                        **metrics})
    finished = [s for s in by_seed if "error" not in s]
    mean_metrics = {k: float(np.mean([s[k] for s in finished])) for k in finished[0]
                    if k not in ("seed", "fit_seconds", "predict_seconds")}
    return VariantResult(variant, params, trial.number, val_score, mean_metrics, first["fit_seconds"],
                         first["predict_seconds"], fit_info, by_seed, time.process_time() - cpu0,
                         time.perf_counter() - wall0, test_source=source)


def _tuning_seed(task, y_test, params: dict, trial, stored, refit: Refit, seed: int) -> tuple[dict, float, dict, str]:
    """(by_seed entry, validation score, fit info, source) of the chosen trial's own model."""
    attrs = trial.user_attrs
    test = attrs.get("test") if isinstance(attrs.get("test"), dict) else {}  # bench.tuning.study._score_test
    if test.get("error"):
        raise RuntimeError(f"the test predictions of trial {trial.number} could not be scored: {test['error']}")
    if isinstance(test.get("metrics"), dict):
        entry = {"seed": seed, "fit_seconds": attrs.get("fit_seconds"), "predict_seconds": test.get("predict_seconds"),
                 **test["metrics"]}
        return entry, float(trial.value), dict(attrs.get("fit_info") or {}), "trial"
    if stored is not None and trial.number in stored.test:
        metrics = score_predictions(task.task_type, y_test, stored.test[trial.number], task.n_classes)
        entry = {"seed": seed, "fit_seconds": attrs.get("fit_seconds"),
                 "predict_seconds": stored.trials[trial.number].get("predict_seconds"), **metrics}
        return entry, float(trial.value), dict(attrs.get("fit_info") or {}), "stored_predictions"
    fitted, value, fit_seconds = refit(params, seed)
    pred, predict_seconds = fitted.predict_test()
    metrics = score_predictions(task.task_type, y_test, pred, task.n_classes)
    return ({"seed": seed, "fit_seconds": fit_seconds, "predict_seconds": predict_seconds, **metrics}, float(value),
            jsonable(fitted.info), "refit")
