"""The cross-model ensemble: per dataset split, one Caruana selection over every model's stored trials.

Plan: for every dataset split with two or more planned models, plan.json holds one more job,
`<dataset>/ensemble_all/r<R>f<F>` with the one variant `ensemble`, whose key is a hash of its member
jobs' keys: when a member's settings change, the record is stale. `bench verify` therefore counts it
as planned, and `bench leaderboard` / `report` rank `ensemble_all/ensemble` like any entry (family
`ensemble`). A split with a single model gets none: it would repeat that model's own ensemble.

When: as soon as a split's last member job finishes (AsSplitsFinish, called by the sweep with each
finished job), and again after the executor returns (bench.execution.sweep.execute_sweep) for each
split whose member jobs all have current records; so also when a rerun finds every job done (resume). A
record already there is recomputed only when its inputs changed (a member rerun by --retry-failed,
by a changed dataset, a member model added to the folder): the record keeps their fingerprint.

Members: the planned model jobs of the split whose records are current, have an ok variant, and
whose predictions file (bench.tuning.predictions) holds that job key and the study the records name.
A member whose file is missing or damaged is left out and named, with the reason, in `ensemble.left_out`
(a damaged file is the harness's problem: it never fails the ensemble or counts against it).
Candidates are all their kept trials, in (model, trial) order; the selection is the per-model one
(bench.tuning.ensemble: 40 steps, ties to the earlier candidate) on the shared validation labels
(every model of a split scores the same rows: the holdout, or with inner folds the same out-of-fold
rows, which is checked), never on test labels. Like the per-model ensemble it uses the tuning seed's
predictions only (--seeds N > 1 is not applied to it). No member with predictions: a `failed` record
when some member failed, else `skipped` (every member was skipped or unavailable).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING

import numpy as np

from bench.records.record import Cost, Numbers, cross_model_counts, cross_model_head, failed, not_run
from bench.records.record import ok as record_ok
from bench.records.store import ResultStore
from bench.vocabulary import CROSS_MODEL, FAILURES, NOT_RUN, Status, Variant

if TYPE_CHECKING:  # imported where used at run time (loading the data stack only when it is needed)
    from bench.datasets import Dataset



def cross_model_id(member_job_id: str) -> str:
    dataset, _, split = member_job_id.split("/")
    return f"{dataset}/{CROSS_MODEL}/{split}"


def plan_entries(jobs: dict[str, dict]) -> dict[str, dict]:
    """plan.json entries of the cross-model ensembles for the planned model jobs `jobs`."""
    splits: dict[str, list[str]] = {}
    for job_id, entry in jobs.items():
        if entry.get("model") != CROSS_MODEL:
            splits.setdefault(cross_model_id(job_id), []).append(job_id)
    out = {}
    for ens_id, members in sorted(splits.items()):
        members = sorted(members)
        if len({jobs[m]["model"] for m in members}) < 2:
            continue
        first = jobs[members[0]]
        keys = [[m, jobs[m].get("job_key")] for m in members]
        out[ens_id] = {"dataset": first["dataset"], "model": CROSS_MODEL, "dataset_hash": first.get("dataset_hash"),
                       "split_hash": first.get("split_hash"), "job_key": _digest(keys),
                       "variants": [Variant.ENSEMBLE.value], "split_file": first.get("split_file"),
                       "split_index": first.get("split_index"), "members": members}
    return out


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def run_cross_model(store: ResultStore, retry_failed: bool = False, only: set[str] | None = None,
                    jobs: dict[str, dict] | None = None) -> list[dict]:
    """Write the record of every planned cross-model ensemble (`only`: of these ids) whose members are
    done and whose record is missing, stale, made from other inputs, or (retry_failed) a failure; returns
    the records written. `jobs`: plan.json's jobs when the caller holds them."""
    jobs = (store.plan().get("jobs") or {}) if jobs is None else jobs
    written = []
    for ens_id in sorted(jobs if only is None else only):  # (`only`: no pass over the whole plan per job)
        entry = jobs.get(ens_id)
        if entry is None or entry.get("model") != CROSS_MODEL:
            continue
        members = _member_records(store, jobs, entry)
        if members is None:
            continue  # a member job has not finished (or is stale): its rerun comes first
        inputs = _digest([[m, key, sorted(str(r.get("status")) for r in recs.values()),
                           (_ok(recs) or {}).get("predictions")] for m, (key, recs) in sorted(members.items())])
        old = store.read(ens_id, Variant.ENSEMBLE)
        if old and old.get("job_key") == entry["job_key"] and old.get("ensemble_inputs") == inputs \
                and not (retry_failed and old.get("status") in FAILURES):
            continue
        record = _record(store, ens_id, entry, members)
        record["ensemble_inputs"] = inputs
        store.write([record])
        written.append(record)
    return written


