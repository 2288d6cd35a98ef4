"""LightGBM with native categoricals (pandas `category` columns), early stopping, pruning.

Why it looks the way it does:
  * The TreeFramePreprocessor frame carries categoricals as `category` with a vocabulary frozen on the
    training part; LightGBM picks those columns up as categorical features by itself.
  * Columns are renamed to positional names: LightGBM rejects feature names with JSON special
    characters (",", ":", "[", "]", "{", "}", '"'), which real column names can contain.
  * `metric` is a list: the early-stopping metric first (binary_logloss / multi_logloss / rmse), then
    the harness objective where it differs (binary: auc); one evaluation per round gives both.
    Early stopping follows the shared rule of bench.adapters.early_stopping (never before 20 rounds,
    then patience `early_stopping_rounds`), made by one callback (GBDTAdapter's RoundMonitor) that also
    stops at the tuning deadline. lgb.early_stopping is not used: it has no minimum number of rounds.
    The callback stops by raising lgb.callback.EarlyStopException with the best round so far, so
    lgb.train keeps the model up to that round (also when the round cap is reached).
  * `deterministic` + `force_col_wise`: without forcing, LightGBM picks row- or column-wise histograms
    by timing them, so two runs with the same seed could take different code paths.
  * CPU only: the PyPI wheel has no CUDA build.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.adapters import register_adapter
from bench.adapters.base import Capabilities, expand_proba
from bench.adapters.gbdt_base import GBDTAdapter, LibraryMetrics, RoundMonitor, positional_columns
from bench.adapters.space import FloatParam, IntParam
from bench.preprocessing import TreeFramePreprocessor

_E = math.e


@register_adapter
class LightGBMAdapter(GBDTAdapter):
    name = "lightgbm"
    libraries = ("lightgbm",)
    capabilities = Capabilities(gpu="no")
    METRICS = {  # task type -> (objective, early-stopping metric, metric equal to the bench objective)
        "binary": LibraryMetrics("binary", "binary_logloss", "auc"),
        "multiclass": LibraryMetrics("multiclass", "multi_logloss", "multi_logloss"),
        "regression": LibraryMetrics("regression", "rmse", "rmse"),
    }
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

    def _booster_params(self, metrics: list[str]) -> dict[str, Any]:
        params = self._library_params()
        params.update(objective=self.METRICS[self.task.task_type].objective, metric=metrics,
                      num_threads=self.ctx.threads, seed=self.ctx.seed, deterministic=True,
                      force_col_wise=True, verbosity=-1)
        if self.task.task_type == "multiclass":
            params["num_class"] = self.task.n_classes
        return params

    def _train(self, X_train, y_train, X_val, y_val, monitor: RoundMonitor) -> None:
        import lightgbm as lgb

        params = self._booster_params(monitor.metrics.evaluated(monitor.report_metric is not None))
        # Dataset-level parameters (binning) must be given to the Dataset too, or LightGBM warns.
        dataset_params = {"max_bin": params["max_bin"], "verbosity": -1}
        dtrain = lgb.Dataset(positional_columns(X_train), y_train, params=dataset_params,
                             categorical_feature="auto", free_raw_data=True)
        dval = lgb.Dataset(positional_columns(X_val), y_val, reference=dtrain, params=dataset_params)
        at_best: list = []  # the evaluation results of the best round so far

        def after_each_round(env) -> None:
            # A plain Python callback inside lgb.train's loop: TrialPruned propagates unwrapped.
            rounds = env.iteration + 1
            stop = monitor.after_round(rounds, {name: value for _, name, value, *_ in env.evaluation_result_list})
            if monitor.stopper.best_iteration == rounds:
                at_best[:] = env.evaluation_result_list
            if stop or rounds == env.end_iteration:  # also at the cap: lgb.train then keeps the best round
                raise lgb.callback.EarlyStopException(monitor.stopper.best_iteration - 1, list(at_best))

        self.booster = lgb.train(params, dtrain, num_boost_round=self.params["n_estimators"],
                                 valid_sets=[dval], valid_names=["val"], callbacks=[after_each_round])

    def _predict_kept(self, X) -> np.ndarray:
        pred = self.booster.predict(positional_columns(X), num_iteration=self.kept_rounds,
                                    num_threads=self.ctx.threads)
        if not self.task.is_classification:
            return pred
        return expand_proba(pred, np.arange(self.task.n_classes), self.task.n_classes)
