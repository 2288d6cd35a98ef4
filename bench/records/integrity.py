"""Is a run folder whole? Its records against its plan (plan.json), the schema and the data's hashes.

Planned are the model jobs (one record per variant: default, tuned, ensemble) and the cross-model
ensembles (`<dataset>/ensemble_all/r<R>f<F>`, variant ensemble, keyed by their member jobs' keys:
bench.execution.ensembles), so a changed member makes the cross-model record stale.

`bench verify RUN` prints every problem; `bench leaderboard` and `bench report` refuse a run with any
(naming them) unless --allow-partial, and then use only the records that passed. Problems:
    unreadable  a record file that is not JSON (torn, truncated)
    invalid     JSON that is not a valid record (bench.records.schema.validate_record)
    misplaced   a record whose job id / variant is not the one its path says
    stale       a record made for other data, splits or settings than the plan's (or a planned job
                whose dataset changed since it ran)
    foreign     a record of a job or variant the plan does not hold
    missing     a planned job and variant without a record
    data        a materialized dataset (data/<name>/meta.json) or frozen split (splits/*.npz) whose
                hash is not the plan's
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.records.schema import validate_record
from bench.records.store import ResultStore

KINDS = ("unreadable", "invalid", "misplaced", "stale", "foreign", "missing", "data")


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
    for at, (job_id, variant, _) in expected.items():
        if at not in seen:
            check.problems["missing"].append(f"{job_id} [{variant}] has no record")
    for name, info in sorted(datasets.items()):
        meta = store.run_dir / "data" / name / "meta.json"
        if info.get("skipped") or not meta.exists():
            continue
        try:
            digest = json.loads(meta.read_text()).get("content_hash")
        except (OSError, json.JSONDecodeError, AttributeError):
            digest = "(unreadable)"
        if digest != info.get("hash"):
            check.problems["data"].append(f"data/{name}/meta.json: content hash {digest}, plan.json has "
                                          f"{info.get('hash')}")
    _check_splits(store, jobs, check)
    return check


def _check_splits(store: ResultStore, jobs: dict, check: RunCheck) -> None:
    from bench.splits import load_frozen

    frozen: dict[str, list | None] = {}
    for job_id, entry in sorted(jobs.items()):
        name = entry.get("split_file")
        if not name:
            continue
        if name not in frozen:
            frozen[name] = load_frozen(store.run_dir / name)
            if frozen[name] is None:
                check.problems["data"].append(f"{name}: missing or unreadable (planned splits of {entry['dataset']})")
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
