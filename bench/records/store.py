"""The results store: one JSON record per job and variant, written atomically, plus a Parquet table.

Layout of a run directory:
    run.json                                   the run's fixed configuration (suite, budget, seed)
    records/<dataset>/<model>/r<R>f<F>.<variant>.json
    optuna/<study>.db                          per-job Optuna studies (resume state)
    logs/<dataset>/<model>/r<R>f<F>.log        each job's output (bench.execution.joblog)
    records.parquet, leaderboard*.csv/.md      derived, rebuilt from the records at any time

A record file exists only once it is complete (write to a temp file, fsync, rename), so a killed sweep
never leaves a half record that could be read as valid; an unreadable file is treated as missing.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd

from bench.datasets import write_json_atomic
from bench.errors import BenchError
from bench.records.schema import FAILURES, Status, upgrade_record

# Settings that change results: re-running into the same directory with other values would mix runs.
RUN_IDENTITY = ("suite", "trials", "tune_seconds", "seed", "max_splits", "seeds", "sampler", "inner_folds")
# What a run.json written before a setting existed implicitly used.
IDENTITY_DEFAULTS = {"seeds": 1, "sampler": "tpe", "inner_folds": 1}


class ResultStore:
    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.records_dir = self.run_dir / "records"

    # --- run configuration ---------------------------------------------------------------------
    def check_config(self, config: dict) -> None:
        path = self.run_dir / "run.json"
        if path.exists():
            old = json.loads(path.read_text())
            known = lambda c, k: c.get(k, IDENTITY_DEFAULTS.get(k))  # noqa: E731
            diff = {k: (known(old, k), known(config, k)) for k in RUN_IDENTITY if known(old, k) != known(config, k)}
            if diff:
                changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
                raise BenchError(f"{self.run_dir} holds a run with other settings ({changes}); "
                                 f"use another --out directory to keep both")
            config = {**old, **config, "models": sorted(set(old.get("models", [])) | set(config.get("models", [])))}
        # Names this run's Optuna studies in a storage shared with other runs; kept on resume.
        config.setdefault("run_id", uuid.uuid4().hex[:12])
        write_json_atomic(path, config)

    def config(self) -> dict:
        path = self.run_dir / "run.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # --- records -------------------------------------------------------------------------------
    def path_for(self, job_id: str, variant: str) -> Path:
        dataset, model, split = job_id.split("/")
        return self.records_dir / dataset / model / f"{split}.{variant}.json"

    def write(self, records: list[dict]) -> None:
        for record in records:
            write_json_atomic(self.path_for(record["job_id"], record["variant"]), record)

    def read(self, job_id: str, variant: str) -> dict | None:
        path = self.path_for(job_id, variant)
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def is_done(self, job, retry_failed: bool = False) -> bool:
        """True when every variant has a record for this exact dataset and split content (and the model
        was available when it ran)."""
        for variant in job.variants:
            rec = self.read(job.job_id, variant)
            if rec is None or rec.get("dataset_hash") != job.dataset_hash:
                return False
            if rec.get("split", {}).get("hash") != job.split_hash:
                return False
            # unavailable: this environment lacked what the model needs; check again (cheap) every run
            if rec.get("status") == Status.UNAVAILABLE or (retry_failed and rec.get("status") in FAILURES):
                return False
        return True

    def load_all(self) -> list[dict]:
        out = []
        for path in sorted(self.records_dir.rglob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):
                continue  # a file being replaced right now; it is complete on the next read
        return out

    def frame(self) -> pd.DataFrame:
        """One row per record with the columns leaderboards and reports need."""
        rows = []
        for r in map(upgrade_record, self.load_all()):
            counts = r.get("trial_counts") or {}
            device = r.get("device_seconds") or {}
            rows.append({
                "suite": r.get("suite"), "dataset": r["dataset"], "task_type": r.get("task_type"),
                "model": r["model"], "variant": r["variant"], "family": r.get("family"),
                "split": r["split"]["index"], "split_hash": r["split"]["hash"],
                "dataset_hash": r.get("dataset_hash"), "status": r["status"],
                "objective": r.get("objective"), "direction": r.get("direction"),
                "test_score": r.get("test_score"), "val_score": r.get("val_score"),
                "fit_seconds": r.get("fit_seconds"), "predict_seconds": r.get("predict_seconds"),
                "tuning_seconds": r.get("tuning_seconds"), "device": r.get("device"),
                "seed": r.get("seed"), "n_rows": r.get("n_rows"), "n_features": r.get("n_features"),
                "n_categorical": r.get("n_categorical"), "test_score_std": r.get("test_score_std"),
                "n_seeds": sum("error" not in s for s in r.get("test_by_seed") or []) or None,
                "job_id": r["job_id"], "record": str(self.path_for(r["job_id"], r["variant"])
                                                     .relative_to(self.run_dir)),
                "error": (r.get("error") or {}).get("message", r.get("reason")),
                "params": json.dumps(r.get("params"), sort_keys=True) if r.get("params") else None,
                # Budget honesty (bench.records.schema): a tuned record whose only finished trial is the
                # defaults one, and trials the tuning clock cut.
                "only_defaults": r.get("only_defaults"), "clock_cut": counts.get("deadline"),
                "trials_completed": counts.get("completed"), "trials_pruned": counts.get("pruned"),
                "trials_failed": counts.get("failed"),
                "cpu_seconds": device.get("cpu"), "gpu_seconds": device.get("gpu"),
                "sampler": (r.get("budget") or {}).get("sampler"),
                **{f"test_{k}": v for k, v in (r.get("test") or {}).items()},
            })
        return pd.DataFrame(rows)

    def write_table(self) -> Path:
        path = self.run_dir / "records.parquet"
        frame = self.frame()
        tmp = path.with_suffix(".tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(path)
        return path
