"""TabICL (Qu et al. 2025, "TabICL: A Tabular Foundation Model for In-Context Learning on Large Data", ICML;
TabICLv2, Qu et al. 2026, arXiv:2602.11139) through the `tabicl` package: optional extra `tabicl`.
In-context learning, nothing to tune.

Weights: local files only, never downloaded (bench.adapters.framework.in_context): BENCH_TABICL_WEIGHTS names a
checkpoint file or a folder holding tabicl-classifier*.ckpt / tabicl-regressor*.ckpt (the package's
defaults are tabicl-classifier-v2-20260212.ckpt and tabicl-regressor-v2-20260212.ckpt from
huggingface.co/jingang/TabICL); otherwise the Hugging Face cache is searched for those files. The package
is given that path with allow_auto_download=False, so it loads the file or fails; it never downloads.

Limits, from the package's README (tabicl 2.2, "Scalability" and "What dataset sizes work well?"):
  * 100,000 training rows and 2,000 features: the range of the benchmarks it reports ("excellent
    performance on benchmarks with 300 to 100,000 training samples and up to 2,000 features"); beyond it
    "accuracy may degrade", so larger datasets are skipped rather than scored as TabICL's;
  * no class limit: more classes than the checkpoint's max_classes (10) are handled by the package's
    many-class strategy (support_many_classes=True, its default);
  * on CPU, 1,000 training rows unless BENCH_ALLOW_CPU_LARGE_DATASET=1 (see bench.adapters.framework.in_context).
Beyond a limit, a job is a "skipped" record with the reason.

The validation part is not used: nothing is trained or stopped early, and adding it to the context would
give TabICL more labelled rows than the other models learn from. The frame keeps categoricals as pandas
categories (training vocabulary; missing and unseen levels as NaN): TabICL ordinal-encodes them itself with
a separate category for missing values, and mean-imputes missing numerics.
"""

from __future__ import annotations

from typing import ClassVar, TypedDict

import numpy as np

from bench import settings
from bench.adapters import register_adapter
from bench.adapters.framework.contract import estimator_output
from bench.adapters.framework.in_context import InContextAdapter, InContextCapabilities, LocalWeights, offline_hub

WEIGHTS = LocalWeights(
    model="TabICL", setting=settings.TABICL_WEIGHTS, hf_repo="jingang/TabICL",
    files={"classifier": "tabicl-classifier-v2-20260212.ckpt", "regressor": "tabicl-regressor-v2-20260212.ckpt"},
    patterns={"classifier": "tabicl-classifier*.ckpt", "regressor": "tabicl-regressor*.ckpt"})


class TabICLParams(TypedDict):
    n_estimators: int


@register_adapter
class TabICLAdapter(InContextAdapter[TabICLParams]):
    name = "tabicl"
    libraries = ("tabicl", "torch")
    extra = package = "tabicl"
    local_weights = WEIGHTS
    capabilities = InContextCapabilities(gpu="optional", max_rows=100_000, max_features=2_000)
    # n_estimators: the package's default (TabICLClassifier / TabICLRegressor), written out so records show
    # it; everything else stays the package's default.
    defaults: ClassVar[TabICLParams] = {"n_estimators": 8}
    smoke_params = {"n_estimators": 1}

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        path = self.checkpoint()
        with offline_hub():
            from tabicl import TabICLClassifier, TabICLRegressor

            cls = TabICLClassifier if self.task.is_classification else TabICLRegressor
            self.model = cls(model_path=str(path), allow_auto_download=False, device=self.ctx.device,
                             n_estimators=int(self.params["n_estimators"]), random_state=self.ctx.seed,
                             n_jobs=max(1, int(self.ctx.threads)), verbose=False)
            y = np.asarray(y_train, dtype=int if self.task.is_classification else "float64")
            try:
                self.model.fit(X_train, y)  # loads the checkpoint, then prepares the ensemble views
            except Exception as exc:  # the record names the file: a broken checkpoint is the usual cause
                raise RuntimeError(f"TabICL fit failed with the weights {path}: {type(exc).__name__}: {exc}") from exc
        self.record_context(path, len(X_train))

    def predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        return estimator_output(self.model, X, self.task)

