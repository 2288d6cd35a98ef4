"""The one owner of what a record is: its fields (FIELDS), validation and tabular projection (both derived
from FIELDS), and upgrades of records written by older versions. bench.records.record builds records.

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
    budget.pack, trials[].pack   --pack K (trials trained together as one packed model, bench.tuning.packing)
                       and the size of the pack a trial trained in; absent: 1. A packed trial's `seconds`
                       and `cpu_seconds` are its share of its pack's
    predictions.set_aside, predictions.from_float32_file   damaged files set aside before the job ran
                       from scratch; trials read back from the float32 file (bench.tuning.predictions)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
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
ALWAYS = frozenset({"*"})  # required of every record, whatever its status (even an unknown one)
OK = frozenset({Status.OK})
TRIAL_COUNTS = ("total", "completed", "pruned", "deadline", "failed")  # the keys of `trial_counts`

Check = Callable[[Any, dict], "str | None"]  # (value, record) -> what is wrong with it, or None
Columns = Callable[[Any, dict], dict]  # (value, record) -> {frame column: value}


@dataclass(frozen=True)
class Field:
    """One key of a record: the JSON type of its value; the statuses whose records must hold it (ALWAYS:
    every record), with the check a value must pass then (a field no status requires is checked wherever
    it is present); and what it contributes to the leaderboard frame (a column name for the value as is,
    or a function)."""
    name: str
    kind: type | tuple[type, ...]
    meaning: str
    required: frozenset = frozenset()
    check: Check | None = None
    columns: str | Columns | None = None


def _text(name: str) -> Check:
    return lambda v, r: None if isinstance(v, str) and v else f"'{name}' missing or not a string"


def _object_with(key: str, message: str) -> Check:
    return lambda v, r: None if isinstance(v, dict) and isinstance(v.get(key), str) else message


def _test_columns(test: Any, record: dict) -> dict:
    return {f"test_{k}": v for k, v in (test or {}).items()}


# In the order of a record's keys (bench.records.record writes them so).
FIELDS: tuple[Field, ...] = (
    # the header: every record of a job
    Field("schema_version", int, "SCHEMA_VERSION when written (older records are upgraded on read)"),
    Field("job_id", str, "<dataset>/<model>/r<R>f<F>", ALWAYS, _text("job_id"), "job_id"),
    Field("suite", str, "the suite's name", columns="suite"),
    Field("dataset", str, "the dataset's name", ALWAYS, _text("dataset"), "dataset"),
    Field("dataset_hash", str, "the dataset's content hash", ALWAYS, _text("dataset_hash"), "dataset_hash"),
    Field("split", dict, "index, repeat, fold, hash (of its rows), origin (kfold, openml-task, predefined)",
          ALWAYS, lambda v, r: None if isinstance(v, dict) and isinstance(v.get("index"), int)
          and isinstance(v.get("hash"), str) else "'split' must hold an integer 'index' and a string 'hash'",
          lambda v, r: {"split": v["index"], "split_hash": v["hash"]}),
    Field("model", str, "the model's registered name", ALWAYS, _text("model"), "model"),
    Field("variant", str, "default | tuned | ensemble (bench.vocabulary.Variant)", ALWAYS, _text("variant"),
          "variant"),
    Field("seed", int, "the run's base seed", columns="seed"),
    Field("job_key", str, "hash of the job's inputs and keyed settings (bench.records.identity)"),
    Field("budget", dict, "the declared budget: trials, seconds, sampler, pruner, inner_folds, time_limit, pack",
          columns=lambda v, r: {"sampler": (v or {}).get("sampler"), "trials_declared": (v or {}).get("trials")}),
    Field("device", str, "cpu | cuda", columns="device"),
    Field("threads", int, "threads the job ran with"),
    Field("host", str, "the machine's host name"),
    Field("versions", dict, "python, bench and the libraries the model uses"),
    Field("finished_at", str, "UTC time the record was made"),
    # the dataset and the split (Dataset.summary(), then the part sizes once the split is loaded)
    Field("task_type", str, "binary | multiclass | regression", OK,
          lambda v, r: None if isinstance(v, str) else "ok record without 'task_type'", "task_type"),
    Field("n_rows", int, "rows of the dataset", columns="n_rows"),
    Field("n_features", int, "feature columns", columns="n_features"),
    Field("n_classes", int, "classes (0 for regression)"),
    Field("n_categorical", int, "categorical feature columns", columns="n_categorical"),
    Field("n_train", int, "rows each model is fit on (inner folds: the mean training-fold size)"),
    Field("n_val", int, "rows the validation score is computed on (inner folds: every outer training row)"),
    Field("n_test", int, "rows of the test part"),
    Field("inner_folds", int, "1: holdout validation; K: inner K-fold cross-validation", columns="inner_folds"),
    Field("train_size", str, "--train-sizes: the size of the split's learning data the job used, as a fraction "
          "(\"0.25\", \"1\") or a row count (\"500\") (bench.train_sizes); absent without the option",
          columns=lambda v, r: {"train_size": v} if v is not None else {}),
    Field("family", str, "the model's family (gbdt, neural, baseline, ensemble, ...)", columns="family"),
    Field("source", dict, "where the data came from (OpenML ids, file, licence)"),
    # the job's tuning, shared by its variants
    Field("objective", str, "the metric tuning optimized (roc_auc, log_loss, rmse)", columns="objective"),
    Field("direction", str, "maximize | minimize", OK,
          lambda v, r: None if v in _DIRECTIONS else f"'direction' is {v!r}, not one of {_DIRECTIONS}",
          "direction"),
    Field("trials", list, "every finished trial: params, value, end, costs (bench.tuning.trials)",
          columns=lambda v, r: {"clock_cut": clock_cut(r), "trial_values": trial_values(v)}),
    Field("trial_counts", dict, f"how the job's trials ended: {', '.join(TRIAL_COUNTS)}",
          columns=lambda v, r: {f"trials_{k}": (v or {}).get(k) for k in ("total", "completed", "pruned", "failed")}),
    Field("tuning_seconds", (int, float), "wall seconds spent tuning, every process together",
          columns="tuning_seconds"),
    Field("job_seconds", (int, float), "wall seconds of the job in this process"),
    Field("model_seed", int, "the seed of the tuning seed's models"),
    Field("resumes", int, "times a later process took the job's study up again", check=lambda v, r: None
          if isinstance(v, int) and not isinstance(v, bool) and v >= 0
          else f"'resumes' must be an integer >= 0, got {v!r}"),
    Field("predictions", dict, "the job's predictions file (file, study_uid, kept, ...; bench.tuning.predictions)"),
    # what the variant cost and whether tuning really ran
    Field("only_defaults", (bool, type(None)), "a tuned record whose only completed trial is the defaults one",
          columns="only_defaults"),
    Field("device_seconds", dict, "cpu and gpu seconds the variant cost",
          columns=lambda v, r: {"cpu_seconds": (v or {}).get("cpu"), "gpu_seconds": (v or {}).get("gpu")}),
    # the outcome
    Field("status", str, "bench.vocabulary.Status", ALWAYS, lambda v, r: None if v in Status.__members__.values()
          else f"'status' is {v!r}, not one of {', '.join(Status)}", "status"),
    Field("params", dict, "the chosen configuration (an ensemble: its weights)",
          columns=lambda v, r: {"params": json.dumps(v, sort_keys=True) if v else None}),
    Field("trial_number", (int, type(None)), "the chosen trial (None for an ensemble)"),
    Field("val_score", (int, float), "the objective on validation", columns="val_score"),
    Field("test", dict, "every test metric (the mean over the model seeds that finished)", OK,
          lambda v, r: None if isinstance(v, dict) else "ok record without a 'test' metrics object", _test_columns),
    Field("test_score", (int, float), "the objective on test", OK,
          lambda v, r: None if _finite(v) else f"ok record with non-finite 'test_score' {v!r}", "test_score"),
    Field("test_score_std", (float, type(None)), "the objective's std over model seeds (None: one seed)",
          columns="test_score_std"),
    Field("test_by_seed", list, "per model seed: seed, fit/predict seconds and metrics, or an error",
          columns=lambda v, r: {"n_seeds": sum("error" not in s for s in v or []) or None}),
    Field("fit_seconds", (int, float), "the chosen model's fit", columns="fit_seconds"),
    Field("predict_seconds", (int, float), "its test predictions", columns="predict_seconds"),
    Field("fit_info", dict, "what the fit said: iterations, best iteration, how it ended"),
    Field("ensemble", dict, "an ensemble's members, weights and selection", OK,
          lambda v, r: "; ".join(_ensemble_problems(r)) or None if r.get("variant") == Variant.ENSEMBLE else None),
    Field("ensemble_inputs", str, "a cross-model ensemble's fingerprint of its members' records"),
    Field("test_source", str, "where the tuning seed's test metrics come from (bench.tuning.variants.SOURCES)"),
    Field("error", dict, "a failure's type and message", FAILURES,
          _object_with("message", "failure record without an 'error' object holding a 'message'"),
          lambda v, r: {"error": (v or {}).get("message", r.get("reason"))}),
    Field("reason", str, "why a variant was not run (skipped, unavailable)", NOT_RUN,
          lambda v, r: None if isinstance(v, str) else f"{r.get('status')} record without a 'reason'"),
    Field("memory_peak_bytes", int, "a job stopped over --memory-limit: its peak resident memory"),
    Field("memory_limit_bytes", int, "and the limit"),
    Field("log", str, "the job's log file"),
    Field("log_tail", str, "a failure's last log lines"),
)
NAMES = frozenset(f.name for f in FIELDS)


def validate_record(record: Any) -> list[str]:
    """Problems that make a record unusable for statistics (empty list: valid): every field its status
    requires, and every other field present, must pass its check (FIELDS)."""
    if not isinstance(record, dict):
        return [f"a record must be a JSON object, got {type(record).__name__}"]
    status = record.get("status")
    problems = []
    for f in FIELDS:
        value = record.get(f.name)
        applies = f.required is ALWAYS or status in f.required or (not f.required and value is not None)
        problem = f.check(value, record) if f.check is not None and applies else None
        if problem:
            problems.append(problem)
    return problems


def frame_row(record: dict) -> dict:
    """A record's row in the leaderboard frame (bench.records.store.ResultStore.frame): every field's
    columns (FIELDS), in their order."""
    row: dict = {}
    for f in FIELDS:
        if isinstance(f.columns, str):
            row[f.columns] = record.get(f.name)
        elif f.columns is not None:
            row.update(f.columns(record.get(f.name), record))
    return row




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


def summed_trial_counts(counts: list[dict]) -> dict[str, int]:
    """Several jobs' trial counts added up (a cross-model ensemble's, over its members)."""
    return {k: sum(c.get(k) or 0 for c in counts) for k in TRIAL_COUNTS}


def trial_values(trials: list[dict] | None) -> list[float | None] | None:
    """The job's validation values in trial-number order (None for a trial that returned none: pruned,
    failed), for the budget-adequacy rule (bench.analysis.budget); None when the record has no trials."""
    if not trials:
        return None
    ordered = sorted(trials, key=lambda t: t.get("number", 0))
    return [float(t["value"]) if t.get("state") == "COMPLETE" and _finite(t.get("value")) else None for t in ordered]


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
