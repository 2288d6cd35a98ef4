"""Small generated data with the warts of real tables, for bench.testing.check_adapter.

Every task type gets the same columns: numerics (one with missing values), a categorical with missing
values and a level that only the test part has, a constant column, an all-missing numeric and an
all-missing categorical, and column names XGBoost and LightGBM reject ('[', ':', ',', '<'). Multiclass
has a class that only the validation and test parts have. The target is learnable from the features.
Rows are laid out train | val | test, so the split is fixed and easy to reason about.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.datasets import Dataset, make_dataset, save_dataset
from bench.execution.jobs import Job
from bench.tuning.budget import Budget

N_TRAIN, N_VAL, N_TEST = 160, 60, 60
NUMERIC = ["x[0]", "x:1", "x,2", "x<3"]
UNSEEN_LEVEL = "only-in-test"
ABSENT_CLASS = "z-not-in-training"  # sorts last: its class code is n_classes - 1


class InMemoryStudyJob(Job):
    """A job whose Optuna study lives in memory. Everything else is the harness's own path; SQLite
    persistence is tested with the tuner (tests/test_tuning.py), and its fsyncs would dominate a check."""

    def storage_url(self) -> None:
        return None


@dataclass
class CheckData:
    dataset: Dataset
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    _saved: tuple | None = None

    @property
    def task_type(self) -> str:
        return self.dataset.task_type

    @property
    def n_classes(self) -> int:
        return self.dataset.n_classes

    @property
    def n_features(self) -> int:
        return self.dataset.n_features

    @property
    def n_train(self) -> int:
        return len(self.train)

    def _X(self, rows):
        return self.dataset.X.iloc[rows].reset_index(drop=True)

    X_train = property(lambda self: self._X(self.train))
    X_val = property(lambda self: self._X(self.val))
    X_test = property(lambda self: self._X(self.test))
    y_train = property(lambda self: self.dataset.y[self.train])
    y_val = property(lambda self: self.dataset.y[self.val])
    y_test = property(lambda self: self.dataset.y[self.test])

    def job(self, adapter_cls, tmp: Path, trials: int, seed: int, device: str):
        """A bench.execution.jobs.Job over this data (dataset and frozen split written under tmp once)."""
        from bench.splits import Split, save_frozen, split_hash

        ds = self.dataset
        if self._saved is None:
            data_dir = save_dataset(ds, tmp / "data" / ds.name)
            split = Split(0, 0, self.train, self.val, self.test, split_hash(self.train, self.val, self.test),
                          "check")
            split_file = tmp / "splits" / f"{ds.name}.npz"
            save_frozen(split_file, [split])
            self._saved = (data_dir, split_file, split.hash)
        data_dir, split_file, hash_ = self._saved
        run_dir = tempfile.mkdtemp(prefix="run-", dir=tmp)  # a fresh Optuna study for every job
        return InMemoryStudyJob(run_dir=run_dir, suite="check_adapter", dataset=ds.name, dataset_dir=str(data_dir),
                   dataset_hash=ds.content_hash, split_file=str(split_file), split_index=0, repeat=0, fold=0,
                   split_hash=hash_, model=adapter_cls.name, budget=Budget(trials), seed=seed,
                   threads=1, device=device, tunable=bool(adapter_cls.search_space_for(ds.task_type)))


def make_check_data(task_type: str, seed: int = 0) -> CheckData:
    n = N_TRAIN + N_VAL + N_TEST
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({name: rng.normal(size=n) for name in NUMERIC})
    X.loc[rng.random(n) < 0.15, NUMERIC[0]] = np.nan
    cat = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    cat[rng.random(n) < 0.15] = None
    test = np.arange(N_TRAIN + N_VAL, n)
    cat[test[:8]] = UNSEEN_LEVEL
    X["cat"] = pd.Categorical(cat)
    X["constant"] = 1.0
    X["all missing"] = np.nan
    X["all missing cat"] = pd.Categorical([None] * n, categories=["never"])
    signal = (X["x:1"] + 0.7 * X["x,2"] - 0.5 * X["x<3"] + 0.5 * X[NUMERIC[0]].fillna(0.0)
              + (X["cat"] == "a").astype(float))
    noise = 0.3 * rng.normal(size=n)
    if task_type == "regression":
        y = pd.Series(100.0 + 20.0 * (signal + noise))  # off-scale on purpose: adapters must cope
    elif task_type == "binary":
        y = pd.Series(np.where(signal + noise > np.median(signal), "yes", "no"))
    elif task_type == "multiclass":
        labels = np.asarray(pd.qcut(signal + noise, 3, labels=["q1", "q2", "q3"]), dtype=object)
        val_and_test = np.arange(N_TRAIN, n)
        labels[rng.choice(val_and_test, 8, replace=False)] = ABSENT_CLASS
        y = pd.Series(labels)
    else:
        raise ValueError(f"unknown task type '{task_type}'")
    ds = make_dataset(f"check-{task_type}", X, y, task_type=task_type,
                      source={"generated_by": "bench.testing.data", "seed": seed})
    return CheckData(ds, np.arange(N_TRAIN), np.arange(N_TRAIN, N_TRAIN + N_VAL), test)
