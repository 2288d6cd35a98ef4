"""TabPFN v2 (Hollmann et al. 2025, "Accurate predictions on small data with a tabular foundation model",
Nature) through the `tabpfn` package: optional extra `tabpfn`. In-context learning, nothing to tune.

Weights. tabpfn downloads its checkpoints from Hugging Face on first use; benchmark machines often have
no internet, and a download must never hang a sweep. So the adapter only ever hands tabpfn a checkpoint
file that exists (tabpfn downloads only when the given path is missing), found in this order:
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench import settings
from bench.adapters import register_adapter
from bench.adapters.framework.contract import Adapter, Capabilities, TrivialFitFallback, expand_proba, missing_extra
from bench.preprocessing import TreeFramePreprocessor
from bench.vocabulary import TrialEnd

WEIGHTS_ENV = settings.TABPFN_WEIGHTS.name
ALLOW_CPU_ENV = settings.TABPFN_ALLOW_CPU_LARGE_DATASET.name  # tabpfn's own setting (tabpfn.settings)
# Preferred file names first: tabpfn's default v2 checkpoints (tabpfn.model_loading.ModelSource
# .get_classifier_v2 / .get_regressor_v2; files of huggingface.co/Prior-Labs/TabPFN-v2-clf and -reg).
PREFERRED = {"classifier": ("tabpfn-v2-classifier-finetuned-zk73skhh.ckpt", "tabpfn-v2-classifier.ckpt"),
             "regressor": ("tabpfn-v2-regressor.ckpt",)}
HF_REPO = {"classifier": "Prior-Labs/TabPFN-v2-clf", "regressor": "Prior-Labs/TabPFN-v2-reg"}


def checkpoint_kind(task_type: str) -> str:
    return "regressor" if task_type == "regression" else "classifier"


def weights_location() -> Path:
    """BENCH_TABPFN_WEIGHTS when set, else tabpfn's own cache folder (see the module docstring)."""
    for value in (settings.TABPFN_WEIGHTS.value(), os.environ.get("TABPFN_MODEL_CACHE_DIR", "")):
        if value.strip():
            return Path(value.strip()).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tabpfn"


def find_weights(kind: str) -> Path | None:
    """The checkpoint file to use for `kind` ("classifier" / "regressor"), or None."""
    place = weights_location()
    if place.is_file():
        other = "regressor" if kind == "classifier" else "classifier"
        return place if kind in place.name or other not in place.name else None
    if place.is_dir():
        for name in PREFERRED[kind]:
            if (place / name).is_file():
                return place / name
        matches = sorted(p for p in place.glob(f"tabpfn-v2-{kind}*.ckpt") if p.is_file())
        if matches:
            return matches[0]
    return None


def _missing_weights_message(kinds: list[str]) -> str:
    source = WEIGHTS_ENV if settings.TABPFN_WEIGHTS.value() else f"tabpfn's cache; {WEIGHTS_ENV} is not set"
    wanted = " and ".join(f"tabpfn-v2-{k}.ckpt (huggingface.co/{HF_REPO[k]})" for k in kinds)
    return (f"no TabPFN {'/'.join(kinds)} weights: looked in {weights_location()} ({source}). They are not "
            f"downloaded here; copy {wanted} into a folder and set {WEIGHTS_ENV} to it (or to the file)")


def _codes(column) -> np.ndarray:
    codes = column.cat.codes.to_numpy(dtype="float32")
    codes[codes < 0] = np.nan  # pandas codes missing as -1
    return codes


@dataclass(frozen=True)
class TabPFNCapabilities(Capabilities):
    max_cpu_rows: int | None = None  # tabpfn's CPU refusal, lifted by TABPFN_ALLOW_CPU_LARGE_DATASET

    def refusal(self, task_type: str, n_rows: int, n_features: int, n_classes: int,
                device: str = "cpu") -> str | None:
        reason = super().refusal(task_type, n_rows, n_features, n_classes, device)
        if reason is None and device != "cuda" and self.max_cpu_rows is not None \
                and n_rows > self.max_cpu_rows and not settings.TABPFN_ALLOW_CPU_LARGE_DATASET.on():
            reason = (f"{n_rows} training rows exceed TabPFN's CPU limit of {self.max_cpu_rows} "
                      f"(no GPU assigned; set {ALLOW_CPU_ENV}=1 to run on CPU anyway, slowly)")
        return reason


@register_adapter
class TabPFNAdapter(TrivialFitFallback, Adapter):
    name = "tabpfn"
    family = "neural"
    libraries = ("tabpfn", "torch")
    extra = "tabpfn"
    capabilities = TabPFNCapabilities(gpu="optional", max_rows=10_000, max_features=500, max_classes=10,
                                      max_cpu_rows=1_000)
    # n_estimators: tabpfn's DEFAULT_N_ESTIMATORS (tabpfn/preprocessing/ensemble.py), what "auto" means
    # for a v2 checkpoint, written out so records show it. The rest stays tabpfn's default.
    defaults = {"n_estimators": 8}
    search_space = {}  # used as published: no tuning
    smoke_params = {"n_estimators": 1}

    @classmethod
    def unavailable_reason(cls, task_type: str | None = None) -> str | None:
        missing = missing_extra("tabpfn", cls.extra)
        if missing:
            return missing
        kinds = [checkpoint_kind(task_type)] if task_type else ["classifier", "regressor"]
        if any(find_weights(kind) is not None for kind in kinds):
            return None
        return _missing_weights_message(kinds)

    def make_preprocessor(self):
        return TreeFramePreprocessor()

    def _matrix(self, X) -> np.ndarray:
        """Numerics as they are, categoricals as their integer codes with NaN for missing: tabpfn is
        told which columns are categorical and handles missing values itself."""
        columns = [_codes(X[c]) if c in self._categorical else X[c].to_numpy(dtype="float32") for c in X.columns]
        return np.column_stack(columns).astype("float32")

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        import torch

        kind = checkpoint_kind(self.task.task_type)
        path = find_weights(kind)
        if path is None:  # checked before the job started; gone since
            raise RuntimeError(_missing_weights_message([kind]))
        self._categorical = {c for c in X_train.columns if isinstance(X_train[c].dtype, pd.CategoricalDtype)}
        cat_indices = [i for i, c in enumerate(X_train.columns) if c in self._categorical]
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
        self.model.fit(self._matrix(X_train), y)
        # In-context learning: nothing iterates, so there is nothing a deadline could cut.
        self.ctx.record_end(TrialEnd.CONVERGED, weights=str(path), n_context_rows=len(X_train))

    def predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        matrix = self._matrix(X)
        if not self.task.is_classification:
            return np.asarray(self.model.predict(matrix), dtype="float64").ravel()
        proba = self.model.predict_proba(matrix)
        return expand_proba(proba, np.asarray(self.model.classes_, dtype=int), self.task.n_classes)
