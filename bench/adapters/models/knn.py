"""k-nearest neighbours (scikit-learn): the classic instance-based reference point.

Defaults are scikit-learn's (5 neighbours, uniform weights, Euclidean distance) on z-scored numerics with
one-hot categoricals, the scaling a distance needs so that no feature dominates by its unit.
The search space is TabArena's (Erickson et al. 2025, "TabArena: A Living Benchmark for Machine Learning on
Tabular Data"; repository autogluon/tabrepo, tabarena/models/knn/generate.py, "KNeighbors_new"):
n_neighbors {1..11, 13, 15, 20, 30, 40, 50, 100, 200, 300, 400, 500}, weights {uniform, distance},
p {1, 1.5, 2} (Minkowski), scaler {standard, quantile}. Left out: its cat_threshold (how many levels a
categorical may have to be one-hot encoded rather than ordinal or dropped): categoricals are always one-hot
here (at most 64 columns each, the rest pooled, bench.preprocessing), since an ordinal code has no distance.
n_neighbors larger than the training part is clipped to it.

Nothing iterates: fit stores the training rows (ctx.record_end "converged"); the validation part is unused.
"""

from __future__ import annotations

from typing import ClassVar, TypedDict

import numpy as np

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Adapter, estimator_output
from bench.adapters.space import CategoricalParam
from bench.preprocessing import MatrixPreprocessor
from bench.vocabulary import TrialEnd


class KNNParams(TypedDict):
    n_neighbors: int
    weights: str
    p: float  # Minkowski power
    scaler: str  # the numeric scaling, bench.preprocessing.MatrixPreprocessor's numeric option


@register_adapter
class KNNAdapter(Adapter[KNNParams]):
    name = "knn"
    family = "baseline"
    libraries = ("scikit-learn",)
    defaults: ClassVar[KNNParams] = {"n_neighbors": 5, "weights": "uniform", "p": 2, "scaler": "standard"}
    search_space = {
        "n_neighbors": CategoricalParam((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 20, 30, 40, 50,
                                         100, 200, 300, 400, 500)),
        "weights": CategoricalParam(("uniform", "distance")),
        "p": CategoricalParam((1, 1.5, 2)),
        "scaler": CategoricalParam(("standard", "quantile")),
    }

    def make_preprocessor(self):
        return MatrixPreprocessor(numeric=self.params["scaler"], categorical="onehot")

    def preprocessing_key(self) -> tuple:
        return (type(self).__name__, self.params["scaler"])

    def fit(self, X_train, y_train, X_val=None, y_val=None) -> None:
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        cls = KNeighborsClassifier if self.task.is_classification else KNeighborsRegressor
        k = min(int(self.params["n_neighbors"]), len(X_train))
        self.model = cls(n_neighbors=k, weights=self.params["weights"], p=self.params["p"],
                         n_jobs=self.ctx.threads).fit(X_train, y_train)
        self.ctx.record_end(TrialEnd.CONVERGED, n_neighbors_used=k)

    def predict_raw(self, X) -> np.ndarray:
        return estimator_output(self.model, X, self.task)
