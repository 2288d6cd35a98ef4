"""XGBoost with native categoricals (hist trees), early stopping on the validation part, pruning.

Why it looks the way it does:
  * Native categoricals (`enable_categorical=True`) on the TreeFramePreprocessor frame: its category
    vocabulary is frozen on the training part, so codes mean the same thing at fit and predict time,
    and columns with no categories (which crash XGBoost 3) are already dropped.
  * Columns are renamed to positional names: XGBoost rejects feature names containing '[', ']' or '<',
    which real (OpenML) column names can contain.
  * The eval metric is the harness objective on the same scale (AUC / multi-logloss / RMSE), so the
    early-stopping round, the pruning curve and the tuning value all mean the same thing.
  * Multiclass uses softprob with num_class = task.n_classes, so a class missing from the training
    part still gets a (near-zero) column; a training part with a single class (or no usable feature)
    gets the smoothed class prior / mean instead of a crash.
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
OBJECTIVES = {  # task type -> (objective, eval metric that equals the bench.metrics objective)
    "binary": ("binary:logistic", "auc"),
    "multiclass": ("multi:softprob", "mlogloss"),
    "regression": ("reg:squarederror", "rmse"),
}
FALLBACK_METRIC = "logloss"  # binary early stopping when the validation part has one class
# Keys of `params` the adapter handles itself; everything else goes to xgboost.train as a parameter.
_OWN_KEYS = ("n_estimators", "early_stopping_rounds")


@register_adapter
class XGBoostAdapter(TrivialFitFallback, Adapter):
    name = "xgboost"
    family = "gbdt"
    libraries = ("xgboost",)
    capabilities = Capabilities(gpu="optional")
    # XGBoost's own defaults made explicit, plus the round cap for early stopping. gamma and reg_alpha
    # default to 0 in XGBoost; the published space below is log-uniform from 1e-8, so the defaults sit
    # at that floor (numerically the same model: no split has a gain below 1e-8, no L1 shrink > 1e-8).
    defaults = {
        "n_estimators": 2000, "early_stopping_rounds": 50,
        "learning_rate": 0.3, "max_depth": 6, "min_child_weight": 1, "subsample": 1.0,
        "colsample_bytree": 1.0, "colsample_bylevel": 1.0, "gamma": 1e-8, "reg_alpha": 1e-8,
        "reg_lambda": 1.0, "max_bin": 256, "max_cat_to_onehot": 4,
    }
    # 30 rounds, early stopping never cutting below them: one pruning report (REPORT_EVERY) per fit.
    smoke_params = {"n_estimators": 30, "early_stopping_rounds": 30}
    # Grinsztajn, Oyallon & Varoquaux 2022, "Why do tree-based models still outperform deep learning on
    # tabular data?" (NeurIPS Datasets & Benchmarks), Table/Appendix A.2 and their code
    # (github.com/LeoGrin/tabular-benchmark, src/configs/model_configs/xgb_config.py).
    # Not tuned, unlike the paper: n_estimators (early stopping decides, as in Gorishniy et al. 2021).
    search_space = {
        "max_depth": IntParam(1, 11),
        "learning_rate": FloatParam(1e-5, 0.7, log=True),
        "gamma": FloatParam(1e-8, 7.0, log=True),
        "min_child_weight": IntParam(1, 100, log=True),  # paper: q-log-uniform [1, 100], q=1
        "subsample": FloatParam(0.5, 1.0),
        "colsample_bytree": FloatParam(0.5, 1.0),
        "colsample_bylevel": FloatParam(0.5, 1.0),
        "reg_alpha": FloatParam(1e-8, 100.0, log=True),
        "reg_lambda": FloatParam(1.0, 4.0, log=True),
    }

    def make_preprocessor(self):
        return TreeFramePreprocessor()

    def _booster_params(self, metric: str) -> dict[str, Any]:
        objective, _ = OBJECTIVES[self.task.task_type]
        params = {k: v for k, v in self.params.items() if k not in _OWN_KEYS}
        params.update(objective=objective, eval_metric=metric, tree_method="hist",
                      device="cuda" if self.ctx.device == "cuda" else "cpu",
                      nthread=self.ctx.threads, seed=self.ctx.seed, verbosity=0)
        if self.task.task_type == "multiclass":
            params["num_class"] = self.task.n_classes
        return params

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        import xgboost as xgb

        if self.fit_constant_if_trivial(X_train, y_train):
            return
        report, metric = early_stopping_metric(self.task, y_val, OBJECTIVES, FALLBACK_METRIC)
        dtrain = xgb.QuantileDMatrix(positional_columns(X_train), y_train, enable_categorical=True,
                                     max_bin=self.params["max_bin"], nthread=self.ctx.threads)
        dval = xgb.QuantileDMatrix(positional_columns(X_val), y_val, enable_categorical=True,
                                   ref=dtrain, nthread=self.ctx.threads)
        ctx = self.ctx

        class ReportValidation(xgb.callback.TrainingCallback):
            # Called from Python inside xgb.train, so TrialPruned raised by ctx.report propagates as is.
            def after_iteration(self, model, epoch, evals_log) -> bool:
                rounds = epoch + 1
                if report and rounds % REPORT_EVERY == 0:
                    value = evals_log["val"][metric][-1]
                    if math.isfinite(value):
                        ctx.report_value(rounds, float(value))
                return False

        stopper = xgb.callback.EarlyStopping(rounds=self.params["early_stopping_rounds"],
                                             metric_name=metric, data_name="val",
                                             maximize=metric == "auc", save_best=False)
        self.booster = xgb.train(self._booster_params(metric), dtrain,
                                 num_boost_round=self.params["n_estimators"], evals=[(dval, "val")],
                                 callbacks=[ReportValidation(), stopper], verbose_eval=False)
        # Rounds are reported as 1-based counts (best_iteration = trees kept), the same in every GBDT adapter.
        rounds = self.booster.num_boosted_rounds()
        best = int(getattr(self.booster, "best_iteration", rounds - 1)) + 1
        self.ctx.info.update(best_iteration=best, n_rounds=int(rounds), early_stopping_metric=metric,
                             best_val_score=float(getattr(self.booster, "best_score", float("nan"))))
        self._iteration_range = (0, best)

    def _predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        import xgboost as xgb

        dtest = xgb.DMatrix(positional_columns(X), enable_categorical=True, nthread=self.ctx.threads)
        pred = self.booster.predict(dtest, iteration_range=self._iteration_range)
        if not self.task.is_classification:
            return pred
        return expand_proba(pred, np.arange(self.task.n_classes), self.task.n_classes)
