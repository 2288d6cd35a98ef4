"""RealMLP (Holzmüller et al. 2024, "Better by Default: Strong Pre-Tuned MLPs and Boosted Trees on Tabular
Data", NeurIPS) through `pytabkit`, the authors' package: optional extra `realmlp`.

Why it looks the way it does:
  * pytabkit does its own preprocessing (robust scaling + smooth clipping of numerics, one-hot or
    embeddings for categoricals) and is fit on the training rows only. It refuses NaN in numeric columns,
    so the frame it gets has numerics median-imputed (training medians) plus a missing-indicator column
    where training had NaN; categoricals keep the training vocabulary (bench.preprocessing.ColumnPlan),
    and missing or unseen levels land in pytabkit's own "missing/unknown" category.
  * The harness's validation part is passed as X_val/y_val: pytabkit then trains on X only and keeps the
    weights of the best validation epoch, measured like every other adapter's early stopping
    (bench.adapters.framework.early_stopping): log loss for classification, RMSE for regression, instead of
    pytabkit's default classification error. RealMLP-TD trains its whole epoch budget (its schedules
    are tied to it), so there is no minimum-epoch rule to apply: it never stops early.
  * The tuning deadline reaches Lightning's max_time in whole seconds (pytabkit's grain; at least 1 s);
    when the deadline has already passed at fit start, one epoch is trained, the smallest usable model.
    ctx.record_end says how it ended (max_iterations or deadline; unit "epochs").
  * No pruning: pytabkit builds its Lightning trainer and callbacks internally and exposes no per-epoch
    hook through its scikit-learn interface, so nothing is reported to the tuner while training.
  * pytabkit is imported inside fit, and `unavailable_reason` only looks it up, so listing models works
    without the extra installed.
"""

from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager
from typing import Any, ClassVar, Literal, Mapping, TypedDict

import numpy as np
import pandas as pd

from bench.adapters import register_adapter
from bench.adapters.framework.contract import (
    Adapter,
    Capabilities,
    TrivialFitFallback,
    estimator_output,
    missing_extra,
)
from bench.adapters.framework.early_stopping import end_reason, stopping_metric
from bench.adapters.space import CategoricalParam, FloatParam, Param
from bench.preprocessing import TreeFramePreprocessor, numeric_pipeline
from bench.vocabulary import TrialEnd

# hidden_sizes choices as Optuna-storable strings ("width x depth") -> pytabkit's list of layer widths
HIDDEN_SIZES = {"256x3": [256] * 3, "64x5": [64] * 5, "512x1": [512]}
# pytabkit validation metric (minimized) for best-epoch selection: the shared early-stopping metric
VAL_METRIC = {"binary": "cross_entropy", "multiclass": "cross_entropy", "regression": "rmse"}
_OWN_KEYS = ("hidden_sizes", "time_limit_s", "ls_eps")
_QUIET_LOGGERS = ("lightning.pytorch", "pytorch_lightning", "lightning_fabric", "lightning")


class ImputedFramePreprocessor(TreeFramePreprocessor):
    """The tree frame (training vocabulary, constant columns dropped) with numerics median-imputed and a
    0/1 missing-indicator column for every numeric column that had missing values in training (the
    shared bench.preprocessing.numeric_pipeline, without scaling: RealMLP scales for itself)."""

    def fit(self, X: pd.DataFrame, y=None) -> "ImputedFramePreprocessor":
        super().fit(X)
        self.numeric_pipeline = None
        if self.plan.numeric:
            self.numeric_pipeline = numeric_pipeline("none", len(X)).fit(super().transform(X)[self.plan.numeric])
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = super().transform(X)
        if self.numeric_pipeline is None:
            return frame
        values = self.numeric_pipeline.transform(frame[self.plan.numeric]).astype("float32")
        # imputed numerics first, then one indicator per numeric column that had NaN in training
        names = self.plan.numeric + [f"__missing_{i}" for i in range(values.shape[1] - len(self.plan.numeric))]
        numeric = pd.DataFrame(values, columns=names, index=frame.index)
        return pd.concat([numeric, frame[self.plan.categorical]], axis=1)


