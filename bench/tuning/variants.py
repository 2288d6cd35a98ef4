"""The final evaluation of a chosen configuration (the default or the tuned variant) on the test part.

The configuration is refit once per model seed (`--seeds N`; the first seed's models are the ones
tuning already fitted) without any deadline, and each seed's test predictions are scored. With inner
cross-validation a "model" is the K fold models and its test prediction their mean.
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


Refit = Callable[[dict, int], tuple[FoldModels, float, float]]  # (params, seed) -> (models, value, fit s)


def evaluate_variant(variant: str, task, y_test: np.ndarray, params: dict, trial, kept: dict[int, FoldModels],
                     refit: Refit, seeds: list[int]) -> VariantResult:
    """Test metrics of the chosen configuration for every model seed. Raises when the first (tuning)
    seed fails: the variant then fails; a later seed that fails is recorded in by_seed."""
    by_seed: list[dict[str, Any]] = []
    first: FoldModels | None = None
    cpu_total, wall_total = 0.0, 0.0
    for index, model_seed in enumerate(seeds):
        fitted = kept.get(trial.number) if index == 0 else None
        fit_seconds = trial.user_attrs.get("fit_seconds", float("nan"))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            if fitted is None:  # another seed, or a trial finished in an earlier, interrupted process
                fitted, _, fit_seconds = refit(params, model_seed)
            pred, predict_seconds = fitted.predict_test()
            metrics = score_predictions(task.task_type, y_test, pred, task.n_classes)
        except Exception as exc:
            if index == 0:
                raise  # the tuning seed itself failed: the variant fails (caller records why)
            by_seed.append({"seed": model_seed, "error": error_text(exc)})
            continue
        finally:  # the first seed reuses tuning's models: only its (cached) test prediction is timed
            cpu_total += time.process_time() - cpu0
            wall_total += time.perf_counter() - wall0
        by_seed.append({"seed": model_seed, "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                        **metrics})
        first = first or fitted
    if first is None:  # only without seeds: the first seed either set it or raised
        raise ValueError(f"variant {variant}: no model seed to evaluate")
    finished = [s for s in by_seed if "error" not in s]
    mean_metrics = {k: float(np.mean([s[k] for s in finished])) for k in finished[0]
                    if k not in ("seed", "fit_seconds", "predict_seconds")}
    return VariantResult(variant, params, trial.number, float(trial.value), mean_metrics,
                         by_seed[0]["fit_seconds"], by_seed[0]["predict_seconds"],
                         jsonable(first.info), by_seed, cpu_total, wall_total)
