"""Test-only adapters: fault injection (raise, crash, hang, NaN) and a spy that records what it sees.

Loaded through BENCH_ADAPTER_MODULES (set in conftest), so spawned sweep workers know them too.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from bench.adapters import Adapter, Capabilities, register_adapter
from bench.adapters.space import FloatParam
from bench.preprocessing import MatrixPreprocessor


class _Prior(Adapter):
    """Predicts the training prior / mean; the faulty subclasses break it on purpose."""

    family = "baseline"
    defaults = {"shrink": 0.5}
    search_space = {"shrink": FloatParam(0.0, 1.0)}

    def make_preprocessor(self):
        return MatrixPreprocessor()

    def fit(self, X_train, y_train, X_val, y_val):
        if self.task.is_classification:
            counts = np.bincount(y_train, minlength=self.task.n_classes) + self.params["shrink"]
            self.value = counts / counts.sum()
        else:
            self.value = float(np.mean(y_train))

    def _predict_raw(self, X):
        n = len(X)
        return np.tile(self.value, (n, 1)) if self.task.is_classification else np.full(n, self.value)


@register_adapter
class RaisingAdapter(_Prior):
    name = "test_raise"

    def fit(self, X_train, y_train, X_val, y_val):
        raise RuntimeError("injected failure in fit")


@register_adapter
class CrashingAdapter(_Prior):
    name = "test_crash"

    def fit(self, X_train, y_train, X_val, y_val):
        os.kill(os.getpid(), signal.SIGKILL)  # like a segfault in native code: no Python cleanup


@register_adapter
class HangingAdapter(_Prior):
    name = "test_hang"

    def fit(self, X_train, y_train, X_val, y_val):
        time.sleep(3600)


@register_adapter
class NanAdapter(_Prior):
    name = "test_nan"

    def _predict_raw(self, X):
        out = super()._predict_raw(X)
        return np.full_like(out, np.nan, dtype="float64")


@register_adapter
class PriorAdapter(_Prior):
    name = "test_prior"


@register_adapter
class RegressionOnlyAdapter(_Prior):
    name = "test_regression_only"
    capabilities = Capabilities(task_types=("regression",), max_rows=10_000)


SEEN: dict[str, list] = {"fit_rows": [], "pre_rows": []}


class _RecordingPreprocessor(MatrixPreprocessor):
    def fit(self, X, y=None):
        SEEN["pre_rows"].append(set(X["row_id"].astype(int)))
        return super().fit(X, y)


@register_adapter
class SpyAdapter(_Prior):
    """Records which rows (by a `row_id` feature) preprocessing and fit saw."""

    name = "test_spy"

    def make_preprocessor(self):
        return _RecordingPreprocessor(numeric="none")

    def fit(self, X_train, y_train, X_val, y_val):
        SEEN["fit_rows"].append((len(X_train), len(X_val)))
        super().fit(X_train, y_train, X_val, y_val)
