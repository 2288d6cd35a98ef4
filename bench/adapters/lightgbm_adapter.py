"""LightGBM with native categoricals (pandas `category` columns), early stopping, pruning.

Why it looks the way it does:
  * The TreeFramePreprocessor frame carries categoricals as `category` with a vocabulary frozen on the
    training part; LightGBM picks those columns up as categorical features by itself.
  * Columns are renamed to positional names: LightGBM rejects feature names with JSON special
    characters (",", ":", "[", "]", "{", "}", '"'), which real column names can contain.
  * The validation metric is the harness objective on the same scale (AUC / multi-logloss / RMSE).
  * `deterministic` + `force_col_wise`: without forcing, LightGBM picks row- or column-wise histograms
    by timing them, so two runs with the same seed could take different code paths.
  * CPU only: the PyPI wheel has no CUDA build.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.adapters import register_adapter
from bench.adapters.base import Adapter, Capabilities, expand_proba
from bench.adapters.space import FloatParam, IntParam
from bench.adapters.gbdt_common import TrivialFitFallback, early_stopping_metric, positional_columns
from bench.preprocessing import TreeFramePreprocessor

REPORT_EVERY = 25  # rounds between pruning reports: frequent enough to prune, cheap for the study DB
OBJECTIVES = {  # task type -> (objective, metric equal to the bench.metrics objective)
    "binary": ("binary", "auc"),
    "multiclass": ("multiclass", "multi_logloss"),
    "regression": ("regression", "rmse"),
}
FALLBACK_METRIC = "binary_logloss"  # binary early stopping when the validation part has one class
_OWN_KEYS = ("n_estimators", "early_stopping_rounds")
_E = math.e


@register_adapter
class LightGBMAdapter(TrivialFitFallback, Adapter):
    name = "lightgbm"
    family = "gbdt"
    libraries = ("lightgbm",)
    capabilities = Capabilities(gpu="no")
    # LightGBM's own defaults made explicit, plus the round cap for early stopping. Two departures, both
    # forced by the published space: bagging_freq=1 (LightGBM ignores bagging_fraction while
    # bagging_freq=0; with bagging_fraction=1.0 no bagging happens, so the default model is unchanged),
    # and lambda_l1/l2 at the space's floor e^-16 (~1e-7) instead of 0 (numerically the same model).
    defaults = {
        "n_estimators": 2000, "early_stopping_rounds": 50,
        "learning_rate": 0.1, "num_leaves": 31, "max_depth": -1, "min_data_in_leaf": 20,
        "min_sum_hessian_in_leaf": 1e-3, "feature_fraction": 1.0, "bagging_fraction": 1.0,
        "bagging_freq": 1, "lambda_l1": _E ** -16, "lambda_l2": _E ** -16, "max_bin": 255,
        "max_cat_to_onehot": 4, "cat_smooth": 10.0, "cat_l2": 10.0,
    }
    # 30 rounds, early stopping never cutting below them: one pruning report (REPORT_EVERY) per fit.
    smoke_params = {"n_estimators": 30, "early_stopping_rounds": 30}
    # Prokhorenkova et al. 2018, "CatBoost: unbiased boosting with categorical features" (NeurIPS),
    # appendix tuning space for LightGBM, as reused by Shwartz-Ziv & Armon 2022 ("Tabular data: deep
    # learning is not all you need") and in Grinsztajn et al.'s benchmark code
    # (github.com/LeoGrin/tabular-benchmark, src/configs/model_configs/lightgbm_david_config.py).
    # Departures: num_leaves starts at 2 (LightGBM requires > 1); lambda_l1/l2 are log-uniform over
    # [e^-16, e^2] instead of the mixture {0, log-uniform}, the low end of which is effectively 0 anyway;
    # n_estimators is not tuned (early stopping decides).
    search_space = {
        "learning_rate": FloatParam(_E ** -7, 1.0, log=True),
        "num_leaves": IntParam(2, int(_E ** 7), log=True),
        "feature_fraction": FloatParam(0.5, 1.0),
        "bagging_fraction": FloatParam(0.5, 1.0),
        "min_data_in_leaf": IntParam(1, int(_E ** 6), log=True),
        "min_sum_hessian_in_leaf": FloatParam(_E ** -16, _E ** 5, log=True),
        "lambda_l1": FloatParam(_E ** -16, _E ** 2, log=True),
        "lambda_l2": FloatParam(_E ** -16, _E ** 2, log=True),
    }

    def make_preprocessor(self):
        return TreeFramePreprocessor()

    def _booster_params(self, metric: str) -> dict[str, Any]:
        objective, _ = OBJECTIVES[self.task.task_type]
        params = {k: v for k, v in self.params.items() if k not in _OWN_KEYS}
        params.update(objective=objective, metric=metric, num_threads=self.ctx.threads, seed=self.ctx.seed,
                      deterministic=True, force_col_wise=True, verbosity=-1)
        if self.task.task_type == "multiclass":
            params["num_class"] = self.task.n_classes
        return params

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        import lightgbm as lgb

        if self.fit_constant_if_trivial(X_train, y_train):
            return
        report, metric = early_stopping_metric(self.task, y_val, OBJECTIVES, FALLBACK_METRIC)
        params = self._booster_params(metric)
        # Dataset-level parameters (binning) must be given to the Dataset too, or LightGBM warns.
        dataset_params = {"max_bin": params["max_bin"], "verbosity": -1}
        dtrain = lgb.Dataset(positional_columns(X_train), y_train, params=dataset_params,
                             categorical_feature="auto", free_raw_data=True)
        dval = lgb.Dataset(positional_columns(X_val), y_val, reference=dtrain, params=dataset_params)
        ctx, trained = self.ctx, [0]

        def report_validation(env) -> None:
            # A plain Python callback inside lgb.train's loop: TrialPruned propagates unwrapped.
            rounds = trained[0] = env.iteration + 1
            if report and rounds % REPORT_EVERY == 0:
                value = env.evaluation_result_list[0][2]
                if math.isfinite(value):
                    ctx.report_value(rounds, float(value))

        self.booster = lgb.train(
            params, dtrain, num_boost_round=self.params["n_estimators"], valid_sets=[dval],
            valid_names=["val"],
            callbacks=[report_validation,
                       lgb.early_stopping(self.params["early_stopping_rounds"], first_metric_only=True,
                                          verbose=False)])
        # lgb.train returns a booster cut at the best iteration, so count trained rounds in the callback.
        # best_iteration is 1-based (trees kept), as in the other GBDT adapters.
        rounds = trained[0]
        best = self.booster.best_iteration or self.booster.current_iteration()
        score = self.booster.best_score.get("val", {}).get(metric, float("nan"))
        self.ctx.info.update(best_iteration=int(best), n_rounds=int(rounds), early_stopping_metric=metric,
                             best_val_score=float(score))
        self._best = int(best)

    def _predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        pred = self.booster.predict(positional_columns(X), num_iteration=self._best,
                                    num_threads=self.ctx.threads)
        if not self.task.is_classification:
            return pred
        return expand_proba(pred, np.arange(self.task.n_classes), self.task.n_classes)
