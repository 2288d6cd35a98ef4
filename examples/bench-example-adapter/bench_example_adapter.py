"""scikit-learn's HistGradientBoosting (a LightGBM-style GBDT) as a tabular-bench model, in one file.

Registered with tabular-bench through the `bench.adapters` entry point in pyproject.toml; once this
package is installed, `bench models list` shows `sklearn_hgb` and `bench run --models sklearn_hgb` runs it.

How it meets the harness:
  * TreeFramePreprocessor gives a frame with numerics as float32 (NaN kept: the trees route missing
    values themselves) and categoricals as pandas `category` with a vocabulary frozen on the training
    part, which HistGradientBoosting reads natively (categorical_features="from_dtype").
  * Early stopping on the harness's validation part (fit's X_val / y_val, scikit-learn >= 1.7), on the
    model's own loss (log loss / squared error). It reports no per-iteration values, so the tuner does
    not prune its trials (ctx.report is optional).
  * Threads follow ctx.threads through threadpoolctl (HistGradientBoosting uses OpenMP).
"""

from __future__ import annotations

import numpy as np

from bench.adapters import Adapter, CategoricalParam, FloatParam, IntParam, expand_proba, register_adapter
from bench.preprocessing import TreeFramePreprocessor

# HistGradientBoosting bins a categorical into at most max_bins (255) codes: the preprocessor keeps
# the most frequent 250 levels and pools the rest into one.
MAX_CATEGORY_LEVELS = 250


@register_adapter
class HistGradientBoostingAdapter(Adapter):
    name = "sklearn_hgb"
    family = "gbdt"
    libraries = ("scikit-learn",)
    # scikit-learn's defaults, except the iteration cap (1000, early stopping decides) and patience 20,
    # both as in Grinsztajn et al.'s HGBT configuration (source below).
    defaults = {
        "max_iter": 1000, "n_iter_no_change": 20, "learning_rate": 0.1, "max_leaf_nodes": 31,
        "max_depth": None, "min_samples_leaf": 20, "l2_regularization": 0.0,
    }
    smoke_params = {"max_iter": 20}
    # Grinsztajn, Oyallon & Varoquaux 2022, "Why do tree-based models still outperform deep learning on
    # tabular data?" (NeurIPS Datasets & Benchmarks), github.com/LeoGrin/tabular-benchmark,
    # src/configs/model_configs/hgbt_config.py (from hyperopt-sklearn): learning_rate log-normal
    # (mu = ln 0.01, sigma = ln 10), max_leaf_nodes normal(31, 5), max_depth {None, 2, 3, 4},
    # min_samples_leaf normal(20, 2). Our parameters are bounded, so each normal becomes the uniform
    # range mu +- 2 sigma, and max_depth's choice weights (.1/.1/.7/.1) become uniform.
    search_space = {
        "learning_rate": FloatParam(1e-4, 1.0, log=True),
        "max_leaf_nodes": IntParam(21, 41),
        "max_depth": CategoricalParam((None, 2, 3, 4)),
        "min_samples_leaf": IntParam(16, 24),
    }

    def make_preprocessor(self):
        return TreeFramePreprocessor(max_levels=MAX_CATEGORY_LEVELS)

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        p = self.params
        cls = HistGradientBoostingClassifier if self.task.is_classification else HistGradientBoostingRegressor
        self.model = cls(
            learning_rate=p["learning_rate"], max_iter=p["max_iter"], max_leaf_nodes=p["max_leaf_nodes"],
            max_depth=p["max_depth"], min_samples_leaf=p["min_samples_leaf"],
            l2_regularization=p["l2_regularization"], early_stopping=True,
            n_iter_no_change=p["n_iter_no_change"], categorical_features="from_dtype",
            random_state=self.ctx.seed)
        if self.task.is_classification:
            # Validation rows of a class the training part lacks cannot be scored by a model that never
            # saw it (scikit-learn refuses them); early stopping uses the other rows.
            seen = np.isin(y_val, np.unique(y_train))
            X_val, y_val = X_val.iloc[np.flatnonzero(seen)], y_val[seen]
        with threadpool_limits(self.ctx.threads):
            self.model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
        # How fit ended, for the trial record. scikit-learn keeps every iteration it ran (no rollback to
        # the best one) and cannot be stopped from outside, hence interruptible=False.
        done = int(self.model.n_iter_)
        self.ctx.record_end("early_stopped" if done < p["max_iter"] else "max_iterations", iterations=done,
                            best=done, unit="rounds", interruptible=False)

    def predict_raw(self, X) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.ctx.threads):
            if not self.task.is_classification:
                return self.model.predict(X)
            # Columns for every task class, including ones absent from the training part.
            return expand_proba(self.model.predict_proba(X), self.model.classes_, self.task.n_classes)
