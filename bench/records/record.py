"""The one builder of records: the header every record of a job carries, and the constructors of the four
kinds of record (ok, failed, not run, cross-model). Every key a constructor writes is a field of
bench.records.schema.FIELDS (an undeclared key is a bug, refused here), in FIELDS' order.

    head = Header(job_id=..., ..., meta=dataset.summary()).fields(variant)
    not_run(head, Status.SKIPPED, reason) | failed(head, Status.FAILED, "ValueError", message)
    ok(head, objective, result, JobTuning(...).fields(), Cost(...).fields())
    cross_model_head(member_record, job_id, job_key, split)   # then ok / failed / not_run
"""

from __future__ import annotations

import platform
import socket
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import numpy as np

import bench
from bench.records.schema import FIELDS, NAMES, SCHEMA_VERSION, summed_trial_counts, trial_counts
from bench.vocabulary import CROSS_MODEL, Status, Variant

Record = dict[str, Any]  # one record, as written to its JSON file (keys: bench.records.schema.FIELDS)
CORE_LIBRARIES = ("numpy", "pandas", "scikit-learn", "optuna", "pyarrow")
_ORDER = {f.name: i for i, f in enumerate(FIELDS)}


def library_versions(names) -> dict[str, str]:
    """python, bench and each named library's installed version ("not installed" when it is not)."""
    return dict(_library_versions(tuple(names)))


@lru_cache(maxsize=None)  # installed versions do not change inside a worker; each lookup costs ~1 ms
def _library_versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = {"python": platform.python_version(), "bench": bench.__version__}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return tuple(out.items())


@dataclass(frozen=True)
class Header:
    """What every record of one job says, whatever its variant and status: which job (and so which
    data, split, model and settings), under which budget, where it ran, and what is known about the data
    (`meta`: Dataset.summary() and the model's family at planning time; the split's part sizes, inner
    folds and the data's source once the job has loaded them)."""

    job_id: str
    suite: str
    dataset: str
    dataset_hash: str
    split: dict  # index, repeat, fold, hash, origin
    model: str
    seed: int
    job_key: str
    budget: dict  # bench.tuning.budget.Budget.record()
    device: str = "cpu"
    threads: int = 1
    libraries: tuple[str, ...] = ()  # the model's libraries, whose versions the records name
    meta: dict = field(default_factory=dict)

    def knowing(self, libraries: tuple[str, ...] = (), **meta) -> Header:
        """This header with the model's libraries and more of what is known about the data."""
        return replace(self, libraries=tuple(libraries), meta={**self.meta, **meta})

    def fields(self, variant: str) -> Record:
        return {"schema_version": SCHEMA_VERSION, "job_id": self.job_id, "suite": self.suite,
                "dataset": self.dataset, "dataset_hash": self.dataset_hash, "split": self.split,
                "model": self.model, "variant": variant, "seed": self.seed, "job_key": self.job_key,
                "budget": self.budget, "device": self.device, "threads": self.threads, "host": socket.gethostname(),
                "versions": library_versions(CORE_LIBRARIES + self.libraries), "finished_at": _now(), **self.meta}


@dataclass(frozen=True)
class JobTuning:
    """What a job's tuning says in each of its records (ok or failed variants alike)."""

    objective: str
    direction: str
    trials: list[dict]  # bench.tuning.trials.summarize
    tuning_seconds: float
    job_seconds: float
    model_seed: int
    resumes: int = 0
    predictions: dict | None = None  # the job's predictions file, when it kept one

    def fields(self) -> Record:
        return {"objective": self.objective, "direction": self.direction, "trials": self.trials,
                "trial_counts": trial_counts(self.trials), "tuning_seconds": self.tuning_seconds,
                "job_seconds": self.job_seconds, "model_seed": self.model_seed, "resumes": self.resumes,
                **({"predictions": self.predictions} if self.predictions is not None else {})}


@dataclass(frozen=True)
class Cost:
    """What a variant cost and whether tuning really ran (budget honesty)."""

    only_defaults: bool | None  # None for the default variant (no tuning was declared for it)
    cpu_seconds: float
    gpu_seconds: float

    def fields(self) -> Record:
        return {"only_defaults": self.only_defaults, "device_seconds": {"cpu": self.cpu_seconds,
                                                                        "gpu": self.gpu_seconds}}


