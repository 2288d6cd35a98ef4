"""A plug-in model outside the harness, as a user writes one for a quick experiment: found only through
BENCH_ADAPTER_MODULES (conftest does not name it), so a worker knows it only when the executor forwards
the driver's settings (tests/test_ray_multinode.py)."""

import numpy as np

from bench.adapters import Adapter, Capabilities, register_adapter
from bench.preprocessing import MatrixPreprocessor
from bench.vocabulary import TrialEnd


@register_adapter
class NearestCentroidPlugin(Adapter):
    """Class probabilities from the distances to the class centroids (softmax of minus the distance)."""

    name = "test_plugin_centroid"
    family = "baseline"
    libraries = ("numpy",)
    capabilities = Capabilities(task_types=("binary", "multiclass"))
    defaults: dict = {}
    search_space: dict = {}

    def make_preprocessor(self):
        return MatrixPreprocessor(numeric="standard", categorical="onehot")

    def fit(self, X_train, y_train, X_val, y_val):
        self.centroids = np.stack([X_train[y_train == c].mean(axis=0) if np.any(y_train == c)
                                   else np.zeros(X_train.shape[1]) for c in range(self.task.n_classes)])
        self.ctx.record_end(TrialEnd.CONVERGED)

    def predict_raw(self, X):
        distance = np.linalg.norm(np.asarray(X)[:, None, :] - self.centroids[None], axis=2)
        logits = -(distance - distance.min(axis=1, keepdims=True))
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)
