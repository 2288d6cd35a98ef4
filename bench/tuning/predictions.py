"""Every completed trial's validation and test predictions, kept per job for post-hoc ensembles.

One file per job: <run>/predictions/<dataset>/<model>/r<R>f<F>.npz (np.savez_compressed, float32):
    val_<n>, test_<n>  trial n's validation predictions (the holdout's, or with inner_folds K > 1 the
                       out-of-fold predictions over the outer training rows) and test predictions (the
                       K fold models' mean); probabilities for classification, values for regression
    y_val              the labels the validation predictions are scored against (no test labels)
    meta               JSON: job_key, study_uid, per-trial value / fit and predict seconds / is_default,
                       the cap and which trials it dropped
Stale files are never mixed in: a file (or part) is used only when its job key (the job's settings)
and its study's uid (a fresh study, e.g. --retry-failed, gets a new one) are the current ones.

Resume: while a job tunes, each completed trial's arrays go to r<R>f<F>.parts/<n>.npz (atomic)
*before* Optuna marks the trial complete, so every trial a resumed study holds as COMPLETE has its
predictions, also after kill -9. When tuning ends the parts are merged into the job's file (atomic)
and removed. A COMPLETE trial without predictions (a study begun by a version that kept none) is left
out of the ensembles and counted (`without`).

Cap (documented bound on disk use): at most MAX_TRIALS trials per job, and at most MAX_MB megabytes
of float32 arrays (uncompressed) per job; over it, the best trials by validation value are kept (ties:
the earlier trial) and the record says how many the cap dropped. Compressed files are smaller still.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_TRIALS = 50  # Caruana selection with 40 iterations picks at most 40 distinct members anyway
MAX_MB = 64.0


@dataclass
class Stored:
    """A job's kept predictions, in trial-number order."""
    numbers: list[int]
    val: dict[int, np.ndarray]
    test: dict[int, np.ndarray]
    y_val: np.ndarray | None
    trials: dict[int, dict]  # number -> {"value", "fit_seconds", "predict_seconds", "is_default"}
    info: dict = field(default_factory=dict)  # what the record says: counts, cap
    dropped: list[int] = field(default_factory=list)  # trials the cap dropped (kept in the file only)


