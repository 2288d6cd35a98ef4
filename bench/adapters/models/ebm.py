"""Explainable Boosting Machine (Lou et al. 2013, "Accurate intelligible models with pairwise interactions", KDD;
Nori et al. 2019, "InterpretML") through `interpret-core`: optional extra `ebm`.

A generalized additive model with pairwise interactions, fit by cyclic gradient boosting of shallow trees on
one feature (or pair) at a time and bagged over 14 outer bags. Family "baseline": an interpretable reference
point, not one of the GBDTs the benchmark's question is about (XGBoost, LightGBM, CatBoost).

Defaults: interpret-core's (ExplainableBoostingClassifier / Regressor of the installed 0.7 series), written out
so records show them; the classifier and the regressor differ in learning_rate, smoothing_rounds,
interactions, interaction_smoothing_rounds and min_hessian (defaults_for).
Search space: TabArena's (Erickson et al. 2025; repository autogluon/tabrepo, tabarena/models/ebm/generate.py):
max_leaves Int[2, 3], smoothing_rounds Int[0, 1000], learning_rate LogU[0.0025, 0.2], interactions
{0, 0.5x .. 25x features}, interaction_smoothing_rounds Int[0, 200], min_hessian LogU[1e-10, 1e-2],
min_samples_leaf Int[2, 20], gain_scale LogU[0.5, 5], min_cat_samples Int[5, 20], cat_smooth LogU[5, 100],
missing {separate, low, high, gain}. Departure: regression does not tune min_hessian, whose default there is 0
(outside a log range) and which has no effect for RMSE regression below min_samples_leaf (interpret's
hyperparameter guide, docs/interpret/hyperparameters.md).

How it is driven:
  * Early stopping is EBM's own, unchanged: every outer bag holds out validation_size (15 %) of the training
    part and stops after 100 rounds without improvement of its objective (log loss for classification,
    RMSE for regression: the shared early-stopping metric); with that patience the shared 20-round minimum
    is met by construction. The harness's validation part is not used, as with the random forest.
  * The tuning deadline reaches EBM through its `callback` (called after every boosting step of every bag,
    in its worker processes): once the deadline has passed it returns True, which ends that bag's boosting
    and keeps its best model so far; bags and stages that start later stop at their first step.
    ctx.record_end says "deadline" when the deadline passed during the fit, with the most boosting steps
    any outer bag executed in the main-effects stage (EBM's best_iteration_; one step updates one term).
  * No pruning: the callback sees only EBM's internal validation score per bag, not the task's objective on
    the harness's validation part, so nothing is reported to the tuner while fitting.
  * Input: the tree frame (numerics as floats with NaN, categoricals as pandas categories with the training
    vocabulary); EBM bins numerics and treats categories nominally, with missing values in their own bin.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from typing import Any, ClassVar, Mapping, TypedDict

import numpy as np

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Adapter, TrivialFitFallback, estimator_output, missing_extra
from bench.adapters.framework.early_stopping import end_reason
from bench.adapters.space import CategoricalParam, FloatParam, IntParam, Param
from bench.preprocessing import TreeFramePreprocessor
from bench.vocabulary import TrialEnd

INTERACTIONS = (0, "0.5x", "1x", "1.5x", "2x", "2.5x", "3x", "3.5x", "4x", "4.5x", "5x", "6x", "7x", "8x", "9x",
                "10x", "15x", "20x", "25x")


class DeadlineCallback:
    """EBM's boosting callback: True (stop this bag) once time.monotonic() has reached the deadline.
    A plain picklable object: EBM runs its bags in joblib worker processes, and the monotonic clock is the
    same in all processes of the machine."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def __call__(self, bag_index: int, step_index: int, progress: bool, metric: float) -> bool:
        return time.monotonic() >= self.deadline


@contextmanager
def _may_start_processes(needed: bool):
    """With a callback, EBM shares its stop flag through a SharedMemoryManager, a child process that lives
    for the fit. The harness's workers are daemonic processes, which Python forbids to start children
    ("daemonic processes are not allowed to have children"), so the flag is lifted for the fit. Safe here:
    the harness stops a job's whole process tree (bench.execution.signals.kill_tree), so the child cannot
    outlive its job, and EBM shuts the manager down when the fit returns."""
    import multiprocessing

    process = multiprocessing.current_process()
    daemonic = needed and process.daemon
    if daemonic:
        process.daemon = False
    try:
        yield
    finally:
        if daemonic:
            process.daemon = True


