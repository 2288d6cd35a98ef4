"""Test-only adapters: fault injection (raise, crash, hang, NaN, memory) and spies that record what they see.

Loaded through BENCH_ADAPTER_MODULES (set in conftest), so spawned sweep workers know them too.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import numpy as np

from bench.adapters import Adapter, Capabilities, register_adapter
from bench.adapters.space import FloatParam
from bench.preprocessing import MatrixPreprocessor
from bench.vocabulary import TrialEnd


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
        self.ctx.record_end(TrialEnd.CONVERGED)

    def predict_raw(self, X):
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

    def predict_raw(self, X):
        out = super().predict_raw(X)
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


@register_adapter
class MemoryHogAdapter(_Prior):
    """Allocates (and touches) memory step by step until something stops it; capped so that a missing
    limit shows up as a hang (timeout), not as a machine out of memory."""

    name = "test_memory"
    CAP_BYTES = 3_000_000_000

    def fit(self, X_train, y_train, X_val, y_val):
        chunks = []
        while sum(c.nbytes for c in chunks) < self.CAP_BYTES:
            chunks.append(np.ones(50_000_000 // 8))  # 50 MB, written so it is resident
            time.sleep(0.05)
        time.sleep(3600)


@register_adapter
class DeviceSpyAdapter(_Prior):
    """Records where it ran (GPU pinning, FitContext.device) without touching CUDA, and writes to the
    output descriptors from Python and below Python, as native libraries do."""

    name = "test_device_spy"
    capabilities = Capabilities(gpu="optional")

    def fit(self, X_train, y_train, X_val, y_val):
        self.ctx.info["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        self.ctx.info["device"] = self.ctx.device
        self.ctx.info["omp_threads"] = os.environ.get("OMP_NUM_THREADS")
        self.ctx.info["pid"] = os.getpid()
        print("spy: python-level stdout line", flush=True)
        os.write(2, b"spy: fd-level stderr line\n")
        time.sleep(float(os.environ.get("BENCH_TEST_SPY_SLEEP", "0")))
        super().fit(X_train, y_train, X_val, y_val)


@register_adapter
class MarkerAdapter(_Prior):
    """Appends one line per execution to $BENCH_TEST_MARKER, with a token its record also carries:
    counts how often each job really ran."""

    name = "test_marker"
    search_space = {}

    def fit(self, X_train, y_train, X_val, y_val):
        time.sleep(float(os.environ.get("BENCH_TEST_MARKER_SLEEP", "0.3")))
        super().fit(X_train, y_train, X_val, y_val)
        self.ctx.info["marker_token"] = token = uuid.uuid4().hex
        with open(os.environ["BENCH_TEST_MARKER"], "a") as f:
            f.write(token + "\n")


@register_adapter
class CpuSpyAdapter(DeviceSpyAdapter):
    """The same spy for a model that cannot use a GPU."""

    name = "test_cpu_spy"
    capabilities = Capabilities(gpu="no")


@register_adapter
class FlakyAdapter(_Prior):
    """Fails while the file named by $BENCH_TEST_FLAKY exists (a fault that goes away)."""

    name = "test_flaky"

    def fit(self, X_train, y_train, X_val, y_val):
        if os.path.exists(os.environ.get("BENCH_TEST_FLAKY", "")):
            raise RuntimeError("injected failure while the flag file exists")
        super().fit(X_train, y_train, X_val, y_val)


@register_adapter
class ProcessTreeAdapter(_Prior):
    """Starts a child process (as data loaders and native helpers do), appends "<worker pid> <child pid>"
    to $BENCH_TEST_TREE, then hangs: what stopping a sweep must clean up."""

    name = "test_tree"
    search_space = {}

    def fit(self, X_train, y_train, X_val, y_val):
        import subprocess

        child = subprocess.Popen(["sleep", "600"])
        with open(os.environ["BENCH_TEST_TREE"], "a") as f:
            f.write(f"{os.getpid()} {child.pid}\n")
        time.sleep(3600)


_FITS_IN_PROCESS = [0]  # fits this process has begun (BENCH_TEST_KILL_AT_FIT counts them)


@register_adapter
class ResumeProbe(_Prior):
    """A small deterministic iterative learner for resume tests: full-batch gradient descent of a
    linear model (softmax for classification) on the standardized matrix, EPOCHS epochs, each one's
    validation objective reported to the pruner, the best epoch kept.

    A deterministic stand-in for the tuning clock: a fit with a deadline (a tuning trial under
    --tune-seconds) stops after CUT epochs and says `deadline`, as a learner the clock cut does, while
    a fit without one (the defaults trial, a refit) runs all EPOCHS; so two runs compare number for number.

    BENCH_TEST_KILL_AT_FIT=N: the N-th fit of this process kills with SIGKILL, after 2 epochs, its
    process group when BENCH_TEST_KILL_GROUP=1 (the sweep and its workers: kill -9 of `bench run`), else
    its own process. BENCH_TEST_FIT_SLEEP=s: each fit sleeps s seconds first. Each fit notes the
    seconds left to its deadline (`deadline_in`) in its info."""

    name = "test_resume"
    defaults = {"lr": 0.01, "l2": 1e-3}
    search_space = {"lr": FloatParam(0.01, 1.0, log=True), "l2": FloatParam(1e-4, 1.0, log=True)}
    EPOCHS, CUT = 40, 4

    def fit(self, X_train, y_train, X_val, y_val):
        from bench.metrics import objective_value

        _FITS_IN_PROCESS[0] += 1
        kill_at = int(os.environ.get("BENCH_TEST_KILL_AT_FIT", "0"))
        time.sleep(float(os.environ.get("BENCH_TEST_FIT_SLEEP", "0")))
        self.ctx.info["deadline_in"] = self.ctx.seconds_left()
        X, Xv = np.asarray(X_train, dtype="float64"), np.asarray(X_val, dtype="float64")
        k = self.task.n_classes if self.task.is_classification else 1
        target = np.eye(k)[y_train] if self.task.is_classification else np.asarray(y_train, dtype="float64")[:, None]
        self.w, self.b = np.zeros((X.shape[1], k)), target.mean(axis=0)
        epochs = self.CUT if self.ctx.deadline is not None else self.EPOCHS
        best = None
        for epoch in range(1, epochs + 1):
            if epoch == 3 and _FITS_IN_PROCESS[0] == kill_at:
                os.killpg(os.getpgrp(), signal.SIGKILL) if os.environ.get("BENCH_TEST_KILL_GROUP") == "1" \
                    else os.kill(os.getpid(), signal.SIGKILL)
            grad = self._out(X) - target
            self.w -= self.params["lr"] * (X.T @ grad / len(X) + self.params["l2"] * self.w)
            self.b -= self.params["lr"] * grad.mean(axis=0)
            value = objective_value(self.task.task_type, y_val, self.predict_raw(Xv), self.task.n_classes)
            self.ctx.report_value(epoch, value)
            better = best is None or (value > best[0] if self.task.objective.higher_is_better else value < best[0])
            if better:
                best = (value, epoch, self.w.copy(), self.b.copy())
        _, best_epoch, self.w, self.b = best
        self.ctx.record_end(TrialEnd.DEADLINE if epochs < self.EPOCHS else TrialEnd.MAX_ITERATIONS,
                            iterations=epochs, best=best_epoch, unit="epochs")

    def _out(self, X):
        z = X @ self.w + self.b
        if not self.task.is_classification:
            return z
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict_raw(self, X):
        out = self._out(np.asarray(X, dtype="float64"))
        return out if self.task.is_classification else out[:, 0]