class Result(Protocol):
    """A variant's numbers (bench.tuning.variants.VariantResult and Numbers have them)."""

    params: dict
    trial_number: int | None
    val_score: float
    test_metrics: dict
    by_seed: list[dict]  # per model seed: {"seed", "fit_seconds", "predict_seconds", metrics...} or {"seed", "error"}
    fit_seconds: float
    predict_seconds: float
    fit_info: dict | None
    ensemble: dict | None
    test_source: str | None


@dataclass
class Numbers:
    """A variant's numbers where no tuning made them (the cross-model ensemble)."""

    params: dict
    trial_number: int | None
    val_score: float
    test_metrics: dict
    by_seed: list[dict]
    fit_seconds: float
    predict_seconds: float
    fit_info: dict | None = None
    ensemble: dict | None = None
    test_source: str | None = None


def ok(head: Record, objective: str, result: Result, *parts: Record) -> Record:
    """An ok record: `head` (Header.fields or cross_model_head), `parts` (JobTuning.fields(), Cost.fields(),
    ...) and the variant's numbers; its test score is the `objective`'s mean over the model seeds that
    finished, its std theirs."""
    seed_scores = [s[objective] for s in result.by_seed if "error" not in s]
    return _assemble(head, *parts, {
        "status": Status.OK, "params": result.params, "trial_number": result.trial_number,
        "val_score": result.val_score, "test": result.test_metrics, "test_score": result.test_metrics[objective],
        "test_score_std": float(np.std(seed_scores, ddof=1)) if len(seed_scores) > 1 else None,
        "test_by_seed": result.by_seed, "fit_seconds": result.fit_seconds, "predict_seconds": result.predict_seconds,
        **({"fit_info": result.fit_info} if result.fit_info is not None else {}),
        **({"ensemble": result.ensemble} if result.ensemble else {}),
        **({"test_source": result.test_source} if result.test_source else {})})


def failed(head: Record, status: str, error_type: str, message: str, *parts: Record) -> Record:
    """A failure record (failed, timeout, crashed, out_of_memory): the error's type and message."""
    return _assemble(head, *parts, {"status": status, "error": {"type": error_type, "message": message}})


def not_run(head: Record, status: str, reason: str, *parts: Record) -> Record:
    """A record of a variant that was not run (skipped, unavailable), with the reason."""
    return _assemble(head, *parts, {"status": status, "reason": reason})


# What the cross-model record copies from its members' records: the dataset, split and budget.
_SHARED = ("suite", "dataset", "dataset_hash", "split", "seed", "budget", "task_type", "n_rows", "n_features",
           "n_classes", "n_categorical", "n_train", "n_val", "n_test", "inner_folds", "train_size", "source",
           "objective", "direction", "model_seed")
CROSS_MODEL_FAMILY = "ensemble"


def cross_model_head(member: Record, job_id: str, job_key: str, dataset: str, dataset_hash: str,
                     split: dict) -> Record:
    """The header of a cross-model ensemble's record (bench.execution.ensembles): the dataset, split and
    budget of a member record (`member`, {} when none), its own job id and key; `split` when the member
    has none."""
    return {"schema_version": SCHEMA_VERSION, "split": split, **{k: member[k] for k in _SHARED if k in member},
            "job_id": job_id, "model": CROSS_MODEL, "variant": Variant.ENSEMBLE.value, "family": CROSS_MODEL_FAMILY,
            "job_key": job_key, "dataset": dataset, "dataset_hash": dataset_hash, "device": "cpu", "threads": 1,
            "host": socket.gethostname(), "versions": library_versions(CORE_LIBRARIES), "finished_at": _now()}


def cross_model_counts(member_counts: list[dict]) -> Record:
    """The cross-model record's trial counts: its members' summed."""
    return {"trial_counts": summed_trial_counts(member_counts)}


def _assemble(*parts: Record) -> Record:
    record: Record = {}
    for part in parts:
        record.update(part)
    unknown = set(record) - NAMES
    if unknown:
        raise ValueError(f"record fields {sorted(unknown)} are not declared in bench.records.schema.FIELDS")
    return dict(sorted(record.items(), key=lambda item: _ORDER[item[0]]))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