class AsSplitsFinish:
    """Called with each finished job: computes its split's cross-model ensemble as soon as the split's
    last member job is done, while the workers run the next jobs, instead of every ensemble after the
    last job (time the whole sweep would wait, and ensembles a stopped sweep would not have). The pass
    after the executor returns (run_cross_model) then finds them current and computes what is left."""

    def __init__(self, store: ResultStore, retry_failed: bool):
        self.store, self.retry_failed = store, retry_failed
        self.jobs = store.plan().get("jobs") or {}
        self.written: list[dict] = []

    def __call__(self, job_id: str) -> None:
        self.written += run_cross_model(self.store, self.retry_failed, {cross_model_id(job_id)}, self.jobs)


def _ok(recs: dict[str, dict]) -> dict | None:
    """The member job's first ok record (they share the trials and the predictions file)."""
    return next((r for r in recs.values() if r.get("status") == Status.OK), None)


def _member_records(store: ResultStore, jobs: dict, entry: dict) -> dict[str, tuple[str, dict]] | None:
    """job id -> (job key, {variant: record}) of every member, or None when one is not done."""
    out = {}
    for job_id in entry.get("members") or []:
        member = jobs.get(job_id)
        if member is None:
            return None
        recs = {}
        for variant in member.get("variants") or []:
            rec = store.read(job_id, variant)
            if rec is None or rec.get("job_key") != member.get("job_key") \
                    or rec.get("dataset_hash") != member.get("dataset_hash") \
                    or rec["split"].get("hash") != member.get("split_hash"):
                return None
            recs[variant] = rec
        out[job_id] = (member["job_key"], recs)
    return out


def load_members(store: ResultStore, members: dict[str, tuple[str, dict]]):
    """(candidates, validation labels, members left out with the reason) from the members' files."""
    from bench.tuning.ensemble import Candidate
    from bench.tuning.predictions import DamagedPredictions, load

    candidates, left_out, y_val = [], {}, None
    for job_id, (key, recs) in sorted(members.items(), key=lambda item: (item[0].split("/")[1], item[0])):
        model, ok = job_id.split("/")[1], _ok(recs)
        info = (ok or {}).get("predictions")
        if ok is None or not info:
            statuses = sorted({str(r.get("status")) for r in recs.values()})
            left_out[model] = f"no ok record ({', '.join(statuses)})" if ok is None else "no stored predictions"
            continue
        try:
            stored = load(store.run_dir / info["file"], key, info.get("study_uid"))
        except DamagedPredictions as exc:  # the harness's file, not the model: leave the member out
            left_out[model] = f"predictions file {info['file']} is damaged ({exc.reason[:200]})"
            continue
        if stored is None or not stored.numbers:
            left_out[model] = f"predictions file {info['file']} is missing, empty or not this job's"
            continue
        if y_val is not None and (stored.y_val is None or not np.array_equal(stored.y_val, y_val)):
            left_out[model] = "validation rows differ from the other members'"
            continue
        y_val = stored.y_val if y_val is None else y_val
        for n in stored.numbers:
            t = stored.trials[n]
            candidates.append(Candidate(f"{model}/{n}", stored.val[n], stored.test[n], t.get("fit_seconds"),
                                        t.get("predict_seconds"), {"model": model, "job_id": job_id,
                                                                   "job_key": key, "trial": n}))
    return candidates, y_val, left_out


def split_test_labels(store: ResultStore, entry: dict) -> tuple[np.ndarray, Dataset]:
    """The split's test labels and the dataset (for its task), checked against the plan's hashes."""
    from bench.datasets import load_cached_dataset
    from bench.splits import load_frozen

    ds = load_cached_dataset(store.run_dir / "data" / entry["dataset"])
    if ds is None or ds.content_hash != entry.get("dataset_hash"):
        raise RuntimeError(f"materialized dataset data/{entry['dataset']} is missing or changed")
    split_file, index = entry.get("split_file"), entry.get("split_index")
    splits = load_frozen(store.run_dir / split_file) if split_file else None
    if not splits or not isinstance(index, int) or index >= len(splits) \
            or splits[index].hash != entry.get("split_hash"):
        raise RuntimeError(f"frozen split {entry.get('split_file')}[{index}] is missing or changed")
    return ds.y[splits[index].test], ds


