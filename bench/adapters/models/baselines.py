"""Reference points every benchmark needs: a constant predictor, a linear model and a random forest.

All three are scikit-learn estimators on the dense matrix from MatrixPreprocessor; they do not need
the validation part (no early stopping), which the harness still passes for a uniform interface.
scikit-learn estimators are imported inside methods like every other library, so listing models
does not pay for them.

How each fit ends (ctx.record_end), at its natural grain: the dummy model converges at once; the linear
model records whether its solver converged or used max_iter (from n_iter_; lbfgs cannot be stopped
from outside, so it records interruptible=False); the random forest grows its trees in chunks
(warm_start) and stops between chunks once the tuning deadline has passed, keeping the trees grown.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import ClassVar, Generic, Mapping, TypedDict

import numpy as np

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Adapter, ParamsT, estimator_output
from bench.adapters.space import CategoricalParam, FloatParam, IntParam, Param
from bench.preprocessing import MatrixPreprocessor
from bench.vocabulary import TrialEnd


class _SklearnAdapter(Adapter[ParamsT], Generic[ParamsT]):
    """Shared fit/predict for estimators with the scikit-learn API."""

    family = "baseline"
    libraries = ("scikit-learn",)

    @abstractmethod
    def _make_estimator(self):
        """A fresh, unfitted estimator for self.task and self.params."""

    def fit(self, X_train, y_train, X_val=None, y_val=None) -> None:
        self.model = self._make_estimator()
        self.model.fit(X_train, y_train)
        self.ctx.record_end(TrialEnd.CONVERGED)

    def predict_raw(self, X) -> np.ndarray:
        # A class absent from the training part has no column in predict_proba: it gets 0.
        return estimator_output(self.model, X, self.task)


class DummyParams(TypedDict):
    """Nothing to set."""


@register_adapter
class DummyAdapter(_SklearnAdapter[DummyParams]):
    """Class priors / training mean: the score any useful model must beat."""

    name = "dummy"
    defaults: ClassVar[DummyParams] = {}

    def make_preprocessor(self):
        # The estimator ignores the features; the cheapest matrix keeps the harness path uniform.
        return MatrixPreprocessor(numeric="none", categorical="ordinal")

    def _make_estimator(self):
        from sklearn.dummy import DummyClassifier, DummyRegressor

        if self.task.is_classification:
            return DummyClassifier(strategy="prior")
        return DummyRegressor(strategy="mean")


class LinearParams(TypedDict):
    C: float  # inverse L2 strength of the logistic regression (classification)
    alpha: float  # L2 strength of the ridge regression (regression)
    max_iter: int


@register_adapter
class LinearAdapter(_SklearnAdapter[LinearParams]):
    """L2-regularized logistic regression (multinomial for multiclass) / ridge regression."""

    name = "linear"
    defaults: ClassVar[LinearParams] = {"C": 1.0, "alpha": 1.0, "max_iter": 1000}
    # C tunes classification, alpha regression (search_space_for picks the one that applies).
    # Ranges: log-uniform spans of inverse / direct L2 strength. C follows scikit-learn's
    # LogisticRegressionCV default grid (1e-4..1e4) capped at 1e2: on standardized features the
    # penalty is negligible beyond that and lbfgs only converges more slowly.
    search_space = {
        "C": FloatParam(1e-4, 1e2, log=True),
        "alpha": FloatParam(1e-4, 1e3, log=True),
    }

    @classmethod
    def search_space_for(cls, task_type: str) -> Mapping[str, Param]:
        key = "alpha" if task_type == "regression" else "C"
        return {key: cls.search_space[key]}

    def make_preprocessor(self):
        # Linear models need comparable feature scales for the penalty to treat features alike.
        return MatrixPreprocessor(numeric="standard", categorical="onehot")

    def _make_estimator(self):
        from sklearn.linear_model import LogisticRegression, Ridge

        if self.task.is_classification:
            return LogisticRegression(C=float(self.params["C"]), solver="lbfgs",
                                      max_iter=int(self.params["max_iter"]))
        return Ridge(alpha=float(self.params["alpha"]))

    def fit(self, X_train, y_train, X_val=None, y_val=None) -> None:
        from sklearn.exceptions import ConvergenceWarning

        # Weakly regularized fits may stop at max_iter; the model is still usable, so record it
        # instead of flooding the log with one warning per trial.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            super().fit(X_train, y_train)
        n_iter = getattr(self.model, "n_iter_", None)
        if n_iter is None:  # ridge's direct solvers: nothing iterates
            self.ctx.record_end(TrialEnd.CONVERGED, interruptible=False)
            return
        done = int(np.max(n_iter))
        end = TrialEnd.CONVERGED if done < int(self.params["max_iter"]) else TrialEnd.MAX_ITERATIONS
        self.ctx.record_end(end, iterations=done, best=done, unit="solver iterations", interruptible=False)


def trees_per_chunk(total: int, threads: int) -> int:
    """About ten chunks per forest, a multiple of the threads (each chunk keeps every thread busy)."""
    chunk = max(1, -(-total // 10))
    return -(-chunk // max(1, threads)) * max(1, threads)


class ForestAdapter(_SklearnAdapter[ParamsT], Generic[ParamsT]):
    """Forests (random forest, extra trees) on the ordinal matrix, grown in chunks so that a deadline can
    stop them between chunks."""

    def make_preprocessor(self):
        # Trees are invariant to monotone transforms: raw numerics (imputed) and ordinal categoricals
        # avoid the width of a one-hot matrix.
        return MatrixPreprocessor(numeric="none", categorical="ordinal")

    def fit(self, X_train, y_train, X_val=None, y_val=None) -> None:
        """Grow the forest in chunks (warm_start adds trees to the fitted ones, the same forest as one
        fit with the same seed) and stop between chunks once the tuning deadline has passed."""
        self.model = self._make_estimator()
        total = self.model.n_estimators
        grown = 0
        while grown < total:
            grown = min(total, grown + trees_per_chunk(total, self.ctx.threads))
            self.model.set_params(n_estimators=grown, warm_start=True)
            self.model.fit(X_train, y_train)
            if grown < total and self.ctx.deadline_passed():
                break
        end = TrialEnd.CONVERGED if grown == total else TrialEnd.DEADLINE
        self.ctx.record_end(end, iterations=grown, best=grown, unit="trees")


class RandomForestParams(TypedDict):
    n_estimators: int
    max_features: str | float | None
    max_depth: int | None
    min_samples_split: int
    min_samples_leaf: int
    bootstrap: bool


@register_adapter
class RandomForestAdapter(ForestAdapter[RandomForestParams]):
    name = "random_forest"
    defaults: ClassVar[RandomForestParams] = {
        "n_estimators": 300,  # fixed: more trees cost time but hardly ever accuracy (Probst & Boulesteix 2018)
        "max_features": "sqrt",  # sqrt(p) for both task types, as ranger's default mtry
        "max_depth": None,
        "min_samples_split": 2,
        "min_samples_leaf": 1,
        "bootstrap": True,
    }
    smoke_params = {"n_estimators": 10}
    # Search space after Grinsztajn, Oyallon & Varoquaux 2022, "Why do tree-based models still
    # outperform deep learning on tabular data?" (NeurIPS Datasets & Benchmarks), repo
    # LeoGrin/tabular-benchmark src/configs/model_configs/rf_config.py:
    #   max_features {sqrt (x2), log2, None, 0.1..0.9}, max_depth {None: .7, 2, 3, 4: .1 each},
    #   min_samples_split {2: .95, 3: .05}, min_samples_leaf q-log-uniform[1.5, 50.5],
    #   bootstrap {True, False}, min_impurity_decrease {0: .85, .01, .02, .05}, criterion
    #   {gini, entropy} / {squared_error, absolute_error}, n_estimators 250 fixed.
    # Our parameters have no choice weights, so where the paper relies on them we deviate:
    #   max_depth adds 8 and 16 (uniform over {None, 2, 3, 4} would spend 3/4 of random trials on
    #   stumps); min_impurity_decrease is left out (absolute, so its effect depends on the target's
    #   scale in regression, and uniformly drawn it would mostly be non-zero); criterion is left out
    #   (one space serves both task types; absolute_error forests are orders of magnitude slower).
    #   min_samples_leaf starts at 1 so that the scikit-learn default lies inside.
    search_space = {
        "max_features": CategoricalParam(("sqrt", "log2", None, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)),
        "max_depth": CategoricalParam((None, 2, 3, 4, 8, 16)),
        "min_samples_split": CategoricalParam((2, 3)),
        "min_samples_leaf": IntParam(1, 50, log=True),
        "bootstrap": CategoricalParam((True, False)),
    }

    def _make_estimator(self):
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        p = self.params
        cls = RandomForestClassifier if self.task.is_classification else RandomForestRegressor
        return cls(n_estimators=int(p["n_estimators"]), max_features=p["max_features"],
                   max_depth=p["max_depth"], min_samples_split=int(p["min_samples_split"]),
                   min_samples_leaf=int(p["min_samples_leaf"]), bootstrap=bool(p["bootstrap"]),
                   n_jobs=self.ctx.threads, random_state=self.ctx.seed)
