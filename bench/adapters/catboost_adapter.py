"""CatBoost with its own categorical handling (ordered target statistics), early stopping, pruning.

Why it looks the way it does:
  * The CatBoostFramePreprocessor frame has categoricals as strings with an explicit missing token
    (CatBoost rejects NaN there); cat_features are read off that frame's dtypes (object = categorical).
  * class_names = all task classes: without it CatBoost refuses a validation part that holds a class
    the training part lacks. Probabilities are still mapped through `expand_proba` with the model's
    classes, so a (n, n_classes) matrix comes out whatever CatBoost decides to keep.
  * CatBoost calls Python callbacks from C++ and wraps anything they raise in CatBoostError, so the
    callback does not raise: it records the TrialPruned, stops training, and fit re-raises it.
  * The eval metric is the harness objective on the same scale (AUC / MultiClass log loss / RMSE);
    use_best_model keeps the trees up to the best validation iteration.
  * allow_writing_files=False: no catboost_info/ directory in the working directory.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.adapters import register_adapter
from bench.adapters.base import Adapter, Capabilities, expand_proba
from bench.adapters.space import FloatParam, IntParam
from bench.adapters.gbdt_common import TrivialFitFallback, early_stopping_metric
from bench.preprocessing import CatBoostFramePreprocessor

REPORT_EVERY = 25  # iterations between pruning reports: frequent enough to prune, cheap for the study DB
OBJECTIVES = {  # task type -> (loss function, eval metric equal to the bench.metrics objective)
    "binary": ("Logloss", "AUC"),
    "multiclass": ("MultiClass", "MultiClass"),
    "regression": ("RMSE", "RMSE"),
}
FALLBACK_METRIC = "Logloss"  # binary early stopping when the validation part has one class
_OWN_KEYS = ("iterations", "early_stopping_rounds")
_E = math.e


class _ReportValidation:
    """CatBoost callback object: reports the validation metric, turns a pruning request into a stop."""

    def __init__(self, ctx, metric: str):
        self.ctx, self.metric, self.pruned = ctx, metric, None

    def after_iteration(self, info) -> bool:
        import optuna

        if info.iteration % REPORT_EVERY:  # cheap check first: info.metrics copies the whole history
            return True
        values = info.metrics.get("validation", {}).get(self.metric) or []
        rounds = len(values)  # values so far, one per tree (info.iteration is 1-based, unlike XGBoost's)
        if rounds and math.isfinite(values[-1]):
            try:
                self.ctx.report_value(rounds, float(values[-1]))
            except optuna.TrialPruned as exc:
                self.pruned = exc
                return False  # stop training; fit re-raises
        return True


@register_adapter
class CatBoostAdapter(TrivialFitFallback, Adapter):
    name = "catboost"
    family = "gbdt"
    libraries = ("catboost",)
    capabilities = Capabilities(gpu="optional")
    # CatBoost's defaults made explicit, plus the iteration cap for early stopping. Departures, forced by
    # the published space: bootstrap_type "Bayesian" (CatBoost's default for MultiClass; it uses MVS for
    # Logloss/RMSE) because bagging_temperature is tuned and only means something with Bayesian; and an
    # explicit learning_rate of 0.03 (CatBoost's documented fixed default) instead of its automatic,
    # data-size-dependent choice, which cannot be written down as one value to enqueue as trial 0.
    defaults = {
        "iterations": 2000, "early_stopping_rounds": 50,
        "learning_rate": 0.03, "depth": 6, "l2_leaf_reg": 3.0, "random_strength": 1,
        "one_hot_max_size": 2, "bootstrap_type": "Bayesian", "bagging_temperature": 1.0,
        "border_count": 254,
    }
    # 30 iterations, early stopping never cutting below them: one pruning report (REPORT_EVERY) per fit.
    smoke_params = {"iterations": 30, "early_stopping_rounds": 30}
    # Prokhorenkova et al. 2018, "CatBoost: unbiased boosting with categorical features" (NeurIPS),
    # appendix tuning space for CatBoost, as reused by Shwartz-Ziv & Armon 2022 and in Grinsztajn et al.'s
    # benchmark code (github.com/LeoGrin/tabular-benchmark, .../catboost_david_config.py).
    # Departure: leaf_estimation_iterations (in those spaces) is left to CatBoost, whose default depends
    # on the loss (10 for Logloss, 1 otherwise) and so has no single default to enqueue as trial 0;
    # iterations are not tuned (early stopping decides).
    search_space = {
        "learning_rate": FloatParam(_E ** -5, 1.0, log=True),
        "random_strength": IntParam(1, 20),
        "one_hot_max_size": IntParam(0, 25),
        "l2_leaf_reg": FloatParam(1.0, 10.0, log=True),
        "bagging_temperature": FloatParam(0.0, 1.0),
    }

    def make_preprocessor(self):
        return CatBoostFramePreprocessor()

    def _model_params(self, metric: str) -> dict[str, Any]:
        loss, _ = OBJECTIVES[self.task.task_type]
        params = {k: v for k, v in self.params.items() if k not in _OWN_KEYS}
        params.update(iterations=self.params["iterations"], loss_function=loss, eval_metric=metric,
                      early_stopping_rounds=self.params["early_stopping_rounds"], use_best_model=True,
                      thread_count=self.ctx.threads, random_seed=self.ctx.seed, verbose=False,
                      allow_writing_files=False)
        if self.task.is_classification:
            params["class_names"] = list(range(self.task.n_classes))
        if self.ctx.device == "cuda":
            params.update(task_type="GPU", devices="0")
        return params

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        from catboost import CatBoostClassifier, CatBoostRegressor, Pool

        if self.fit_constant_if_trivial(X_train, y_train):
            return
        # Categorical columns are the non-numeric ones: the preprocessor writes numerics as float32 and
        # categoricals as strings (dtype object, or pandas 3's inferred `str` dtype).
        self._cat_features = [i for i, dt in enumerate(X_train.dtypes) if not pd.api.types.is_numeric_dtype(dt)]
        train = Pool(X_train, y_train, cat_features=self._cat_features)
        val = Pool(X_val, y_val, cat_features=self._cat_features)
        cls = CatBoostClassifier if self.task.is_classification else CatBoostRegressor
        report, metric = early_stopping_metric(self.task, y_val, OBJECTIVES, FALLBACK_METRIC)
        self.model = cls(**self._model_params(metric))
        reporter = _ReportValidation(self.ctx, metric)
        # CatBoost refuses Python callbacks on GPU ("User defined ... callbacks are not supported for
        # GPU", catboost issue #1792): GPU fits are not pruned.
        callbacks = [reporter] if report and self.ctx.device != "cuda" else None
        self.model.fit(train, eval_set=val, callbacks=callbacks)
        if reporter.pruned is not None:
            raise reporter.pruned
        # Report rounds as 1-based counts, like the other GBDT adapters: best_iteration = trees kept.
        curve = self.model.get_evals_result().get("validation", {}).get(metric, [])
        best = self.model.get_best_iteration()
        score = self.model.get_best_score().get("validation", {}).get(metric, float("nan"))
        self.ctx.info.update(best_iteration=int(best + 1 if best is not None else self.model.tree_count_),
                             n_rounds=int(len(curve) or self.model.tree_count_), early_stopping_metric=metric,
                             best_val_score=float(score))

    def _predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        from catboost import Pool

        pool = Pool(X, cat_features=self._cat_features)
        if not self.task.is_classification:
            return self.model.predict(pool)
        proba = self.model.predict_proba(pool)
        return expand_proba(proba, np.asarray(self.model.classes_, dtype=int), self.task.n_classes)