class _ClassificationOnly(TypedDict, total=False):
    ls_eps: float  # label smoothing: classification only (defaults_for leaves it out for regression)


class RealMLPParams(_ClassificationOnly):
    n_epochs: int
    batch_size: int
    hidden_sizes: Literal["256x3", "64x5", "512x1"]  # a key of HIDDEN_SIZES
    num_emb_type: str
    add_front_scale: bool
    lr: float
    p_drop: float
    wd: float
    plr_sigma: float
    act: str
    time_limit_s: float | None


@register_adapter
class RealMLPAdapter(TrivialFitFallback, Adapter[RealMLPParams]):
    name = "realmlp"
    family = "neural"
    libraries = ("pytabkit", "torch")
    extra = "realmlp"
    capabilities = Capabilities(gpu="optional")
    # RealMLP-TD defaults (pytabkit.models.sklearn.default_params.DefaultParams.RealMLP_TD_CLASS / _REG,
    # the paper's Table of RealMLP-TD settings) for the tuned keys and the training length; everything
    # else is left to pytabkit's RealMLP-TD defaults. These are the classification values; regression
    # differs in lr (0.2) and act (mish) and has no label smoothing, see defaults_for.
    defaults: ClassVar[RealMLPParams] = {
        "n_epochs": 256, "batch_size": 256, "hidden_sizes": "256x3", "num_emb_type": "pbld",
        "add_front_scale": True, "lr": 0.04, "p_drop": 0.15, "wd": 0.02, "plr_sigma": 0.1,
        "act": "selu", "ls_eps": 0.1, "time_limit_s": None,
    }
    _REGRESSION_DEFAULTS = {"lr": 0.2, "act": "mish"}
    # Holzmüller et al. 2024, appendix, search space of RealMLP-HPO (also pytabkit's
    # RealMLPParamSampler, hpo_space_name="default"): num_emb_type {none, pbld, pl, plr}; add_front_scale
    # {True (p=0.6), False (0.4)}; lr LogU[2e-2, 3e-1]; p_drop {0 (0.3), 0.15 (0.5), 0.3 (0.2)};
    # wd {0, 2e-2}; plr_sigma LogU[0.05, 0.5]; act {relu, selu, mish}; hidden_sizes {256x3 (0.6),
    # 64x5 (0.2), 512x1 (0.2)}; ls_eps {0 (0.3), 0.1 (0.7)} for classification only.
    # Departure: TPE's categorical prior is uniform, so the paper's choice probabilities are not used.
    search_space = {
        "num_emb_type": CategoricalParam(("none", "pbld", "pl", "plr")),
        "add_front_scale": CategoricalParam((True, False)),
        "lr": FloatParam(2e-2, 3e-1, log=True),
        "p_drop": CategoricalParam((0.0, 0.15, 0.3)),
        "wd": CategoricalParam((0.0, 0.02)),
        "plr_sigma": FloatParam(0.05, 0.5, log=True),
        "act": CategoricalParam(("relu", "selu", "mish")),
        "hidden_sizes": CategoricalParam(tuple(HIDDEN_SIZES)),
        "ls_eps": CategoricalParam((0.0, 0.1)),
    }
    smoke_params = {"n_epochs": 3, "hidden_sizes": "64x5"}

    @classmethod
    def unavailable_reason(cls, task_type: str | None = None) -> str | None:
        return missing_extra("pytabkit", cls.extra)

    @classmethod
    def defaults_for(cls, task_type: str) -> Mapping[str, Any]:
        if task_type != "regression":
            return cls.defaults
        return {k: v for k, v in {**cls.defaults, **cls._REGRESSION_DEFAULTS}.items() if k != "ls_eps"}

    @classmethod
    def search_space_for(cls, task_type: str) -> Mapping[str, Param]:
        if task_type != "regression":
            return cls.search_space
        return {k: v for k, v in cls.search_space.items() if k != "ls_eps"}

    def make_preprocessor(self):
        return ImputedFramePreprocessor()

    def _model_params(self, val_metric: str) -> dict[str, Any]:
        p = self.params
        params = {k: v for k, v in p.items() if k not in _OWN_KEYS}
        params.update(hidden_sizes=HIDDEN_SIZES[p["hidden_sizes"]], val_metric_name=val_metric,
                      device=self.ctx.device, random_state=self.ctx.seed, n_threads=self.ctx.threads,
                      verbosity=0)
        if self.task.is_classification:
            # ls_eps = 0 means no label smoothing; pytabkit switches it on and off with use_ls.
            params.update(use_ls=float(p.get("ls_eps", 0.0)) > 0, ls_eps=float(p.get("ls_eps", 0.0)))
        return params

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

        metric = VAL_METRIC[self.task.task_type]
        cls = RealMLP_TD_Classifier if self.task.is_classification else RealMLP_TD_Regressor
        params = self._model_params(metric)
        left = self.ctx.seconds_left()
        out_of_time = left is not None and left <= 0
        if out_of_time:
            params["n_epochs"] = 1
        self.model = cls(**params)
        cat_indicator = [isinstance(dt, pd.CategoricalDtype) for dt in X_train.dtypes]
        y_train, y_val = self._target(y_train), self._target(y_val)
        seconds = None if out_of_time else self._seconds_allowed()
        extra = {"time_to_fit_in_seconds": seconds} if seconds else {}
        with quiet_lightning():
            self.model.fit(X_train, y_train, X_val, y_val, cat_indicator=cat_indicator, **extra)
        stop = (getattr(self.model, "fit_params_", None) or {}).get("stop_epoch", {})
        cap = int(self.params["n_epochs"])
        done = self._epochs_done()
        cut = out_of_time or (seconds is not None and done is not None and done < cap)
        # The shared precedence (bench.adapters.framework.early_stopping.end_reason): Lightning's max_time cuts an
        # epoch mid-way; otherwise RealMLP-TD trains its whole epoch budget.
        end = end_reason(interrupted=cut, at_cap=not cut) or TrialEnd.MAX_ITERATIONS
        kept = {} if (best := self._best_val_score(metric)) is None else {"best_val_score": best}
        self.ctx.record_end(end, iterations=done, best=stop.get(metric), unit="epochs",
                            early_stopping_metric=stopping_metric(self.task.task_type), library_metric=metric,
                            **kept)

    def _best_val_score(self, metric: str) -> float | None:
        """pytabkit's validation error at the kept epoch (its best_mean_val_errors), None where it has none."""
        module = getattr(getattr(self.model, "alg_interface_", None), "model", None)
        errors = (getattr(module, "best_mean_val_errors", None) or {}).get(metric)
        if errors is None:
            return None
        try:
            value = float(errors[0])
        except (TypeError, IndexError, ValueError):
            return None
        return value if np.isfinite(value) else None

    def _epochs_done(self) -> int | None:
        """Epochs Lightning ran (pytabkit's TabNNModule progress), None where pytabkit does not say."""
        progress = getattr(getattr(getattr(self.model, "alg_interface_", None), "model", None), "progress", None)
        epoch = getattr(progress, "epoch", None)
        return int(epoch) if epoch is not None else None

    def _seconds_allowed(self) -> int | None:
        """The time_limit_s parameter and the tuning budget's end (ctx.deadline), whichever comes first.
        pytabkit hands it to Lightning's max_time and still restores the best epoch seen so far."""
        limit = self.params.get("time_limit_s")
        limits = [float(limit)] if limit else []
        if self.ctx.deadline is not None:
            limits.append(self.ctx.deadline - time.monotonic())
        return max(1, int(min(limits))) if limits else None  # whole seconds, as pytabkit takes them

    def _target(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=int if self.task.is_classification else "float64")

    def predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        with quiet_lightning():
            return estimator_output(self.model, X, self.task)


@contextmanager
def quiet_lightning():
    """Silence Lightning's per-fit banners ("GPU available: ...") and pytabkit's deprecation warnings."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
