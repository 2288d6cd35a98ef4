"""The one owner of what a record is: the schema, its validation and upgrades.

A record is one JSON file per job (dataset x split x model) and variant. Its vocabulary (statuses,
trial end reasons, variants) lives in bench.vocabulary and is re-exported here.

Resume and provenance fields (added within v2; a record written before them lacks them, which readers
take as "not recorded", so no upgrade is needed):
    resumes            how many times a later process took the job's study up again after its process
                       was stopped (kill, lost node); its numbers are those of an uninterrupted run
                       (bench.tuning.progress)
    trials[].restarts  runs of that trial a kill cut off before the run recorded
    test_source        where the tuning seed's test metrics come from (bench.tuning.variants.SOURCES):
                       "trial" (the chosen trial's own model, scored when it completed), or for trials
                       of a study begun by an older version "stored_predictions" / "refit"
    budget.time_limit  the job's --time-limit in seconds (None: none), part of the run's identity
    predictions.set_aside, predictions.from_float32_file   damaged files set aside before the job ran
                       from scratch; trials read back from the float32 file (bench.tuning.predictions)
"""

from __future__ import annotations

import math
from typing import Any

from bench.vocabulary import (  # noqa: F401  (re-exported: the record's vocabulary)
    CROSS_MODEL,
    FAILURES,
    NOT_RUN,
    TUNING_VARIANTS,
    Status,
    TrialEnd,
    Variant,
)

SCHEMA_VERSION = 2
_DIRECTIONS = ("maximize", "minimize")


def validate_record(record: Any) -> list[str]:
    """Problems that make a record unusable for statistics (empty list: valid)."""
    if not isinstance(record, dict):
        return [f"a record must be a JSON object, got {type(record).__name__}"]
    problems = []
    for key in ("job_id", "dataset", "model", "variant", "dataset_hash"):
        if not isinstance(record.get(key), str) or not record.get(key):
            problems.append(f"'{key}' missing or not a string")
    status = record.get("status")
    if status not in Status.__members__.values():
        problems.append(f"'status' is {status!r}, not one of {', '.join(Status)}")
    split = record.get("split")
    if not isinstance(split, dict) or not isinstance(split.get("index"), int) or not isinstance(split.get("hash"), str):
        problems.append("'split' must hold an integer 'index' and a string 'hash'")
    resumes = record.get("resumes")
    if resumes is not None and (isinstance(resumes, bool) or not isinstance(resumes, int) or resumes < 0):
        problems.append(f"'resumes' must be an integer >= 0, got {resumes!r}")
    if status == Status.OK:
        if not _finite(record.get("test_score")):
            problems.append(f"ok record with non-finite 'test_score' {record.get('test_score')!r}")
        if record.get("direction") not in _DIRECTIONS:
            problems.append(f"'direction' is {record.get('direction')!r}, not one of {_DIRECTIONS}")
        if not isinstance(record.get("test"), dict):
            problems.append("ok record without a 'test' metrics object")
        if not isinstance(record.get("task_type"), str):
            problems.append("ok record without 'task_type'")
        if record.get("variant") == Variant.ENSEMBLE:
            problems += _ensemble_problems(record)
    elif status in FAILURES:
        error = record.get("error")
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            problems.append("failure record without an 'error' object holding a 'message'")
    elif status in NOT_RUN:
        if not isinstance(record.get("reason"), str):
            problems.append(f"{status} record without a 'reason'")
    return problems


def _ensemble_problems(record: dict) -> list[str]:
    """An ok ensemble record holds its weights (params.weights: member -> weight, finite, >= 0, summing
    to 1) and its `ensemble` object naming the same members."""
    weights = (record.get("params") or {}).get("weights") if isinstance(record.get("params"), dict) else None
    if not isinstance(weights, dict) or not weights:
        return ["ok ensemble record without 'params.weights'"]
    values = list(weights.values())
    if not all(_finite(w) and w >= 0 for w in values) or abs(sum(values) - 1.0) > 1e-6:
        return [f"ensemble weights must be finite, >= 0 and sum to 1, got {weights!r}"]
    info = record.get("ensemble")
    if not isinstance(info, dict) or not isinstance(info.get("members"), list):
        return ["ok ensemble record without an 'ensemble' object listing its 'members'"]
    named = {m.get("name") for m in info["members"] if isinstance(m, dict)}
    if named != set(weights):
        return [f"ensemble members {sorted(map(str, named))} are not the weighted ones {sorted(weights)}"]
    return []


def upgrade_record(record: dict) -> dict:
    """A record written by an older version, in today's shape (the file itself is left as it is).

    v1 -> v2: `schema_version` added; trials gained `end`; records gained `trial_counts`."""
    if record.get("schema_version", 1) >= SCHEMA_VERSION:
        return record
    out = dict(record)
    trials = [dict(t) for t in out.get("trials") or []]
    for t in trials:
        t.setdefault("end", _v1_trial_end(t))
    if trials:
        out["trials"] = trials
        out.setdefault("trial_counts", trial_counts(trials))
    out["schema_version"] = SCHEMA_VERSION
    return out


def _v1_trial_end(trial: dict) -> str:
    state = trial.get("state")
    if state == "PRUNED":
        return TrialEnd.PRUNED
    if state == "FAIL":
        return TrialEnd.FAILED
    return TrialEnd.CONVERGED  # v1 did not record how a completed trial ended


def trial_counts(trials: list[dict]) -> dict[str, int]:
    """How a job's trials ended: completed (incl. those the clock cut), pruned, deadline, failed."""
    ends = [t.get("end") for t in trials]
    return {
        "total": len(trials),
        "completed": sum(e not in (TrialEnd.PRUNED, TrialEnd.FAILED) for e in ends),
        "pruned": ends.count(TrialEnd.PRUNED),
        "deadline": ends.count(TrialEnd.DEADLINE),
        "failed": ends.count(TrialEnd.FAILED),
    }


def clock_cut(record: dict) -> int | None:
    """Trials of this record's variant that a clock cut short (end `deadline`): for the default variant
    its defaults trial (only the job's --time-limit can cut it), for the others every trial of the job
    (the tuning clock or the time limit). None when the record does not say (written before ends were)."""
    if record.get("variant") == Variant.DEFAULT:
        ends = [t.get("end") for t in record.get("trials") or [] if t.get("is_default")]
        return None if not ends or None in ends else ends.count(TrialEnd.DEADLINE)
    return (record.get("trial_counts") or {}).get("deadline")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
