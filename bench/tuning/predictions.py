"""Every completed trial's validation and test predictions, kept per job for post-hoc ensembles.

One file per job: <run>/predictions/<dataset>/<model>/r<R>f<F>.npz (np.savez_compressed, float32):
    val_<n>, test_<n>  trial n's validation predictions (the holdout's, or with inner_folds K > 1 the
                       out-of-fold predictions over the outer training rows) and test predictions (the
                       K fold models' mean): values for regression; for classification the natural log
                       of the probabilities (meta `encoding: log_proba`; `load` returns probabilities)
    y_val              the labels the validation predictions are scored against (no test labels)
    meta               JSON: job_key, study_uid, per-trial value / fit and predict seconds / is_default,
                       the cap and which trials it dropped
Why log-probabilities: float32 cannot tell 1 - 1e-8 from 1, so stored probabilities near 1 (common
for GBDTs on easy data) would collapse into ties and change ROC AUC; log p keeps the relative precision
of both 1 - p and small p. The trials a process runs itself are also kept in memory in float64, so a
job's ensemble is computed from exactly the predictions its trials were scored with (an ensemble of
the tuned trial alone has the tuned record's scores bit for bit); only trials of an earlier, killed
process and the cross-model ensemble read the float32 files.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.safe_files import write_atomic

MAX_TRIALS = 50  # Caruana selection with 40 iterations picks at most 40 distinct members anyway
MAX_MB = 64.0
LOG_PROBA, VALUES = "log_proba", "values"  # meta `encoding`
_TINY = 1e-300  # log(0) would be -inf: probabilities are floored here (log loss clips at 1e-15 anyway)


def encode(pred, classification: bool) -> np.ndarray:
    pred = np.asarray(pred, dtype="float64")
    return (np.log(np.maximum(pred, _TINY)) if classification else pred).astype(np.float32)


def decode(stored: np.ndarray, encoding: str) -> np.ndarray:
    """float64 predictions as metrics take them (probability rows renormalized after float32)."""
    values = np.asarray(stored, dtype="float64")
    if encoding != LOG_PROBA:
        return values
    proba = np.exp(values)
    return proba / proba.sum(axis=1, keepdims=True)


@dataclass
class Stored:
    """A job's kept predictions (float64, decoded), in trial-number order."""
    numbers: list[int]
    val: dict[int, np.ndarray]
    test: dict[int, np.ndarray]
    y_val: np.ndarray | None
    trials: dict[int, dict]  # number -> {"value", "fit_seconds", "predict_seconds", "is_default"}
    info: dict = field(default_factory=dict)  # what the record says: counts, cap
    dropped: list[int] = field(default_factory=list)  # trials the cap dropped (kept in the file only)
    raw: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # (val, test) as stored
    encoding: str = VALUES


def trial_limit(bytes_per_trial: int, max_trials: int | None = None, max_mb: float | None = None) -> int:
    """How many trials fit the cap (at least 1: the best trial is always kept)."""
    max_trials = MAX_TRIALS if max_trials is None else max_trials
    max_mb = MAX_MB if max_mb is None else max_mb
    return max(1, min(max_trials, int(max_mb * 1e6 // max(1, bytes_per_trial))))


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomic: a reader never sees half a file (bench.safe_files; the job's paths in its run folder are
    checked for links before it starts, bench.execution.joblog)."""
    # numpy's stub has the keyword allow_pickle: bool, which mypy checks every **arrays value against.
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays))  # type: ignore[arg-type]


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
            numbers, enc = sorted(trials), meta.get("encoding", VALUES)
            raw = {n: (data[f"val_{n}"], data[f"test_{n}"]) for n in numbers}
            return Stored(numbers, {n: decode(raw[n][0], enc) for n in numbers},
                          {n: decode(raw[n][1], enc) for n in numbers},
                          data["y_val"] if "y_val" in data else None, trials, meta.get("info", {}),
                          list(meta.get("dropped_trials", [])), raw, enc)
    except (OSError, KeyError, ValueError, EOFError):
        return None


class TrialPredictions:
    """The predictions of one job's trials while it tunes (see the module docstring)."""

    def __init__(self, path: Path, job_key: str, study_uid: str, y_val: np.ndarray, maximize: bool,
                 classification: bool, max_trials: int | None = None, max_mb: float | None = None):
        self.path, self.job_key, self.study_uid, self.maximize = Path(path), job_key, study_uid, maximize
        self.classification = classification
        self.encoding = LOG_PROBA if classification else VALUES
        self.memory: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # this process's trials, float64
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
        """Store one completed trial's predictions (float32 file, float64 in memory); False when they
        are not finite (the trial then cannot be an ensemble member)."""
        exact = np.asarray(val_pred, dtype="float64"), np.asarray(test_pred, dtype="float64")
        if not all(np.all(np.isfinite(a)) for a in exact):
            return False
        val, test = (encode(a, self.classification) for a in exact)
        if self.limit is None:
            self.limit = trial_limit(val.nbytes + test.nbytes, self.max_trials, self.max_mb)
        trial = {"value": float(value), "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                 "is_default": bool(is_default)}
        meta = {"job_key": self.job_key, "study_uid": self.study_uid, "number": number, "trial": trial,
                "limit": self.limit, "encoding": self.encoding}
        _write_npz(self.parts / f"{number}.npz", {"val": val, "test": test, "meta": _meta_array(meta)})
        self.trials[number] = trial
        self.memory[number] = exact
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
            self.memory.pop(number, None)
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
        raw, val, test = {}, {}, {}  # raw: the float32 arrays for the file
        for n in numbers:
            part = self.parts / f"{n}.npz"
            if part.exists():
                with np.load(part, allow_pickle=False) as data:
                    raw[n] = data["val"], data["test"]
                    enc = json.loads(str(data["meta"])).get("encoding", VALUES)
            elif self.old is not None:
                raw[n], enc = self.old.raw[n], self.old.encoding
            else:  # its part file was removed by someone else since this process listed it
                raise RuntimeError(f"{self.path}: the predictions of trial {n} are in neither {part} nor a merged file")
            val[n], test[n] = self.memory.get(n) or (decode(raw[n][0], enc), decode(raw[n][1], enc))
        without = sorted(complete - set(numbers) - self.dropped)
        info = {"study_uid": self.study_uid, "kept": len(numbers), "without": len(without),
                "cap": {"max_trials": MAX_TRIALS if self.max_trials is None else self.max_trials,
                        "max_mb": MAX_MB if self.max_mb is None else self.max_mb, "limit": self.limit,
                        "dropped": len(self.dropped & complete)}}
        arrays = {f"val_{n}": raw[n][0] for n in numbers} | {f"test_{n}": raw[n][1] for n in numbers}
        meta = {"job_key": self.job_key, "study_uid": self.study_uid, "dropped_trials": sorted(self.dropped),
                "encoding": self.encoding, "trials": {str(n): self.trials[n] for n in numbers}, "info": info}
        _write_npz(self.path, {**arrays, "y_val": self.y_val, "meta": _meta_array(meta)})
        if self.parts.is_dir():
            for part in self.parts.glob("*.npz"):
                part.unlink(missing_ok=True)
            try:
                self.parts.rmdir()
            except OSError:
                pass  # another tuner's part arrived meanwhile: its own finish merges it
        return Stored(numbers, val, test, self.y_val, {n: self.trials[n] for n in numbers}, info,
                      sorted(self.dropped), raw, self.encoding)
