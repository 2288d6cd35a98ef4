"""The fitted model `bench explain` explains: a finished job's chosen configuration, refit from the run folder.

The harness keeps records and predictions, not models. So the configuration a record chose (its `params`)
is fit again exactly as its trial was: the run folder's materialized dataset and frozen split (checked
against the plan's hashes), the same holdout or first inner fold (bench.tuning.crossfit.make_folds with the
job's seed), the preprocessing fit on that fold's training rows, the record's model seed. Deterministic models
give the same model; the refit's test score is put next to the recorded one so any difference is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.adapters import Adapter, FitContext, TaskInfo, get_adapter
from bench.datasets import Dataset, load_cached_dataset
from bench.errors import BenchError
from bench.metrics import score_predictions
from bench.records.store import ResultStore
from bench.seeding import job_seed
from bench.splits import Split, load_frozen
from bench.tuning.crossfit import Parts, make_folds
from bench.vocabulary import Status, Variant

# The variants a record's own configuration can be refit from, in order of preference (an ensemble is a
# weighted mean of many trials' models, not one configuration).
EXPLAINABLE = (Variant.TUNED.value, Variant.DEFAULT.value)


@dataclass
class Refit:
    """A record's configuration fit again on its job's training rows, with its preprocessor."""

    record: dict
    adapter: Adapter
    preprocessor: Any
    task: TaskInfo
    split: Split
    X_train: pd.DataFrame  # the fitted fold's training rows (original columns)
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    inner_folds: int
    refit_score: float

    @property
    def objective(self) -> str:
        return self.task.objective.metric

    def note(self) -> str:
        """What the output says about where the model came from."""
        fold = "" if self.inner_folds == 1 else f" (fold 1 of its {self.inner_folds} inner folds)"
        return (f"The run keeps no models: the {self.record['variant']} configuration of {self.record['job_id']} "
                f"(trial {self.record.get('trial_number')}) was refit{fold} with its model seed; test "
                f"{self.objective} {self.refit_score:.4f} refit vs {float(self.record['test_score']):.4f} recorded.")


def find_record(store: ResultStore, dataset: str, model: str, split: int | None = None) -> dict:
    """The ok record to explain: the tuned variant (the default one for jobs that did not tune) of the
    model on the dataset, on split `split` (the plan's split index) or the first split it finished."""
    jobs = store.plan().get("jobs") or {}
    if not jobs:
        raise BenchError(f"{store.run_dir} has no plan.json: not a run folder of this version")
    mine = sorted(((entry.get("split_index", 0), job_id) for job_id, entry in jobs.items()
                   if entry.get("dataset") == dataset and entry.get("model") == model))
    if not mine:
        datasets = sorted({e.get("dataset") for e in jobs.values()})
        models = sorted({e.get("model") for e in jobs.values()})
        raise BenchError(f"the run has no job of --model {model!r} on --dataset {dataset!r} "
                         f"(datasets: {', '.join(map(str, datasets))}; models: {', '.join(map(str, models))})")
    for index, job_id in mine:
        if split is not None and index != split:
            continue
        for variant in EXPLAINABLE:
            record = store.read(job_id, variant)
            if record is not None and record.get("status") == Status.OK and record.get("params") is not None:
                return record
    where = f" on --split {split}" if split is not None else ""
    raise BenchError(f"no ok tuned or default record of {model} on {dataset}{where}: nothing to explain "
                     f"(splits planned: {', '.join(str(i) for i, _ in mine)})")


def _data(store: ResultStore, record: dict) -> tuple[Dataset, Split]:
    """The job's dataset and split from the run folder, checked against the plan's hashes."""
    entry = (store.plan().get("jobs") or {}).get(record["job_id"]) or {}
    ds = load_cached_dataset(store.run_dir / "data" / record["dataset"])
    if ds is None or ds.content_hash != record.get("dataset_hash"):
        raise BenchError(f"the run folder's data/{record['dataset']} is missing or changed since the job ran")
    splits = load_frozen(store.run_dir / str(entry.get("split_file")))
    index = record["split"]["index"]
    if not splits or index >= len(splits) or splits[index].hash != record["split"].get("hash"):
        raise BenchError(f"the frozen split {entry.get('split_file')}[{index}] is missing or changed")
    return ds, splits[index]


def refit(run_dir: Path, dataset: str, model: str, split: int | None = None, threads: int = 1) -> Refit:
    """The chosen configuration of `model` on `dataset`, fit again as its trial was."""
    store = ResultStore(run_dir)
    record = find_record(store, dataset, model, split)
    ds, sp = _data(store, record)
    take = ds.X.iloc
    parts = Parts(take[sp.train].reset_index(drop=True), ds.y[sp.train], take[sp.val].reset_index(drop=True),
                  ds.y[sp.val], take[sp.test].reset_index(drop=True), ds.y[sp.test])
    task = TaskInfo(ds.task_type, ds.n_classes)
    seed = job_seed(int(record.get("seed", 0)), int(record["split"]["index"]))
    inner = int((record.get("budget") or {}).get("inner_folds") or 1)
    fold = make_folds(parts, task, inner, seed)[0][0]
    adapter = get_adapter(model)(task, record["params"], FitContext(seed=int(record.get("model_seed", seed)),
                                                                    threads=threads))
    pre = adapter.make_preprocessor()
    pre.fit(fold.X_train)
    adapter.fit(pre.transform(fold.X_train), fold.y_train, pre.transform(fold.X_val), fold.y_val)
    pred = adapter.predictions(pre.transform(parts.X_test))
    score = score_predictions(task.task_type, parts.y_test, pred, task.n_classes)[task.objective.metric]
    return Refit(record, adapter, pre, task, sp, fold.X_train, np.asarray(fold.y_train), parts.X_test,
                 np.asarray(parts.y_test), inner, float(score))
