"""LightGBM with native categoricals (pandas `category` columns), early stopping, pruning.

Why it looks the way it does:
  * The TreeFramePreprocessor frame carries categoricals as `category` with a vocabulary frozen on the
    training part; LightGBM picks those columns up as categorical features by itself.
  * Columns are renamed to positional names: LightGBM rejects feature names with JSON special
    characters (",", ":", "[", "]", "{", "}", '"'), which real column names can contain.
  * `metric` is the early-stopping metric alone (binary_logloss / multi_logloss / rmse); the harness
    objective (binary: ROC AUC) is computed from the validation predictions LightGBM hands a no-op
    `feval` every round, at report rounds only, and the best round's predictions are kept for the
    trial's score. Early stopping follows the shared protocol of bench.adapters.framework.early_stopping (never
    before 20 rounds, then patience `early_stopping_rounds`, the deadline, one precedence of ends),
    run by one callback. lgb.early_stopping is not used: it has no minimum number of rounds.
    The callback stops by raising lgb.callback.EarlyStopException with the best round so far, so
    lgb.train keeps the model up to that round (also when the round cap is reached).
  * `deterministic` + `force_col_wise`: without forcing, LightGBM picks row- or column-wise histograms
    by timing them, so two runs with the same seed could take different code paths.
  * CPU only: the PyPI wheel has no CUDA build.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Capabilities
from bench.adapters.framework.early_stopping import StoppingMonitor
from bench.adapters.framework.gbdt_base import (
    GBDTAdapter,
    GBDTParams,
    LibraryMetrics,
    positional_columns,
    probe_rows,
    timed_probe,
)
from bench.adapters.space import FloatParam, IntParam
from bench.preprocessing import TreeFramePreprocessor

_E = math.e


class LightGBMParams(GBDTParams):
    n_estimators: int  # the round cap (early stopping decides)
    learning_rate: float
    num_leaves: int
    max_depth: int
    min_data_in_leaf: int
    min_sum_hessian_in_leaf: float
    feature_fraction: float
    bagging_fraction: float
    bagging_freq: int
    lambda_l1: float
    lambda_l2: float
    max_bin: int
    max_cat_to_onehot: int
    cat_smooth: float
    cat_l2: float


@register_adapter
class LightGBMAdapter(GBDTAdapter[LightGBMParams]):
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
    defaults: ClassVar[LightGBMParams] = {
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

    def _train(self, X_train, y_train, X_val, y_val, monitor: StoppingMonitor) -> None:
        import lightgbm as lgb

        # The stopping metric only: the objective is computed from the validation predictions at report
        # rounds (gbdt_base), not evaluated by LightGBM every round.
        params = self._booster_params([self.METRICS[self.task.task_type].stop])
        # Dataset-level parameters (binning) must be given to the Dataset too, or LightGBM warns.
        dataset_params = {"max_bin": params["max_bin"], "verbosity": -1}
        dtrain = lgb.Dataset(positional_columns(X_train), y_train, params=dataset_params,
                             categorical_feature="auto", free_raw_data=True)
        dval = lgb.Dataset(positional_columns(X_val), y_val, reference=dtrain, params=dataset_params)
        at_best: list = []  # the evaluation results of the best round so far
        current: list = []  # this round's validation predictions, as LightGBM hands them to feval

        def keep_predictions(preds, data) -> list:
            # A custom "metric" that evaluates nothing: LightGBM passes it the validation part's current
            # predictions (its own score buffer, which predicts every round anyway), so no second pass.
            current[:] = [preds]
            return []

        def after_each_round(env) -> None:
            # A plain Python callback inside lgb.train's loop: TrialPruned propagates unwrapped.
            rounds = env.iteration + 1
            monitor.probe = lambda: timed_probe(
                lambda: env.model.predict(probe, num_iteration=rounds, num_threads=self.ctx.threads), len(probe))
            values = {name: value for _, name, value, *_ in env.evaluation_result_list}
            stop = self._after_round(monitor, rounds, values, lambda: current[0])
            if monitor.best_iteration == rounds:
                at_best[:] = env.evaluation_result_list
            if stop or rounds == env.end_iteration:  # also at the cap: lgb.train then keeps the best round
                raise lgb.callback.EarlyStopException(monitor.best_iteration - 1, list(at_best))

        probe = probe_rows(X_val)
        # keep_training_booster: without it lgb.train converts the model to a string and back when it
        # returns (seconds for thousands of multiclass trees, after the deadline); predictions are equal.
        self.booster = lgb.train(params, dtrain, num_boost_round=self.params["n_estimators"],
                                 valid_sets=[dval], valid_names=["val"], feval=keep_predictions,
                                 callbacks=[after_each_round], keep_training_booster=True)

    def _predict_kept(self, X) -> np.ndarray:
        raw = self.booster.predict(positional_columns(X), num_iteration=self.kept_rounds, num_threads=self.ctx.threads)
        return self._as_predictions(np.asarray(raw))
