"""TabDPT (Ma et al. 2024, "TabDPT: Scaling Tabular Foundation Models on Real Data", arXiv:2410.18164) through
the `tabdpt` package: optional extra `tabdpt`. In-context learning, nothing to tune.

Weights: local files only, never downloaded (bench.adapters.framework.in_context): BENCH_TABDPT_WEIGHTS names the
checkpoint file or a folder holding tabdpt*.safetensors (the package's is tabdpt1_3.safetensors from
huggingface.co/Layer6/TabDPT; one file serves classification and regression); otherwise the Hugging Face
cache is searched for it. The package is always given model_weight_path, so it never downloads.

Limits. TabDPT has no hard limit the harness must enforce: more features than the checkpoint's
max_num_features (100) are reduced by PCA and more classes than its max_num_classes (10) are predicted digit
by digit (tabdpt.estimator / classifier, feature_reduction="pca" and _predict_large_cls, the package's
defaults), and every training row is the context (context_size=None, the package's default). On CPU the
training rows are bounded at 1,000 unless BENCH_ALLOW_CPU_LARGE_DATASET=1 (bench.adapters.framework.in_context); beyond
it a job is a "skipped" record with the reason.

Settings: the package's defaults (n_ensembles=8 for prediction, standard normalizer, subsample context
reduction), except compile=False: torch.compile would recompile the network for every fit, which costs
more than a prediction on benchmark-sized data (and the package's README lists compile errors as a known
problem); it changes speed, not the predictions' definition. Labels are passed as 0..k-1 over the classes
in the training part (TabDPT reads a label as the class index and counts the distinct labels), and the
probabilities are spread back over all classes of the task.

The validation part is not used: nothing is trained or stopped early, and adding it to the context would
give TabDPT more labelled rows than the other models learn from. Input is a float matrix: numerics as they
are, categoricals as their codes (TabDPT imputes missing values with the training mean and standardizes).
"""

from __future__ import annotations

from typing import ClassVar, TypedDict

import numpy as np

from bench import settings
from bench.adapters import register_adapter
from bench.adapters.framework.contract import expand_proba
from bench.adapters.framework.in_context import (
    InContextAdapter,
    InContextCapabilities,
    LocalWeights,
    code_matrix,
    encode_labels,
    offline_hub,
)

WEIGHTS = LocalWeights(
    model="TabDPT", setting=settings.TABDPT_WEIGHTS, hf_repo="Layer6/TabDPT",
    files={"classifier": "tabdpt1_3.safetensors", "regressor": "tabdpt1_3.safetensors"},
    patterns={"classifier": "tabdpt*.safetensors", "regressor": "tabdpt*.safetensors"})


class TabDPTParams(TypedDict):
    n_ensembles: int


@register_adapter
class TabDPTAdapter(InContextAdapter[TabDPTParams]):
    name = "tabdpt"
    libraries = ("tabdpt", "torch")
    extra = package = "tabdpt"
    local_weights = WEIGHTS
    capabilities = InContextCapabilities(gpu="optional")
    # n_ensembles: the package's default for predict / predict_proba, written out so records show it.
    defaults: ClassVar[TabDPTParams] = {"n_ensembles": 8}
    smoke_params = {"n_ensembles": 1}

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        import torch

        path = self.checkpoint()
        torch.set_num_threads(max(1, int(self.ctx.threads)))
        with offline_hub():
            from tabdpt import TabDPTClassifier, TabDPTRegressor

            cls = TabDPTClassifier if self.task.is_classification else TabDPTRegressor
            try:  # the constructor reads the checkpoint
                self.model = cls(model_weight_path=str(path), device=self.ctx.device, compile=False, verbose=False)
            except Exception as exc:
                raise RuntimeError(f"TabDPT could not load the weights {path}: {type(exc).__name__}: {exc}") from exc
        if self.task.is_classification:
            self._classes, y = encode_labels(y_train)
        else:
            y = np.asarray(y_train, dtype="float64")
        self.model.fit(code_matrix(X_train), y)
        self.record_context(path, len(X_train))

    def predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        matrix, n = code_matrix(X), int(self.params["n_ensembles"])
        if not self.task.is_classification:
            return np.asarray(self.model.predict(matrix, n_ensembles=n, seed=self.ctx.seed), dtype="float64").ravel()
        proba = self.model.ensemble_predict_proba(matrix, n_ensembles=n, seed=self.ctx.seed)
        return expand_proba(proba, self._classes, self.task.n_classes)
