"""The results store: one JSON record per job and variant, written atomically, plus a Parquet table.

Layout of a run directory:
    run.json                                   the run's identity: suite, protocol, budget, seed, dataset hashes
    plan.json                                  every job planned into this folder: ids, hashes, variants
                                               (what `bench verify` checks the records against)
    records/<dataset>/<model>/r<R>f<F>.<variant>.json
    optuna/<study>.db                          per-job Optuna studies (resume state)
    predictions/<dataset>/<model>/r<R>f<F>.npz every trial's validation and test predictions, float32
                                               (bench.tuning.predictions; what the ensembles select from)
    logs/<dataset>/<model>/r<R>f<F>.log        each job's output (bench.execution.joblog)
    records.parquet, leaderboard*.csv/.md      derived, rebuilt from the records at any time

A record file exists only once it is complete (write to a temp file, fsync, rename), so a killed sweep
never leaves a half record that could be read as valid; an unreadable or invalid file is treated as
missing by the sweep and refused by `bench leaderboard` / `report` (bench.records.integrity). Every
file is written through bench.safe_files: never outside the run folder, never through a link.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.json_files import write_json_atomic
from bench.records.identity import changed_settings
from bench.records.schema import frame_row, upgrade_record, validate_record
from bench.safe_files import write_atomic
from bench.vocabulary import FAILURES, Status


class ResultStore:
    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.records_dir = self.run_dir / "records"
        self.only: set[Path] | None = None  # restrict(): the record files reads may return

    # --- run configuration ---------------------------------------------------------------------
    def check_config(self, config: dict, protocol_defaults: Mapping | None = None) -> tuple[dict, list[str]]:
        """(run.json as it becomes, notes) for a run with `config` starting in this folder; nothing is
        written (write_config does, when the run really starts).

        A different setting (bench.records.identity.SETTINGS: budget, seed, ...) or protocol is refused
        (BenchError naming each change, e.g. "protocol.folds: 3 -> 2"): records of both would mix. The
        protocol is compared key by key; a key an old run.json lacks means its value in
        `protocol_defaults` (the suite format's defaults, given by the caller). So is a dataset whose content the folder
        already holds under another name: it would count twice. A dataset whose content changed is a note:
        its jobs are re-run (records and studies are keyed by its hash). `config["datasets"]` maps
        dataset names to content hashes; models and datasets accumulate over runs into one folder."""
        old = self.config()
        notes: list[str] = []
        if old:
            diff = changed_settings(old, config)
            old_protocol, new_protocol = old.get("protocol"), config.get("protocol")
            if isinstance(old_protocol, dict) and isinstance(new_protocol, dict):
                defaults = protocol_defaults or {}
                for k in sorted(set(old_protocol) | set(new_protocol)):
                    old_value, new_value = old_protocol.get(k, defaults.get(k)), new_protocol.get(k, defaults.get(k))
                    if old_value != new_value:
                        diff[f"protocol.{k}"] = (old_value, new_value)
            if diff:
                changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
                raise BenchError(f"{self.run_dir} holds a run with other settings ({changes}); "
                                 f"use another --out directory to keep both (with make: OUT=<folder>)")
            old_datasets = old.get("datasets")
            old_data: dict = old_datasets if isinstance(old_datasets, dict) else {}
            named = {digest: name for name, digest in old_data.items()}
            for name, digest in sorted((config.get("datasets") or {}).items()):
                if named.get(digest, name) != name:
                    raise BenchError(f"dataset {name} holds the same data (content hash {digest}) as dataset "
                                     f"{named[digest]}, which an earlier run put into {self.run_dir}: under two "
                                     f"names it would count twice in the leaderboard. Give it its earlier name "
                                     f"({named[digest]}), or use another --out directory")
                if old_data.get(name) not in (None, digest):
                    notes.append(f"dataset {name} changed since the last run into this folder (content hash "
                                 f"{old_data[name]} -> {digest}): its jobs are run again")
            config = {**old, **config, "models": sorted(set(old.get("models", [])) | set(config.get("models", []))),
                      "datasets": {**old_data, **(config.get("datasets") or {})}}
        # Names this run's Optuna studies in a storage shared with other runs; kept on resume.
        config.setdefault("run_id", uuid.uuid4().hex[:12])
        return config, notes

    def write_config(self, config: dict) -> None:
        write_json_atomic(self.run_dir / "run.json", config, self.run_dir)

    def config(self) -> dict:
        """run.json ({} when there is none); BenchError naming the file when it is not a JSON object."""
        return self._read_object("run.json")

    def plan(self) -> dict:
        """plan.json ({} when there is none): {"datasets": {name: {...}}, "jobs": {job_id: {...}}}."""
        return self._read_object("plan.json")

    def write_plan(self, datasets: dict, jobs: dict) -> None:
        """Add this run's datasets and jobs to plan.json (a job planned again replaces its entry)."""
        old = self.plan()
        write_json_atomic(self.run_dir / "plan.json", {
            "datasets": {**(old.get("datasets") or {}), **datasets}, "jobs": {**(old.get("jobs") or {}), **jobs}},
            self.run_dir)

    def _read_object(self, name: str) -> dict:
        path = self.run_dir / name
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BenchError(f"{path} is unreadable ({exc}); restore it, or move it away to start the folder "
                             f"afresh") from None
        if not isinstance(data, dict):
            raise BenchError(f"{path} holds {type(data).__name__}, not a JSON object; restore it, or move it "
                             f"away to start the folder afresh")
        return data

    # --- records -------------------------------------------------------------------------------
    def path_for(self, job_id: str, variant: str) -> Path:
        dataset, model, split = job_id.split("/")
        return self.records_dir / dataset / model / f"{split}.{variant}.json"

    def write(self, records: list[dict]) -> None:
        for record in records:
            path = self.path_for(record["job_id"], record["variant"])
            try:
                write_json_atomic(path, record, self.run_dir)
            except OSError as exc:
                raise BenchError(f"cannot write the record {path}: {exc.strerror or exc}. The sweep stopped; "
                                 f"records written before are kept: fix the problem and run the same "
                                 f"command to resume") from None

    def read(self, job_id: str, variant: str) -> dict | None:
        """The record, or None when it is missing, unreadable or invalid (bench.records.schema)."""
        return _read_record(self.path_for(job_id, variant))

    def job_state(self, job, retry_failed: bool = False) -> str:
        """done | missing | stale (made for other data, splits or settings) | retry (a failure, with
        retry_failed) | unavailable (the model could not run here: checked again, cheaply, every run) |
        predictions (done, but the predictions file its records name is missing or damaged: the job is
        run again from scratch, bench.execution.jobs.from_scratch_if_damaged)."""
        states = []
        for variant in job.variants:
            rec = self.read(job.job_id, variant)
            if rec is None:
                states.append("missing")
            elif (rec.get("dataset_hash") != job.dataset_hash or rec["split"].get("hash") != job.split_hash
                  or rec.get("job_key", job.key) != job.key):  # records from before job_key: hashes only
                states.append("stale")
            elif rec.get("status") == Status.UNAVAILABLE:
                states.append("unavailable")
            elif retry_failed and rec.get("status") in FAILURES:
                states.append("retry")
            else:
                states.append("done")
        for state in ("stale", "retry", "missing", "unavailable"):
            if state in states:
                return state
        return "predictions" if self._predictions_problem(job) else "done"

    def _predictions_problem(self, job) -> str | None:
        """Why the predictions file the job's ok records name cannot be used (missing, truncated,
        overwritten: a quick check, bench.tuning.predictions.check_predictions_file), or None."""
        from bench.tuning.predictions import check_predictions_file

        for variant in job.variants:
            rec = self.read(job.job_id, variant) or {}
            name = (rec.get("predictions") or {}).get("file") if rec.get("status") == Status.OK else None
            if isinstance(name, str):
                path = self.run_dir / name
                if not path.resolve().is_relative_to(self.run_dir.resolve()):
                    return None  # not a file of this folder's (bench verify names it)
                return check_predictions_file(path, thorough=False)
        return None

    def is_done(self, job, retry_failed: bool = False) -> bool:
        """True when every variant has a record for this exact dataset and split content and settings
        (and the model was available when it ran)."""
        return self.job_state(job, retry_failed) == "done"

    def restrict(self, paths) -> None:
        """From now on, reads return only these record files (bench.records.integrity's usable ones)."""
        self.only = {Path(p).resolve() for p in paths}

    def record_files(self) -> list[Path]:
        return sorted(self.records_dir.rglob("*.json"))

    def load_all(self) -> list[dict]:
        """Every valid record (unreadable and invalid files are left out: `bench verify` names them)."""
        out = []
        for path in self.record_files():
            if self.only is not None and path.resolve() not in self.only:
                continue
            record = _read_record(path)
            if record is not None:
                out.append(record)
        return out

    def frame(self, records: list[dict] | None = None) -> pd.DataFrame:
        """One row per record with the columns leaderboards and reports need (bench.records.schema.FIELDS)
        and `record`, the record's file. `records`: load_all()'s, when the caller has read them already
        (every record file is read and parsed once)."""
        rows = [{**frame_row(r), "record": str(self.path_for(r["job_id"], r["variant"]).relative_to(self.run_dir))}
                for r in map(upgrade_record, self.load_all() if records is None else records)]
        return pd.DataFrame(rows)

    def write_table(self, frame: pd.DataFrame | None = None) -> Path:
        """records.parquet: `frame` (this store's frame(), when the caller has it), else built here."""
        frame = self.frame() if frame is None else frame
        return write_atomic(self.run_dir / "records.parquet", lambda f: frame.to_parquet(f, index=False), self.run_dir)


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # e.g. torn by a crash in the middle of a plain write
    return record if not validate_record(record) else None