class EBMParams(TypedDict):
    """ExplainableBoostingClassifier / Regressor's parameters, passed to it as they are."""

    max_leaves: int
    smoothing_rounds: int
    learning_rate: float
    interactions: int | str  # a count, or a multiple of the feature count ("3x")
    interaction_smoothing_rounds: int
    min_hessian: float
    min_samples_leaf: int
    gain_scale: float
    min_cat_samples: int
    cat_smooth: float
    missing: str
    outer_bags: int
    inner_bags: int
    max_bins: int
    max_interaction_bins: int
    validation_size: float
    max_rounds: int
    early_stopping_rounds: int
    early_stopping_tolerance: float
    greedy_ratio: float
    cyclic_progress: bool


@register_adapter
class EBMAdapter(TrivialFitFallback, Adapter[EBMParams]):
    name = "ebm"
    family = "baseline"
    libraries = ("interpret-core",)
    extra = "ebm"
    defaults: ClassVar[EBMParams] = {
        "max_leaves": 2, "smoothing_rounds": 75, "learning_rate": 0.015, "interactions": "3x",
        "interaction_smoothing_rounds": 75, "min_hessian": 1e-4, "min_samples_leaf": 4, "gain_scale": 5.0,
        "min_cat_samples": 10, "cat_smooth": 10.0, "missing": "separate",
        "outer_bags": 14, "inner_bags": 0, "max_bins": 1024, "max_interaction_bins": 64,
        "validation_size": 0.15, "max_rounds": 50_000, "early_stopping_rounds": 100,
        "early_stopping_tolerance": 1e-5, "greedy_ratio": 10.0, "cyclic_progress": False,
    }
    _REGRESSION_DEFAULTS = {"learning_rate": 0.04, "smoothing_rounds": 500, "interactions": "5x",
                            "interaction_smoothing_rounds": 100, "min_hessian": 0.0}
    search_space = {
        "max_leaves": IntParam(2, 3),
        "smoothing_rounds": IntParam(0, 1000),
        "learning_rate": FloatParam(0.0025, 0.2, log=True),
        "interactions": CategoricalParam(INTERACTIONS),
        "interaction_smoothing_rounds": IntParam(0, 200),
        "min_hessian": FloatParam(1e-10, 1e-2, log=True),
        "min_samples_leaf": IntParam(2, 20),
        "gain_scale": FloatParam(0.5, 5.0, log=True),
        "min_cat_samples": IntParam(5, 20),
        "cat_smooth": FloatParam(5.0, 100.0, log=True),
        "missing": CategoricalParam(("separate", "low", "high", "gain")),
    }
    smoke_params = {"outer_bags": 2, "max_rounds": 30, "interactions": 0}

    @classmethod
    def unavailable_reason(cls, task_type: str | None = None) -> str | None:
        return missing_extra("interpret", cls.extra)

    @classmethod
    def defaults_for(cls, task_type: str) -> Mapping[str, Any]:
        return {**cls.defaults, **cls._REGRESSION_DEFAULTS} if task_type == "regression" else cls.defaults

    @classmethod
    def search_space_for(cls, task_type: str) -> Mapping[str, Param]:
        if task_type != "regression":
            return cls.search_space
        return {k: v for k, v in cls.search_space.items() if k != "min_hessian"}

    def make_preprocessor(self):
        return TreeFramePreprocessor()

    def fit(self, X_train, y_train, X_val=None, y_val=None) -> None:
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

        cls = ExplainableBoostingClassifier if self.task.is_classification else ExplainableBoostingRegressor
        deadline = self.ctx.deadline
        self.model = cls(**self.params, callback=DeadlineCallback(deadline) if deadline is not None else None,
                         n_jobs=max(1, int(self.ctx.threads)), random_state=int(self.ctx.seed))
        y = np.asarray(y_train, dtype=int if self.task.is_classification else "float64")
        with warnings.catch_warnings(), _may_start_processes(deadline is not None):
            warnings.filterwarnings("ignore", "Missing values detected", UserWarning)  # about EBM's plots
            self.model.fit(X_train, y)
        # best_iteration_ (stage x bag) counts the boosting steps each bag executed (one step updates one
        # term; interpret's own comment in _boost.py); a bag may run max_rounds x terms steps, and keeps its
        # best model on its own validation part (which step that was, interpret does not report).
        steps = np.asarray(getattr(self.model, "best_iteration_", np.zeros((1, 1))))
        done = int(steps[0].max()) if steps.size else 0  # stage 0: main effects
        cap = int(self.params["max_rounds"]) * X_train.shape[1]
        # The shared precedence (bench.adapters.framework.early_stopping.end_reason): once the deadline has passed a
        # bag may have been cut mid-way, which EBM does not report, so the fit counts as interrupted.
        end = end_reason(interrupted=self.ctx.deadline_passed(), early_stopped=done < cap, at_cap=done >= cap)
        self.ctx.record_end(end or TrialEnd.MAX_ITERATIONS, iterations=done, unit="boosting steps",
                            early_stopping_metric="log_loss" if self.task.is_classification else "rmse")

    def predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        return estimator_output(self.model, X, self.task)
