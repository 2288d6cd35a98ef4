"""The one interface every model family is wrapped in.

The harness drives an adapter like this (see bench.tuning):
    pre = adapter.make_preprocessor(); pre.fit(X_train)          # training part only
    adapter.fit(pre.transform(X_train), y_train, pre.transform(X_val), y_val)
    adapter.predict_proba(pre.transform(X_test)) / adapter.predict(...)
`fit` uses the validation part for early stopping only and reports intermediate validation values
(per boosting round block / epoch) through `ctx.report`, which raises optuna.TrialPruned to stop.

The one method a model implements to predict is `predict_raw`; predict, predict_proba and predictions derive
from it. Heavy libraries (xgboost, torch, ...) are imported inside methods, or at the top of a model's
network.py that only a fit imports, so that listing models stays fast.
"""

from __future__ import annotations

import importlib.util
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Mapping, Sequence, TypeVar, cast

import numpy as np

from bench.adapters.framework.context import FitContext, TaskInfo
from bench.adapters.space import Param
from bench.datasets import TASK_TYPES
from bench.vocabulary import TrialEnd

FAMILIES = ("gbdt", "neural", "baseline")  # leaderboards group and compare models by family


@dataclass(frozen=True)
class Capabilities:
    task_types: tuple[str, ...] = TASK_TYPES
    gpu: str = "no"  # "no": CPU only; "optional": uses a GPU when given one; "required"
    max_rows: int | None = None
    max_features: int | None = None
    max_classes: int | None = None
    # Trains several configurations together as one model (Adapter.fit_pack): the tuner then fits
    # --pack K trials at a time (bench.tuning.packing).
    pack: bool = False

    def describe(self) -> str:
        """In words, for `bench models show`: task types, GPU use and size limits."""
        gpu = {"no": "CPU only", "optional": "uses a GPU when given one", "required": "needs a GPU"}.get(self.gpu,
                                                                                                       self.gpu)
        limits = [f"{limit:,} {what}" for limit, what in ((self.max_rows, "training rows"),
                                                          (self.max_features, "features"),
                                                          (self.max_classes, "classes")) if limit is not None]
        return (f"task types {', '.join(self.task_types)}; {gpu}; "
                + (f"at most {', '.join(limits)}" if limits else "no size limits"))

    def refusal(self, task_type: str, n_rows: int, n_features: int, n_classes: int,
                device: str = "cpu") -> str | None:
        """Why this model cannot take a dataset, or None when it can."""
        if task_type not in self.task_types:
            return f"task type '{task_type}' not supported (supports {', '.join(self.task_types)})"
        if self.max_rows is not None and n_rows > self.max_rows:
            return f"{n_rows} training rows exceed the limit of {self.max_rows}"
        if self.max_features is not None and n_features > self.max_features:
            return f"{n_features} features exceed the limit of {self.max_features}"
        if self.max_classes is not None and n_classes > self.max_classes:
            return f"{n_classes} classes exceed the limit of {self.max_classes}"
        if self.gpu == "required" and device != "cuda":
            return "needs a GPU and none was assigned"
        return None


# An adapter's parameters: a TypedDict per model (XGBoostParams, MLPParams, ...), so that type checking covers
# every self.params[...] access; a plain `Adapter` subclass (a quick plug-in) has untyped params.
ParamsT = TypeVar("ParamsT", bound=Mapping[str, Any])


