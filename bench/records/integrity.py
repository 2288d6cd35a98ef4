"""Is a run folder whole? Its records against its plan (plan.json), the schema and the data's hashes.

Planned are the model jobs (one record per variant: default, tuned, ensemble) and the cross-model
ensembles (`<dataset>/ensemble_all/r<R>f<F>`, variant ensemble, keyed by their member jobs' keys:
bench.execution.ensembles), so a changed member makes the cross-model record stale.

`bench verify RUN` prints every problem; `bench leaderboard` and `bench report` refuse a run with any
(naming them) unless --allow-partial, and then use only the records that passed. Problems:
    unreadable    a record file that is not JSON (torn, truncated)
    invalid       JSON that is not a valid record (bench.records.schema.validate_record)
    misplaced     a record whose job id / variant is not the one its path says
    inconsistent  a record whose numbers disagree with each other (a hand-edited number): test_score
                  and its test metrics, the test metrics and the mean over test_by_seed, val_score and
                  the value of the trial it names
    stale         a record made for other data, splits or settings than the plan's (or a planned job
                  whose dataset changed since it ran)
    foreign       a record of a job or variant the plan does not hold
    missing       a planned job and variant without a record; a records/ folder without any
    data          the run's copy of a dataset (data/<name>/meta.json + data.parquet) or of its frozen
                  splits (splits/*.npz) that is missing, damaged (truncated, garbage) or holds other
                  data than the plan says
    predictions   a predictions file a record names (what the cross-model ensemble and resumed jobs
                  read) that is missing or damaged
Without plan.json (a run from an older version) the check is partial: records are checked against the
schema and themselves only, and missing records cannot be found (RunCheck.partial).
"""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.records.schema import validate_record
from bench.records.store import ResultStore

KINDS = ("unreadable", "invalid", "misplaced", "inconsistent", "stale", "foreign", "missing", "data", "predictions")
# What to do about a damaged or missing copy in the run folder (data, splits).
REWRITE = ("restore it, or run the same `bench run` command again: it writes the run's copy again from the "
           "suite's data (records stay valid when the hashes match)")


@dataclass
class RunCheck:
    run_dir: Path
    planned: int = 0  # planned records (jobs x variants); 0 without plan.json
    found: int = 0  # record files
    has_plan: bool = False
    problems: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    usable: list[Path] = field(default_factory=list)  # record files that passed every check

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    @property
    def partial(self) -> bool:
        """No plan.json: missing records and stale ones cannot be found."""
        return not self.has_plan

    def lines(self, limit: int | None = None) -> list[str]:
        out = []
        for kind in KINDS:
            items = self.problems[kind]
            shown = items if limit is None else items[:limit]
            out += [f"{kind}: {text}" for text in shown]
            if len(items) > len(shown):
                out.append(f"{kind}: ... and {len(items) - len(shown)} more")
        return out

    def counts(self) -> str:
        return ", ".join(f"{len(v)} {k}" for k, v in self.problems.items() if v) or "no problems"


def check_run(store: ResultStore) -> RunCheck:
    """Check every record file of the run against the schema and plan.json (see the module doc)."""
    check = RunCheck(store.run_dir)
    plan = store.plan()
    jobs, datasets = plan.get("jobs") or {}, plan.get("datasets") or {}
    check.has_plan = bool(jobs)
    expected: dict[Path, tuple[str, str, dict]] = {}
    for job_id, entry in sorted(jobs.items()):
        for variant in entry.get("variants") or []:
            expected[store.path_for(job_id, variant).resolve()] = (job_id, variant, entry)
    check.planned = len(expected)
    seen = set()
    run_dir = store.run_dir.resolve()
    checked_files: set[str] = set()
    for path in store.record_files():
        check.found += 1
        rel = path.resolve().relative_to(run_dir)
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            check.problems["unreadable"].append(f"{rel}: {exc}")
            continue
        problems = validate_record(record)
        if problems:
            check.problems["invalid"].append(f"{rel}: {'; '.join(problems)}")
            continue
        try:
            at = store.path_for(record["job_id"], record["variant"]).resolve()
        except ValueError:
            at = None
        if at != path.resolve():
            check.problems["misplaced"].append(f"{rel}: holds job {record['job_id']} [{record['variant']}]")
            continue
        why = inconsistency(record)
        if why:
            check.problems["inconsistent"].append(f"{rel}: {why}")
            continue
        _check_predictions(store, record, rel, checked_files, check)
        if not check.has_plan:
            check.usable.append(path)
            continue
        if at not in expected:
            check.problems["foreign"].append(f"{rel}: job {record['job_id']} [{record['variant']}] is not in "
                                             f"plan.json")
            continue
        seen.add(at)
        why = _stale(record, expected[at][2], datasets)
        if why:
            check.problems["stale"].append(f"{rel}: {why}")
            continue
        check.usable.append(path)
    if not check.found:
        check.problems["missing"].append("records/ holds no record file")
    for at, (job_id, variant, _) in expected.items():
        if at not in seen:
            check.problems["missing"].append(f"{job_id} [{variant}] has no record")
    _check_data(store, datasets, check)
    _check_splits(store, jobs, check)
    return check


def _check_data(store: ResultStore, datasets: dict, check: RunCheck) -> None:
    """Each planned dataset's copy in the run folder reads back whole, with the plan's content hash."""
    from bench.datasets import read_cached_dataset

    for name, info in sorted(datasets.items()):
        if info.get("skipped"):
            continue
        ds, problem = read_cached_dataset(store.run_dir / "data" / name)
        if ds is None:
            check.problems["data"].append(f"data/{name}: {problem or 'missing'}; {REWRITE}")
        elif ds.content_hash != info.get("hash"):
            check.problems["data"].append(f"data/{name}: content hash {ds.content_hash}, plan.json has "
                                          f"{info.get('hash')}")


