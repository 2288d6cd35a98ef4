"""Shared fixtures. Every test session gets its own bench cache so nothing touches ~/.cache."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_SESSION_CACHE = tempfile.mkdtemp(prefix="bench-test-cache-")
atexit.register(shutil.rmtree, _SESSION_CACHE, True)
os.environ["BENCH_CACHE_DIR"] = _SESSION_CACHE
# Test-only adapters (fault injection, spies) are importable by spawned worker processes too.
os.environ["BENCH_ADAPTER_MODULES"] = "tests.fault_adapters"
os.environ["COLUMNS"] = "200"  # rich tables: no wrapping of names in captured output
os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data_or_skip() -> Path:
    if not (SHARED_DATA / "suites" / "offline-20" / "manifest.json").exists():
        pytest.skip(f"shared data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    return shared_data_or_skip()


def synthetic_frame(task_type: str, n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric + categorical (with NaN) features and a learnable target."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(4)})
    X["cat"] = pd.Categorical(rng.choice(["a", "b", "c", None], size=n))
    signal = X.x0 + 0.5 * X.x1 + (X.cat == "a").astype(float)
    if task_type == "regression":
        y = pd.Series(signal + 0.1 * rng.normal(size=n))
    elif task_type == "binary":
        y = pd.Series(np.where(signal > 0.3, "yes", "no")).astype("category")
    else:
        y = pd.Series(pd.cut(signal, [-np.inf, -0.5, 0.5, np.inf], labels=["lo", "mid", "hi"]))
    return X, y


@pytest.fixture
def make_ds():
    from bench.datasets import make_dataset

    def _make(task_type: str = "binary", n: int = 300, seed: int = 0, name: str | None = None):
        X, y = synthetic_frame(task_type, n, seed)
        return make_dataset(name or f"synth-{task_type}", X, y, task_type=task_type)

    return _make
