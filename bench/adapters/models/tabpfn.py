"""TabPFN v2 (Hollmann et al. 2025, "Accurate predictions on small data with a tabular foundation model",
Nature) through the `tabpfn` package: optional extra `tabpfn`. In-context learning, nothing to tune.

Weights (the shared LocalWeights of bench.adapters.framework.in_context). tabpfn downloads its checkpoints
from Hugging Face on first use; benchmark machines often have no internet, and a download must never hang a
sweep. So the adapter only ever hands tabpfn a checkpoint file that exists (tabpfn downloads only when
the given path is missing), found in this order:
  1. BENCH_TABPFN_WEIGHTS: a checkpoint file, or a folder holding tabpfn-v2-classifier*.ckpt and/or
     tabpfn-v2-regressor*.ckpt (a file is used for the task its name says, or for both if it says neither);
  2. otherwise tabpfn's own cache folder (TABPFN_MODEL_CACHE_DIR, else $XDG_CACHE_HOME/tabpfn, else
     ~/.cache/tabpfn: tabpfn.model_loading.get_cache_dir on Linux), where a connected machine keeps them.
Without a checkpoint for the task type, jobs become "unavailable" records saying where we looked. A file
that exists but does not load becomes a "failed" record naming the file.

Limits (documented for TabPFN v2; checkpoints of later versions may take more, but these are enforced so
that results do not depend on which file happens to be configured):
  * 10,000 training rows and 500 features: Hollmann et al. 2025 ("datasets with up to 10,000 samples and
    500 features"), tabpfn's InferenceConfig for v2 (MAX_NUMBER_OF_SAMPLES / MAX_NUMBER_OF_FEATURES);
  * 10 classes: the same config's MAX_NUMBER_OF_CLASSES;
  * on CPU, 1,000 training rows: tabpfn refuses more by default (inference_config.cpu_sample_limit for v2)
    unless TABPFN_ALLOW_CPU_LARGE_DATASET is set, which this adapter honours the same way.
Beyond a limit, a job is a "skipped" record with the reason.

The validation part is not used: there is no training to stop early, and adding it to the context would
give TabPFN more labelled rows than the other models learn from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, TypedDict

import numpy as np
import pandas as pd

from bench import settings
from bench.adapters import register_adapter
from bench.adapters.framework.contract import estimator_output
from bench.adapters.framework.in_context import (
    InContextAdapter,
    InContextCapabilities,
    LocalWeights,
    PackageCache,
    code_matrix,
)

WEIGHTS_ENV = settings.TABPFN_WEIGHTS.name
ALLOW_CPU_ENV = settings.TABPFN_ALLOW_CPU_LARGE_DATASET.name  # tabpfn's own setting (tabpfn.settings)


def tabpfn_cache_folder() -> Path:
    """tabpfn's own cache folder (tabpfn.model_loading.get_cache_dir on Linux): TABPFN_MODEL_CACHE_DIR, else
    $XDG_CACHE_HOME/tabpfn, else ~/.cache/tabpfn."""
    value = os.environ.get("TABPFN_MODEL_CACHE_DIR", "").strip()
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tabpfn"


# tabpfn's default v2 checkpoints (tabpfn.model_loading.ModelSource.get_classifier_v2 / .get_regressor_v2;
# files of huggingface.co/Prior-Labs/TabPFN-v2-clf and -reg), the fine-tuned classifier preferred.
WEIGHTS = LocalWeights(
    model="TabPFN", setting=settings.TABPFN_WEIGHTS, hf_repo="Prior-Labs/TabPFN-v2-clf",
    hf_repos={"regressor": "Prior-Labs/TabPFN-v2-reg"},
    files={"classifier": "tabpfn-v2-classifier.ckpt", "regressor": "tabpfn-v2-regressor.ckpt"},
    preferred={"classifier": ("tabpfn-v2-classifier-finetuned-zk73skhh.ckpt",)},
    patterns={"classifier": "tabpfn-v2-classifier*.ckpt", "regressor": "tabpfn-v2-regressor*.ckpt"},
    package_cache=PackageCache("tabpfn's cache", tabpfn_cache_folder))


class TabPFNParams(TypedDict):
    n_estimators: int


@register_adapter
class TabPFNAdapter(InContextAdapter[TabPFNParams]):
    name = "tabpfn"
    libraries = ("tabpfn", "torch")
    extra = package = "tabpfn"
    local_weights = WEIGHTS
    capabilities = InContextCapabilities(gpu="optional", max_rows=10_000, max_features=500, max_classes=10,
                                         max_cpu_rows=1_000, cpu_switch=settings.TABPFN_ALLOW_CPU_LARGE_DATASET,
                                         cpu_bound="TabPFN's CPU limit of {rows}")
    # n_estimators: tabpfn's DEFAULT_N_ESTIMATORS (tabpfn/preprocessing/ensemble.py), what "auto" means
    # for a v2 checkpoint, written out so records show it. The rest stays tabpfn's default.
    defaults: ClassVar[TabPFNParams] = {"n_estimators": 8}
    smoke_params = {"n_estimators": 1}

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        import torch

        path = self.checkpoint()
        # tabpfn is told which columns are categorical (code_matrix gives their codes) and handles missing
        # values itself.
        cat_indices = [i for i, c in enumerate(X_train.columns) if isinstance(X_train[c].dtype, pd.CategoricalDtype)]
        from tabpfn import TabPFNClassifier, TabPFNRegressor

        cls = TabPFNClassifier if self.task.is_classification else TabPFNRegressor
        self.model = cls(model_path=str(path), device=self.ctx.device, random_state=self.ctx.seed,
                         n_estimators=int(self.params["n_estimators"]),
                         categorical_features_indices=cat_indices or None)
        torch.set_num_threads(max(1, int(self.ctx.threads)))
        try:
            if hasattr(self.model, "get_inference_config"):  # loads the checkpoint (tabpfn >= 2.2)
                self.model.get_inference_config()
        except Exception as exc:
            raise RuntimeError(f"TabPFN could not load the weights {path}: {type(exc).__name__}: {exc}") from exc
        y = np.asarray(y_train, dtype=int if self.task.is_classification else "float64")
        self.model.fit(code_matrix(X_train), y)
        self.record_context(path, len(X_train))

    def predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        return estimator_output(self.model, code_matrix(X), self.task)
