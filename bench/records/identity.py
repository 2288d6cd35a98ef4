"""What identifies the work of a run folder and of each job in it: one definition, read by both run.json
(bench.records.store.ResultStore.check_config) and every job key (bench.execution.jobs.Job.key).

A run folder holds one sweep's SETTINGS (run.json, with the suite's protocol and the datasets' content
hashes). A later sweep into the folder with another value is refused: records of both would mix.

A job's key (`job_key` in every record, in its study's name and its predictions file) is a hash of what
the job reads (JOB_INPUTS: the data's and the split's content, the model) and of the settings marked
`keyed`. A record or study whose key differs is stale: never resumed, never counted as done. The other
settings are guarded by the folder alone (one value per folder, and a shared Optuna storage names studies
by the folder's run id), so a job key need not hold them; they joined the run's identity after the key
was introduced, and adding them to it now would make every record of existing folders stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JOB_INPUTS = ("dataset_hash", "split_hash", "model")
NOT_RECORDED = object()  # a run.json from before the setting existed does not say what was used


@dataclass(frozen=True)
class Setting:
    name: str  # as run.json spells it
    keyed: bool  # also part of every job key
    implicit: Any = None  # what a run.json that lacks the setting (written before it existed) used
    meaning: str = ""


SETTINGS = (
    Setting("suite", False, meaning="the suite's name (its datasets' content is hashed separately)"),
    Setting("trials", True, meaning="trials per job, the defaults trial included (None: as many as fit)"),
    Setting("tune_seconds", True, meaning="tuning wall clock per job after the defaults trial"),
    Setting("seed", True, meaning="the base seed"),
    Setting("max_splits", False, meaning="the first N splits of each dataset"),
    Setting("seeds", True, 1, meaning="model seeds each final configuration is refit with"),
    Setting("sampler", False, "tpe", meaning="the search strategy and its pruner"),
    Setting("inner_folds", False, 1, meaning="inner cross-validation folds (1: holdout)"),
    Setting("time_limit", False, NOT_RECORDED, meaning="the job's hard limit: it decides which trials a clock cuts"),
    Setting("pack", False, 1, meaning="trials trained together as one packed model (1: one at a time)"),
)
KEYED = tuple(s.name for s in SETTINGS if s.keyed)


def job_settings(inputs: Mapping[str, Any], settings: Mapping[str, Any]) -> dict:
    """Everything that decides what tuning a job does and on which rows: its inputs and keyed settings,
    and its training-set size when the sweep has --train-sizes (never there otherwise, so the keys of
    runs without sizes are what they always were)."""
    size = {"train_size": inputs["train_size"]} if inputs.get("train_size") is not None else {}
    return {**{k: inputs[k] for k in JOB_INPUTS}, **size, **{k: settings[k] for k in KEYED}}


def job_key(inputs: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """Short hash of job_settings(): in study names and in every record (`job_key`)."""
    text = json.dumps(job_settings(inputs, settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def run_settings(settings: Mapping[str, Any]) -> dict:
    """The run's settings as run.json records them (every SETTINGS name, in order)."""
    return {s.name: settings[s.name] for s in SETTINGS}


def changed_settings(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """name -> (old, new) for every setting whose value differs; a setting an old run.json lacks counts
    as its implicit value, or, where none is known, as whatever the new run uses."""
    diff = {}
    for s in SETTINGS:
        if s.name not in old and s.implicit is NOT_RECORDED:
            continue
        before, after = old.get(s.name, s.implicit), new.get(s.name, s.implicit)
        if before != after:
            diff[s.name] = (before, after)
    return diff