class Adapter(ABC, Generic[ParamsT]):
    """One model family behind the harness's interface. Subclass as `Adapter[MyParams]` (MyParams a
    TypedDict of every key in `defaults`) to have self.params type-checked, or plainly as `Adapter`."""

    name: ClassVar[str]
    family: ClassVar[str]  # one of FAMILIES
    libraries: ClassVar[tuple[str, ...]] = ()  # distributions whose versions every record carries
    # The optional-dependency group that installs them (pip install 'tabular-bench[EXTRA]'); None when the
    # core install has them. `bench models list` shows it.
    extra: ClassVar[str | None] = None
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Full default configuration: the values the model runs with untuned (declare it as the model's params
    # TypedDict, so that a missing or misspelt key is a type error). Keys that are also in search_space
    # are tuned; the others stay fixed in every trial.
    defaults: ClassVar[Mapping[str, Any]] = {}
    search_space: ClassVar[Mapping[str, Param]] = {}
    # Overrides that make a fit tiny (few rounds/epochs, small network): check_adapter, smoke sweeps.
    smoke_params: ClassVar[Mapping[str, Any]] = {}
    # Validation predictions of the kept iteration, set by fit where it scored them (validation_predictions).
    kept_val_predictions: np.ndarray | None = None

    params: ParamsT  # defaults_for(task type) updated with the trial's values

    def __init__(self, task: TaskInfo, params: Mapping[str, Any] | None = None, ctx: FitContext | None = None):
        self.task = task
        self.params = cast(ParamsT, {**self.defaults_for(task.task_type), **(params or {})})
        self.ctx = ctx or FitContext()

    @classmethod
    def unavailable_reason(cls, task_type: str | None = None) -> str | None:
        """Why the model cannot run at all in this environment (an optional library is not installed,
        its weights are absent), or None when it can. With a task type: for that task type only.
        Must be cheap and must not import heavy libraries: `bench models list` calls it for every model."""
        return None

    @classmethod
    def defaults_for(cls, task_type: str) -> Mapping[str, Any]:
        """The default configuration for a task type; override when it differs (e.g. RealMLP's
        learning rate and activation for classification vs regression)."""
        return cls.defaults

    @abstractmethod
    def make_preprocessor(self):
        """An unfitted transformer with fit(X) / transform(X) (see bench.preprocessing)."""

    def preprocessing_key(self) -> tuple:
        """Identifies the preprocessor config, so tuning can reuse transformed data across trials."""
        return (type(self).__name__,)

    @abstractmethod
    def fit(self, X_train, y_train: np.ndarray, X_val, y_val: np.ndarray) -> None:
        ...

    @classmethod
    def fit_pack(cls, models: Sequence[Adapter], X_train, y_train: np.ndarray, X_val,
                 y_val: np.ndarray, *, exact: bool = False) -> list[BaseException | None]:
        """Fit `models` (instances of this class, each with its own params and ctx) on the same data
        together, for adapters whose capabilities say `pack`. Afterwards each model is as its own `fit`
        would leave it, or its entry in the returned list (one per model, in order) is what ended it
        instead (optuna.TrialPruned from its ctx.report, or its failure); one model's end never stops the
        others. exact=False (tuning) may draw a member's random numbers (dropout masks) otherwise than its
        own fit would, from the same distribution; exact=True (on CPU) makes each model compute what its
        own fit computes, so that the two can be compared (bench.testing.check_adapter does)."""
        raise NotImplementedError(f"{cls.__name__} does not train configurations together (capabilities.pack)")

    @abstractmethod
    def predict_raw(self, X) -> np.ndarray:
        """The model's output on preprocessed rows X: class probabilities (n, n_classes) with one column per
        task class, also for classes absent from the training part (expand_proba), or regression values (n,).
        The one prediction method a model implements: predict, predict_proba and predictions derive from it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Until the next release: adapters written for the old name `_predict_raw` keep working.
        super().__init_subclass__(**kwargs)
        legacy = cls.__dict__.get("_predict_raw")
        if legacy is not None and "predict_raw" not in cls.__dict__:
            warnings.warn(f"{cls.__module__}.{cls.__qualname__} defines _predict_raw, which is now called "
                          "predict_raw; rename it (the old name stops working in the next release)",
                          DeprecationWarning, stacklevel=3)
            setattr(cls, "predict_raw", legacy)

    def predict(self, X) -> np.ndarray:
        """Regression values, or class codes for classification."""
        out = self.predict_raw(X)
        return out.argmax(axis=1) if self.task.is_classification else np.asarray(out, dtype="float64").ravel()

    def predict_proba(self, X) -> np.ndarray:
        if not self.task.is_classification:
            raise TypeError(f"{self.name}: predict_proba is for classification tasks")
        return np.asarray(self.predict_raw(X), dtype="float64")

    def predictions(self, X) -> np.ndarray:
        """What metrics consume: probabilities for classification, values for regression."""
        return self.predict_proba(X) if self.task.is_classification else self.predict(X)

    def validation_predictions(self, X_val) -> np.ndarray:
        """predictions(X_val) for the validation part the last fit was given: what the trial is scored on.
        Iterative adapters keep the predictions they scored the kept iteration with during fit
        (`kept_val_predictions`), so the harness does not predict the validation part a second time
        (bench.testing checks that they equal predictions(X_val))."""
        kept = self.kept_val_predictions
        return kept if kept is not None else self.predictions(X_val)

    @classmethod
    def search_space_for(cls, task_type: str) -> Mapping[str, Param]:
        """The tuned parameters for a task type; override when they differ (e.g. C vs alpha)."""
        return cls.search_space


def missing_extra(module: str, extra: str) -> str | None:
    """For `unavailable_reason`: why an optional library is missing, or None when it is installed.
    Looks the module up without importing it (find_spec on a top-level name imports nothing)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module entry of None in sys.modules (import blocked)
        found = False
    if found:
        return None
    return f"the optional library {module} is not installed; install the extra: pip install 'tabular-bench[{extra}]'"


def expand_proba(proba: np.ndarray, model_classes, n_classes: int) -> np.ndarray:
    """Place a model's probability columns (for the classes it saw) into all n_classes columns.

    A class can be absent from a training fold (rare classes); the model then assigns it 0.
    """
    proba = np.asarray(proba, dtype="float64")
    if proba.ndim == 1:  # some libraries return P(class 1) only for binary problems
        proba = np.column_stack([1.0 - proba, proba])
    model_classes = np.asarray(model_classes, dtype=int)
    if proba.shape[1] == n_classes and np.array_equal(model_classes, np.arange(n_classes)):
        return proba
    full = np.zeros((proba.shape[0], n_classes))
    full[:, model_classes] = proba
    return full / full.sum(axis=1, keepdims=True)


def estimator_output(estimator, X, task: TaskInfo) -> np.ndarray:
    """predict_raw for a fitted estimator with scikit-learn's API: its predictions as float64 values (n,), or its
    predict_proba spread over all task classes by its classes_ (a class absent from training gets 0)."""
    if not task.is_classification:
        return np.asarray(estimator.predict(X), dtype="float64").ravel()
    return expand_proba(estimator.predict_proba(X), estimator.classes_, task.n_classes)


def objective_defined(task: TaskInfo, y_val: np.ndarray) -> bool:
    """ROC AUC is undefined on a one-class validation part (XGBoost gives NaN, LightGBM 1.0): adapters
    then report nothing to the pruner (early stopping is on log loss anyway)."""
    return task.task_type != "binary" or len(np.unique(y_val)) == 2


def nothing_to_learn(task: TaskInfo, X_train, y_train) -> bool:
    """No usable feature, or a classification training part with one class: CatBoost raises, XGBoost and
    LightGBM return a clipped base score (P(unseen class) ~ 1e-6 / 1e-15, a huge log loss)."""
    return X_train.shape[1] == 0 or (task.is_classification and len(np.unique(y_train)) < 2)


def constant_prediction(task: TaskInfo, y: np.ndarray) -> np.ndarray:
    """Laplace-smoothed class prior (finite log loss) or the mean: the fallback when nothing is learnable."""
    if not task.is_classification:
        return np.array([float(np.mean(y))])
    counts = np.bincount(np.asarray(y, dtype=int), minlength=task.n_classes) + 1.0
    return counts / counts.sum()


class TrivialFitFallback:
    """Mixin for adapters: when nothing is learnable, predict the smoothed prior / mean instead."""

    task: TaskInfo  # set by Adapter.__init__ of the class this is mixed into
    ctx: FitContext
    _constant: np.ndarray | None = None

    def fit_constant_if_trivial(self, X_train, y_train) -> bool:
        self._constant = None
        if nothing_to_learn(self.task, X_train, y_train):
            self._constant = constant_prediction(self.task, y_train)
            self.ctx.record_end(TrialEnd.CONVERGED, iterations=0, best=0, constant_model=True)
            return True
        return False

    def constant_output(self, n_rows: int) -> np.ndarray:
        if self._constant is None:
            raise RuntimeError(f"{type(self).__name__}: constant_output called without a constant model fitted")
        out = np.tile(self._constant, (n_rows, 1))
        return out if self.task.is_classification else out.ravel()
