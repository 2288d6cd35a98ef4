"""CatBoost with its own categorical handling (ordered target statistics), early stopping, pruning.

Why it looks the way it does:
  * The CatBoostFramePreprocessor frame has categoricals as strings with an explicit missing token
    (CatBoost rejects NaN there); cat_features are read off that frame's dtypes (object = categorical).
  * class_names = all task classes: without it CatBoost refuses a validation part that holds a class
    the training part lacks. Probabilities are still mapped through `expand_proba` with the model's
    classes, so a (n, n_classes) matrix comes out whatever CatBoost decides to keep.
  * eval_metric is the early-stopping metric (Logloss / MultiClass / RMSE) and custom_metric adds the
    harness objective where it differs (binary: AUC), so CatBoost's own evaluation gives both each
    iteration. The trees are cut (shrink) to the best iteration of the shared monitor after training
    (use_best_model is off: the monitor keeps the iteration, as for every iterative adapter).
  * On CPU, early stopping follows the shared rule of bench.adapters.framework.early_stopping (never before 20
    iterations, then patience `early_stopping_rounds`) in a Python callback object, which also stops at
    the tuning deadline (ctx.deadline). CatBoost's own detector (early_stopping_rounds) is not used
    there: it has no minimum number of iterations. CatBoost calls Python callbacks from C++ and wraps
    anything they raise in CatBoostError, so the callback does not raise: it records the TrialPruned,
    stops training, and fit re-raises it.
  * On GPU CatBoost accepts no Python callbacks ("User defined ... callbacks are not supported for GPU",
    catboost issue #1792): no pruning reports; CatBoost's detector stops with a patience of
    MIN_ITERATIONS + early_stopping_rounds (so never before the shared rule would); and where a tuning
    deadline is set, the iteration cap is lowered up front to floor(seconds left / seconds per
    iteration), at the pace the last GPU fit on data of the same shape in this process had (the
    defaults trial, which has no deadline, runs first in every job); to 1 iteration when the deadline
    has already passed. Without a known pace (a resumed job) the cap stays, and only the hard
    --time-limit bounds the fit. Such trials record interruptible=False.
  * allow_writing_files=False: no catboost_info/ directory in the working directory.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Capabilities, expand_proba
from bench.adapters.framework.early_stopping import MIN_ITERATIONS, StoppingMonitor, end_reason
from bench.adapters.framework.gbdt_base import GBDTAdapter, GBDTParams, LibraryMetrics
from bench.adapters.space import FloatParam, IntParam
from bench.preprocessing import CatBoostFramePreprocessor

_E = math.e
# GPU fits in this process: seconds per iteration by training-set shape, for the deadline cap.
_GPU_PACE: dict[tuple[int, int], float] = {}


class _AfterEachIteration:
    """CatBoost callback object: runs the shared protocol, turns a pruning request into a stop."""

    def __init__(self, adapter: "CatBoostAdapter", monitor: StoppingMonitor):
        self.adapter, self.monitor = adapter, monitor
        self.pruned: BaseException | None = None  # the pruner's request (optuna.TrialPruned), re-raised by fit

    def after_iteration(self, info) -> bool:
        import optuna

        curves = info.metrics.get("validation", {})
        stop_metric = self.adapter.METRICS[self.adapter.task.task_type].stop
        rounds = len(curves.get(stop_metric) or [])  # values so far, one per tree
        if not rounds:
            return True
        try:
            stop = self.adapter._after_round(self.monitor, rounds, {m: curve[-1] for m, curve in curves.items()})
        except optuna.TrialPruned as exc:
            self.pruned = exc
            return False  # stop training; fit re-raises
        return not stop


class CatBoostParams(GBDTParams):
    iterations: int  # the round cap (early stopping decides)
    learning_rate: float
    depth: int
    l2_leaf_reg: float
    random_strength: int
    one_hot_max_size: int
    bootstrap_type: str
    bagging_temperature: float
    border_count: int


@register_adapter
class CatBoostAdapter(GBDTAdapter[CatBoostParams]):
    name = "catboost"
    libraries = ("catboost",)
    capabilities = Capabilities(gpu="optional")
    rounds_key = "iterations"
    METRICS = {  # task type -> (loss function, early-stopping metric, metric equal to the bench objective)
        "binary": LibraryMetrics("Logloss", "Logloss", "AUC"),
        "multiclass": LibraryMetrics("MultiClass", "MultiClass", "MultiClass"),
        "regression": LibraryMetrics("RMSE", "RMSE", "RMSE"),
    }
    # CatBoost's defaults made explicit, plus the iteration cap for early stopping. Departures, forced by
    # the published space: bootstrap_type "Bayesian" (CatBoost's default for MultiClass; it uses MVS for
    # Logloss/RMSE) because bagging_temperature is tuned and only means something with Bayesian; and an
    # explicit learning_rate of 0.03 (CatBoost's documented fixed default) instead of its automatic,
    # data-size-dependent choice, which cannot be written down as one value to enqueue as trial 0.
    defaults: ClassVar[CatBoostParams] = {
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

    def _model_params(self, monitor: StoppingMonitor, iterations: int) -> dict[str, Any]:
        gpu = self.ctx.device == "cuda"
        metrics = self.METRICS[self.task.task_type]
        params = self._library_params()
        params.update(iterations=iterations, loss_function=metrics.objective, eval_metric=metrics.stop,
                      use_best_model=False, thread_count=self.ctx.threads, random_seed=self.ctx.seed,
                      verbose=False, allow_writing_files=False)
        if not gpu and monitor.report and metrics.report != metrics.stop:
            # The callback sees metric values only: the objective is a second CatBoost metric.
            params["custom_metric"] = [metrics.report]
        if self.task.is_classification:
            params["class_names"] = list(range(self.task.n_classes))
        if gpu:
            params.update(task_type="GPU", devices="0",
                          early_stopping_rounds=MIN_ITERATIONS + int(self.params["early_stopping_rounds"]))
        return params

    def _train(self, X_train, y_train, X_val, y_val, monitor: StoppingMonitor) -> dict | None:
        from catboost import CatBoostClassifier, CatBoostRegressor, Pool

        # Categorical columns are the non-numeric ones: the preprocessor writes numerics as float32 and
        # categoricals as strings (dtype object, or pandas 3's inferred `str` dtype).
        self._cat_features = [i for i, dt in enumerate(X_train.dtypes) if not pd.api.types.is_numeric_dtype(dt)]
        train = Pool(X_train, y_train, cat_features=self._cat_features)
        val = Pool(X_val, y_val, cat_features=self._cat_features)
        cls = CatBoostClassifier if self.task.is_classification else CatBoostRegressor
        if self.ctx.device == "cuda":
            extra = self._train_gpu(cls, train, val, monitor)
        else:
            self.model = cls(**self._model_params(monitor, int(self.params["iterations"])))
            callback = _AfterEachIteration(self, monitor)
            self.model.fit(train, eval_set=val, callbacks=[callback])
            if callback.pruned is not None:
                raise callback.pruned
            extra = {}
        return extra

    def _keep_rounds(self, kept: int, monitor: StoppingMonitor, X_val) -> dict:
        """Cut the model to the monitor's best iteration; predict the validation part once with it."""
        if kept < self.model.tree_count_:
            self.model.shrink(ntree_end=kept)
        # CatBoost's callback sees metric values only, so the kept model predicts the validation part once
        # here (the trial is scored on these; CatBoost predicts fast). Its MultiClass metric leaves out
        # validation rows of a class absent from training, which bench.metrics' log loss counts: the kept
        # iteration is the same (those rows' share is a constant), best_val_score is bench.metrics' value.
        self.kept_val_predictions = self._predict_kept(X_val)
        return {"best_val_score": monitor.stopping_value(self.kept_val_predictions),
                "library_best_val_score": monitor.best_value}

    def _train_gpu(self, cls, train, val, monitor: StoppingMonitor) -> dict:
        """No callbacks on GPU: a deadline caps the iterations up front (module docstring)."""
        requested = cap = int(self.params["iterations"])
        shape = (train.num_row(), train.num_col())
        left = self.ctx.seconds_left()
        if left is not None:
            pace = _GPU_PACE.get(shape)
            if left <= 0:
                cap = 1
            elif pace is not None:
                cap = max(1, min(requested, int(left / pace)))
        self.model = cls(**self._model_params(monitor, cap))
        started = time.monotonic()
        self.model.fit(train, eval_set=val)
        stop_metric = self.METRICS[self.task.task_type].stop
        monitor.replay(self.model.get_evals_result().get("validation", {}).get(stop_metric, []))
        if monitor.iterations:
            _GPU_PACE[shape] = (time.monotonic() - started) / monitor.iterations
        # The precedence of bench.adapters.framework.early_stopping: CatBoost's detector stopped before the cap
        # (early_stopped), the requested cap was reached, or the lowered cap cut the fit (deadline).
        monitor.end = end_reason(early_stopped=monitor.iterations < cap, at_cap=cap == requested,
                                 out_of_time=cap < requested)
        return {"interruptible": False, "iteration_cap": cap}

    def _predict_kept(self, X) -> np.ndarray:
        from catboost import Pool

        pool = Pool(X, cat_features=self._cat_features)
        if not self.task.is_classification:
            return self.model.predict(pool)
        proba = self.model.predict_proba(pool)
        return expand_proba(proba, np.asarray(self.model.classes_, dtype=int), self.task.n_classes)