def npz_problem(path: Path) -> str | None:
    """Why an .npz file the harness wrote does not read back whole (None when it does): missing, not a
    zip archive (truncated, garbage), or a member whose checksum fails (every member is read)."""
    if not path.is_file():
        return "missing"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        return f"damaged ({type(exc).__name__}: {exc})"
    return f"damaged (member {bad} fails its checksum)" if bad else None


def _check_predictions(store: ResultStore, record: dict, rel: Path, checked: set[str], check: RunCheck) -> None:
    """The predictions file a record names exists and reads back whole (each file checked once)."""
    name = (record.get("predictions") or {}).get("file") if isinstance(record.get("predictions"), dict) else None
    if not isinstance(name, str) or name in checked:
        return
    checked.add(name)
    path = store.run_dir / name
    if not path.resolve().is_relative_to(store.run_dir.resolve()):
        problem: str | None = "outside the run folder"
    else:  # the owner of the format checks it: every array its meta names, decompressed and checksummed
        from bench.tuning.predictions import check_predictions_file

        problem = check_predictions_file(path)
        problem = f"damaged ({problem})" if problem and problem != "missing" else problem
    if problem:
        check.problems["predictions"].append(f"{name} (named by {rel} and the other records of its job): "
                                             f"{problem}; run the same `bench run` command again to redo the job")


def _close(a, b) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def inconsistency(record: dict) -> str | None:
    """How an ok record's numbers disagree with each other (None: they agree). The harness writes
    test_score = test[objective], each test metric = the mean over the model seeds that finished
    (test_by_seed), val_score = the value of the trial the record names; a hand-edited number breaks one."""
    if record.get("status") != "ok":
        return None
    test: dict = record["test"] if isinstance(record.get("test"), dict) else {}
    objective, score = record.get("objective"), _number(record.get("test_score"))
    expected = _number(test.get(objective))
    if score is not None and expected is not None and not _close(score, expected):
        return f"test_score {score!r} is not its test.{objective} {expected!r}"
    seeds = [s for s in record.get("test_by_seed") or [] if isinstance(s, dict) and "error" not in s]
    for metric, value in test.items():
        values = [v for s in seeds if (v := _number(s.get(metric))) is not None]
        number = _number(value)
        if number is not None and values and len(values) == len(seeds):
            mean = float(np.mean(values))
            if not _close(number, mean):
                return f"test.{metric} {number!r} is not the mean over its test_by_seed ({mean!r})"
    number, val = record.get("trial_number"), _number(record.get("val_score"))
    trial = next((t for t in record.get("trials") or [] if isinstance(t, dict) and t.get("number") == number
                  and number is not None), None)
    if trial is not None and val is not None and _number(trial.get("value")) is not None \
            and not _close(val, trial["value"]):
        return f"val_score {val!r} is not the value {trial['value']!r} of trial {number}, which it names"
    return None


def _check_splits(store: ResultStore, jobs: dict, check: RunCheck) -> None:
    from bench.splits import load_frozen

    frozen: dict[str, list | None] = {}
    for job_id, entry in sorted(jobs.items()):
        name = entry.get("split_file")
        if not name:
            continue
        if name not in frozen:
            problem = npz_problem(store.run_dir / name)
            frozen[name] = None if problem else load_frozen(store.run_dir / name)
            if frozen[name] is None:
                check.problems["data"].append(f"{name}: {problem or 'unreadable'} (planned splits of "
                                              f"{entry['dataset']}); {REWRITE}")
        splits, index = frozen[name], entry.get("split_index")
        if splits is None:
            continue
        if not isinstance(index, int) or index >= len(splits) or splits[index].hash != entry.get("split_hash"):
            check.problems["data"].append(f"{name}[{index}]: not the split {job_id} was planned with")


def _stale(record: dict, entry: dict, datasets: dict) -> str | None:
    current = (datasets.get(record["dataset"]) or {}).get("hash")
    if entry.get("dataset_hash") != current and current is not None:
        return (f"dataset {record['dataset']} changed since this job was planned (hash "
                f"{entry.get('dataset_hash')} -> {current}): run it again")
    if record["dataset_hash"] != entry.get("dataset_hash"):
        return f"dataset hash {record['dataset_hash']}, plan.json has {entry.get('dataset_hash')}"
    if record["split"]["hash"] != entry.get("split_hash"):
        return f"split hash {record['split']['hash']}, plan.json has {entry.get('split_hash')}"
    if "job_key" in record and entry.get("job_key") and record["job_key"] != entry["job_key"]:
        return f"made with other settings (job key {record['job_key']}, plan.json has {entry['job_key']})"
    return None


def require_whole(store: ResultStore, allow_partial: bool) -> RunCheck:
    """For leaderboards and reports: BenchError naming the problems of a run that is not whole, unless
    allow_partial; then the store is restricted to the records that passed (the caller warns)."""
    check = check_run(store)
    if not check.ok and not allow_partial:
        shown = "\n  ".join(check.lines(limit=5))
        raise BenchError(f"{store.run_dir} is not whole ({check.counts()}):\n  {shown}\n"
                         f"`bench verify {store.run_dir}` lists every problem; --allow-partial uses only the "
                         f"{len(check.usable)} records that pass")
    store.restrict(check.usable)
    return check
