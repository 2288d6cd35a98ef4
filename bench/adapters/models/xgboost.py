"""XGBoost with native categoricals (hist trees), early stopping on the validation part, pruning.

Why it looks the way it does:
  * Native categoricals (`enable_categorical=True`) on the TreeFramePreprocessor frame: its category
    vocabulary is frozen on the training part, so codes mean the same thing at fit and predict time,
    and columns with no categories (which crash XGBoost 3) are already dropped.
  * Columns are renamed to positional names: XGBoost rejects feature names containing '[', ']' or '<',
    which real (OpenML) column names can contain.
  * eval_metric is the early-stopping metric alone (logloss / mlogloss / rmse). Early stopping follows
    the shared protocol of bench.adapters.framework.early_stopping (log loss for classification, never before 20
    rounds, then patience `early_stopping_rounds`, the deadline, one precedence of ends); the pruner
    gets the objective every 25 rounds, computed from the validation predictions XGBoost keeps in its
    prediction cache (the best round's are kept for the trial's score). XGBoost's own EarlyStopping
    callback is not used: it has no minimum number of rounds. One xgb.callback.TrainingCallback
    makes every per-round decision and returns True when the monitor ends training.
  * The model predicts with the best round on the stopping metric (iteration_range), however training
    ended (early stopping, the round cap, the deadline).
  * Multiclass uses softprob with num_class = task.n_classes, so a class missing from the training
    part still gets a (near-zero) column; a training part with a single class (or no usable feature)
    gets the smoothed class prior / mean instead of a crash.
"""

from __future__ import annotations

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


class XGBoostParams(GBDTParams):
    n_estimators: int  # the round cap (early stopping decides)
    learning_rate: float
    max_depth: int
    min_child_weight: int
    subsample: float
    colsample_bytree: float
    colsample_bylevel: float
    gamma: float
    reg_alpha: float
    reg_lambda: float
    max_bin: int
    max_cat_to_onehot: int


@register_adapter
class XGBoostAdapter(GBDTAdapter[XGBoostParams]):
    name = "xgboost"
    libraries = ("xgboost",)
    capabilities = Capabilities(gpu="optional")
    METRICS = {  # task type -> (objective, early-stopping metric, metric equal to the bench objective)
        "binary": LibraryMetrics("binary:logistic", "logloss", "auc"),
        "multiclass": LibraryMetrics("multi:softprob", "mlogloss", "mlogloss"),
        "regression": LibraryMetrics("reg:squarederror", "rmse", "rmse"),
    }
    # XGBoost's own defaults made explicit, plus the round cap for early stopping. gamma and reg_alpha
    # default to 0 in XGBoost; the published space below is log-uniform from 1e-8, so the defaults sit
    # at that floor (numerically the same model: no split has a gain below 1e-8, no L1 shrink > 1e-8).
    defaults: ClassVar[XGBoostParams] = {
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

    def _booster_params(self, metrics: list[str]) -> dict[str, Any]:
        params = self._library_params()
        params.update(objective=self.METRICS[self.task.task_type].objective, eval_metric=metrics,
                      tree_method="hist", device="cuda" if self.ctx.device == "cuda" else "cpu",
                      nthread=self.ctx.threads, seed=self.ctx.seed, verbosity=0)
        if self.task.task_type == "multiclass":
            params["num_class"] = self.task.n_classes
        return params

    def _train(self, X_train, y_train, X_val, y_val, monitor: StoppingMonitor) -> None:
        import xgboost as xgb

        dtrain = xgb.QuantileDMatrix(positional_columns(X_train), y_train, enable_categorical=True,
                                     max_bin=self.params["max_bin"], nthread=self.ctx.threads)
        dval = xgb.QuantileDMatrix(positional_columns(X_val), y_val, enable_categorical=True,
                                   ref=dtrain, nthread=self.ctx.threads)
        probe = probe_rows(X_val)
        dprobe = xgb.DMatrix(probe, enable_categorical=True, nthread=self.ctx.threads)
        after_round = self._after_round

        class AfterEachRound(xgb.callback.TrainingCallback):
            # Called from Python inside xgb.train, so TrialPruned raised by ctx.report propagates as is.
            def after_iteration(self, model, epoch, evals_log) -> bool:
                # model.predict(dval) reads XGBoost's prediction cache of the evaluation set (only the
                # newest trees are added), so the current validation predictions cost a copy.
                monitor.probe = lambda: timed_probe(lambda: model.predict(dprobe), len(probe))
                return after_round(monitor, epoch + 1, {m: v[-1] for m, v in evals_log["val"].items()},
                                   lambda: model.predict(dval))

        # The stopping metric only: the objective is computed from the validation predictions at report
        # rounds (gbdt_base), not evaluated by XGBoost every round.
        self.booster = xgb.train(self._booster_params([self.METRICS[self.task.task_type].stop]), dtrain,
                                 num_boost_round=self.params["n_estimators"], evals=[(dval, "val")],
                                 callbacks=[AfterEachRound()], verbose_eval=False)

    def _predict_kept(self, X) -> np.ndarray:
        import xgboost as xgb

        dtest = xgb.DMatrix(positional_columns(X), enable_categorical=True, nthread=self.ctx.threads)
        return self._as_predictions(self.booster.predict(dtest, iteration_range=(0, self.kept_rounds)))
