"""Hand-made records with known answers, written through ResultStore.write like a real run's."""

from __future__ import annotations

from pathlib import Path

from bench.records.schema import SCHEMA_VERSION, trial_counts
from bench.records.store import ResultStore
from bench.vocabulary import Status

TASKS = {"binary": ("roc_auc", "maximize"), "multiclass": ("log_loss", "minimize"),
         "regression": ("rmse", "minimize")}


def trial(number: int, value, test_score, state: str = "COMPLETE", end: str = "converged") -> dict:
    return {"number": number, "state": state, "value": value, "test_score": test_score, "is_default": number == 0,
            "params": {}, "seconds": 1.0, "fit_seconds": 0.9, "error": None, "end": end}


def record(dataset: str, model: str, variant: str, split: int = 0, status: str = Status.OK, score=None,
           task_type: str = "binary", trials: list[dict] | None = None, trial_number: int | None = None,
           family: str = "gbdt", **extra) -> dict:
    objective, direction = TASKS[task_type]
    out = {"schema_version": SCHEMA_VERSION, "job_id": f"{dataset}/{model}/r0f{split}", "suite": "hand",
           "dataset": dataset, "dataset_hash": f"h-{dataset}", "split": {"index": split, "hash": f"s{split}"},
           "model": model, "variant": variant, "family": family, "status": status, "task_type": task_type,
           "objective": objective, "direction": direction, "n_rows": 500, "n_features": 5, "n_categorical": 0}
    if status == Status.OK:
        out.update({"test_score": score, "test": {objective: score}, "val_score": score,
                    "fit_seconds": 2.0, "predict_seconds": 0.5, "trial_number": trial_number or 0})
    elif status in (Status.SKIPPED, Status.UNAVAILABLE):
        out["reason"] = f"{status} by hand"
    else:
        out["error"] = {"type": "RuntimeError", "message": "failed by hand"}
    if trials is not None:
        out["trials"] = trials
        out["trial_counts"] = trial_counts(trials)
        chosen = next((t for t in trials if t["number"] == out.get("trial_number")), None)
        if status == Status.OK and chosen is not None and chosen["value"] is not None:
            out["val_score"] = chosen["value"]  # as in a real record (bench verify checks it)
    out.update(extra)
    return out


def write_run(run_dir: Path, records: list[dict], **config) -> ResultStore:
    store = ResultStore(run_dir)
    store.check_config({"suite": "hand", "trials": 3, "seed": 0, "models": sorted({r["model"] for r in records}),
                        **config})
    store.write(records)
    return store