def trial_limit(bytes_per_trial: int, max_trials: int | None = None, max_mb: float | None = None) -> int:
    """How many trials fit the cap (at least 1: the best trial is always kept)."""
    max_trials = MAX_TRIALS if max_trials is None else max_trials
    max_mb = MAX_MB if max_mb is None else max_mb
    return max(1, min(max_trials, int(max_mb * 1e6 // max(1, bytes_per_trial))))


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomic: a reader never sees half a file (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _meta_array(meta: dict) -> np.ndarray:
    return np.array(json.dumps(meta, sort_keys=True))


def read_meta(path: Path) -> dict | None:
    """The file's meta (None when missing or unreadable); reads no prediction array."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"]))
    except (OSError, KeyError, ValueError, EOFError):
        return None


def load(path: Path, job_key: str | None = None, study_uid: str | None = None) -> Stored | None:
    """A job's file, or None when it is missing, unreadable or made for another key / study."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if (job_key is not None and meta.get("job_key") != job_key) or \
                    (study_uid is not None and meta.get("study_uid") != study_uid):
                return None
            trials = {int(k): v for k, v in meta.get("trials", {}).items()}
            numbers = sorted(trials)
            return Stored(numbers, {n: data[f"val_{n}"] for n in numbers}, {n: data[f"test_{n}"] for n in numbers},
                          data["y_val"] if "y_val" in data else None, trials, meta.get("info", {}),
                          list(meta.get("dropped_trials", [])))
    except (OSError, KeyError, ValueError, EOFError):
        return None


class TrialPredictions:
    """The predictions of one job's trials while it tunes (see the module docstring)."""

    def __init__(self, path: Path, job_key: str, study_uid: str, y_val: np.ndarray, maximize: bool,
                 max_trials: int | None = None, max_mb: float | None = None):
        self.path, self.job_key, self.study_uid, self.maximize = Path(path), job_key, study_uid, maximize
        self.parts = self.path.with_suffix(".parts")
        self.y_val = np.asarray(y_val)
        self.max_trials, self.max_mb = max_trials, max_mb
        old = load(self.path, job_key, study_uid)
        self.old = old  # the merged file of an earlier, interrupted or finished, process
        self.trials: dict[int, dict] = dict(old.trials) if old else {}
        self.dropped: set[int] = set(old.dropped) if old else set()
        self.limit: int | None = (old.info.get("cap") or {}).get("limit") if old else None
        for part in sorted(self.parts.glob("*.npz")) if self.parts.is_dir() else []:
            meta = read_meta(part)
            if meta and meta.get("job_key") == job_key and meta.get("study_uid") == study_uid:
                self.trials[int(meta["number"])] = meta["trial"]
                self.limit = self.limit or meta.get("limit")
            else:
                part.unlink(missing_ok=True)  # another study's or settings' trial: never mixed in

    def add(self, number: int, value: float, val_pred, test_pred, fit_seconds: float | None,
            predict_seconds: float | None, is_default: bool) -> bool:
        """Store one completed trial's predictions (float32); False when they are not finite (the
        trial then cannot be an ensemble member)."""
        val = np.asarray(val_pred, dtype=np.float32)
        test = np.asarray(test_pred, dtype=np.float32)
        if not (np.all(np.isfinite(val)) and np.all(np.isfinite(test))):
            return False
        if self.limit is None:
            self.limit = trial_limit(val.nbytes + test.nbytes, self.max_trials, self.max_mb)
        trial = {"value": float(value), "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                 "is_default": bool(is_default)}
        meta = {"job_key": self.job_key, "study_uid": self.study_uid, "number": number, "trial": trial,
                "limit": self.limit}
        _write_npz(self.parts / f"{number}.npz", {"val": val, "test": test, "meta": _meta_array(meta)})
        self.trials[number] = trial
        self._cap()
        return True

    def _ranked(self, numbers) -> list[int]:
        sign = -1.0 if self.maximize else 1.0
        return sorted(numbers, key=lambda n: (sign * self.trials[n]["value"], n))

    def _cap(self) -> None:
        """Drop the worst trials by validation beyond the limit (their part files too)."""
        if self.limit is None or len(self.trials) <= self.limit:
            return
        for number in self._ranked(self.trials)[self.limit:]:
            del self.trials[number]
            self.dropped.add(number)
            (self.parts / f"{number}.npz").unlink(missing_ok=True)

    def finish(self, complete: set[int]) -> Stored:
        """Merge into the job's file the predictions of the trials the study holds as COMPLETE (parts
        of trials that never completed, e.g. killed after their part was written, are left out), then
        remove the parts."""
        for number in [n for n in self.trials if n not in complete]:
            del self.trials[number]
        self._cap()
        numbers = sorted(self.trials)
        val, test = {}, {}
        for n in numbers:
            part = self.parts / f"{n}.npz"
            if part.exists():
                with np.load(part, allow_pickle=False) as data:
                    val[n], test[n] = data["val"], data["test"]
            else:
                val[n], test[n] = self.old.val[n], self.old.test[n]
        without = sorted(complete - set(numbers) - self.dropped)
        info = {"study_uid": self.study_uid, "kept": len(numbers), "without": len(without),
                "cap": {"max_trials": MAX_TRIALS if self.max_trials is None else self.max_trials,
                        "max_mb": MAX_MB if self.max_mb is None else self.max_mb, "limit": self.limit,
                        "dropped": len(self.dropped & complete)}}
        arrays = {f"val_{n}": val[n] for n in numbers} | {f"test_{n}": test[n] for n in numbers}
        meta = {"job_key": self.job_key, "study_uid": self.study_uid, "dropped_trials": sorted(self.dropped),
                "trials": {str(n): self.trials[n] for n in numbers}, "info": info}
        _write_npz(self.path, {**arrays, "y_val": self.y_val, "meta": _meta_array(meta)})
        if self.parts.is_dir():
            for part in self.parts.glob("*.npz"):
                part.unlink(missing_ok=True)
            try:
                self.parts.rmdir()
            except OSError:
                pass  # another tuner's part arrived meanwhile: its own finish merges it
        return Stored(numbers, val, test, self.y_val, {n: self.trials[n] for n in numbers}, info,
                      sorted(self.dropped))