def _record(store: ResultStore, ens_id: str, entry: dict, members: dict) -> dict:
    from bench.adapters import TaskInfo
    from bench.tuning.ensemble import build

    all_recs = [r for _, recs in members.values() for r in recs.values()]
    base = next((r for r in all_recs if r.get("status") == Status.OK), all_recs[0] if all_recs else {})
    head = cross_model_head(base, ens_id, entry["job_key"], entry["dataset"], entry["dataset_hash"],
                            {"index": entry.get("split_index"), "hash": entry.get("split_hash")})
    cpu0, wall0 = time.process_time(), time.perf_counter()
    left: dict = {}  # the `ensemble` field once the members are read: who was left out
    try:
        candidates, y_val, left_out = load_members(store, members)
        left = {"ensemble": {"left_out": left_out}}
        if not candidates:
            return _nothing_to_ensemble(head, left, all_recs, left_out)
        y_test, ds = split_test_labels(store, entry)
        made = build(candidates, y_val, y_test, TaskInfo(ds.task_type, ds.n_classes))
    except Exception as exc:  # a broken file or a bug: this entry fails, the sweep goes on
        return failed(head, Status.FAILED, type(exc).__name__, str(exc), left)
    # (member job's records, its ok record) for the jobs that kept predictions
    with_predictions = [(recs, ok) for _, recs in members.values() if (ok := _ok(recs)) and ok.get("predictions")]
    cost = [_tuning_cost(recs) for _, recs in members.values()]
    numbers = Numbers(
        {"weights": made.weights}, None, made.val_score, made.test_metrics,
        [{"seed": base.get("model_seed"), "fit_seconds": made.fit_seconds, "predict_seconds": made.predict_seconds,
          **made.test_metrics}], made.fit_seconds, made.predict_seconds,
        ensemble={**made.info, "left_out": left_out, "seeds_used": 1,
                  "models": sorted({c.about["model"] for c in candidates}),
                  "selection_seconds": time.perf_counter() - wall0})
    return record_ok(head, base["objective"], numbers,
                     cross_model_counts([ok.get("trial_counts") or {} for _, ok in with_predictions]),
                     Cost(_only_defaults([recs for recs, _ in with_predictions]),
                          sum(c[0] for c in cost) + time.process_time() - cpu0, sum(c[1] for c in cost)).fields())


def _only_defaults(member_recs: list[dict[str, dict]]) -> bool | None:
    """Whether every tuned member job completed only its defaults trial (then the pool is the models'
    defaults, though tuning was declared); None when no member was tuned (nothing was declared)."""
    tuned = [recs[Variant.TUNED] for recs in member_recs if Variant.TUNED in recs]
    return all(bool(r.get("only_defaults")) for r in tuned) if tuned else None


def _tuning_cost(recs: dict[str, dict]) -> tuple[float, float]:
    """(cpu, gpu) seconds of a member job's trials: its tuned record's cost (the whole tuning), else
    its default record's (a job with one trial)."""
    for variant in (Variant.TUNED, Variant.DEFAULT):
        device = (recs.get(variant) or {}).get("device_seconds") or {}
        if device:
            return float(device.get("cpu") or 0.0), float(device.get("gpu") or 0.0)
    return 0.0, 0.0


def _nothing_to_ensemble(head: dict, left: dict, all_recs: list[dict], left_out: dict) -> dict:
    reasons = "; ".join(f"{m}: {why}" for m, why in sorted(left_out.items()))
    if any(r.get("status") in FAILURES for r in all_recs) or not all(r.get("status") in NOT_RUN for r in all_recs):
        return failed(head, Status.FAILED, "NoMembers", f"no member model has stored predictions ({reasons})", left)
    return not_run(head, Status.SKIPPED, f"every member model was skipped or unavailable ({reasons})", left)


def count_into(summary, records: list[dict]) -> None:
    """Add the cross-model records to a sweep summary (bench.execution.runner.SweepSummary)."""
    for r in records:
        summary.statuses[r["status"]] += 1
        if r["status"] in FAILURES:
            summary.failures.append((f"{r['job_id']} [{r['variant']}]", r["status"],
                                     (r.get("error") or {}).get("message", ""), ""))
