"""Tuning one model on one split: Optuna study, the defaults trial, the default and tuned variants.

Modules: study (the loop and budgets), samplers (TPE / random and their pruning), crossfit (holdout
or inner K-fold fitting), trials (what records say about trials), variants (final test evaluation),
predictions (every trial's stored predictions), ensemble (Caruana selection: the ensemble variant)
and progress (what a resumed job continues: killed trials, the budget spent, resumes).

`from bench.tuning import tune, Parts` loads the study module on first use, so that light modules (the
sweep config, job records) can import the budget and the samplers without Optuna and sklearn.
"""

from bench.tuning.budget import Budget

_STUDY_NAMES = ("Parts", "TuningOutcome", "VariantResult", "tune")
__all__ = ["Budget", *_STUDY_NAMES]


def __getattr__(name: str):
    if name in _STUDY_NAMES:
        from bench.tuning import study

        return getattr(study, name)
    raise AttributeError(f"module 'bench.tuning' has no attribute {name!r}")
