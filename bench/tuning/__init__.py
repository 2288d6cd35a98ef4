"""Tuning one model on one split: Optuna study, the defaults trial, the default and tuned variants."""

from bench.tuning.study import Budget, Parts, TuningOutcome, VariantResult, tune  # noqa: F401
