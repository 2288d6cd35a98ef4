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
of both 1 - p and small p. The file is what the cross-model ensemble reads.

Exact while tuning: while a job tunes, each completed trial's arrays go to r<R>f<F>.parts/<n>.npz
(atomic) in float64, exactly as the trial was scored, *before* Optuna marks the trial complete, so every
trial a resumed study holds as COMPLETE has its predictions, also after kill -9, and a job's ensemble is
computed from exactly the predictions its trials were scored with whether or not a kill came between
(an ensemble of the tuned trial alone has the tuned record's scores bit for bit, resumed or not). Once
the job's variants are computed the parts are merged into the job's float32 file (atomic) and removed.
Only a job killed in the moment between that merge and its records being written reads its trials back
from the float32 file; its records then say so (`from_float32_file`). A COMPLETE trial without
predictions (a study begun by a version that kept none) is left out of the ensembles and counted
(`without`).

Stale files are never mixed in: a file (or part) is used only when its job key (the job's settings)
and its study's uid (a fresh study, e.g. --retry-failed, gets a new one) are the current ones.

Damaged files (truncated, overwritten, unreadable): check_predictions_file says what is wrong with one
file (also for `bench verify`), damaged_files lists a job's; set_aside renames one to
<name>.damaged-<UTC time> (kept for inspection, never read again). A job that finds its own damaged
sets them aside and is run from scratch (bench.execution.jobs); the cross-model ensemble leaves a
member whose file is damaged out, naming why (bench.execution.ensembles).

Cap (documented bound on disk use): at most MAX_TRIALS trials per job, and at most MAX_MB megabytes
of float32 arrays (uncompressed) per job; over it, the best trials by validation value are kept (ties:
the earlier trial) and the record says how many the cap dropped. Compressed files are smaller still.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.safe_files import write_atomic

MAX_TRIALS = 50  # Caruana selection with 40 iterations picks at most 40 distinct members anyway
MAX_MB = 64.0
LOG_PROBA, VALUES = "log_proba", "values"  # meta `encoding` of the job's file
EXACT = "float64"  # meta `encoding` of a part: the predictions as the trial was scored with them
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
    checked for links before it starts, bench.execution.joblog). Without fsync (it was most of a small
    job's harness cost): a kill never tears a renamed file, and a file a power cut tears fails
    check_predictions_file: a part is set aside, a job's file makes the job run again from scratch."""
    # numpy's stub has the keyword allow_pickle: bool, which mypy checks every **arrays value against.
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays), sync=False)  # type: ignore[arg-type]


def _meta_array(meta: dict) -> np.ndarray:
    return np.array(json.dumps(meta, sort_keys=True))


class DamagedPredictions(ValueError):
    """A predictions file that exists but cannot be read back whole."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def check_predictions_file(path: Path | str, thorough: bool = True) -> str | None:
    """What is wrong with a predictions file (a job's file or one trial's part), or None when it reads
    back whole: a zip archive whose meta parses and whose arrays, every one the meta names, decompress
    with matching checksums and parse as arrays. A missing file is "missing". thorough=False reads the
    archive's directory and meta only (a truncated or overwritten file; no array is decompressed)."""
    path = Path(path)
    if not path.exists():
        return "missing"
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if not isinstance(meta, dict):
                return "its meta is not a JSON object"
            names = ["val", "test"] if "number" in meta else \
                ["y_val", *(f"{kind}_{n}" for n in meta.get("trials", {}) for kind in ("val", "test"))]
            absent = [name for name in names if name not in data.files]
            if absent:
                return f"arrays named by its meta are missing: {', '.join(absent[:5])}"
            for name in names if thorough else ():
                data[name]  # decompresses the array: a truncated or altered one fails its checksum here
    except Exception as exc:  # zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError ...
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def damaged_files(path: Path | str) -> dict[Path, str]:
    """A job's damaged predictions files (its merged file and its trials' parts) and what is wrong."""
    path = Path(path)
    files = [path] if path.exists() else []
    parts = path.with_suffix(".parts")
    files += sorted(parts.glob("*.npz")) if parts.is_dir() else []
    return {f: problem for f in files if (problem := check_predictions_file(f)) is not None}


def set_aside(path: Path) -> Path:
    """Rename a damaged file to <name>.damaged-<UTC time> beside it; returns the new path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    os.replace(path, target)
    return target


def read_meta(path: Path) -> dict | None:
    """The file's meta (None when missing or unreadable); reads no prediction array."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"]))
    except Exception:  # any damage: the caller treats the file as unusable
        return None


def load(path: Path, job_key: str | None = None, study_uid: str | None = None) -> Stored | None:
    """A job's file, or None when it is missing or made for another key / study. Raises
    DamagedPredictions when the file exists but cannot be read back whole."""
    if not Path(path).exists():
        return None
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
    except Exception as exc:  # zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError ...
        raise DamagedPredictions(Path(path), f"{type(exc).__name__}: {exc}") from exc


class TrialPredictions:
    """The predictions of one job's trials while it tunes (see the module docstring)."""

    def __init__(self, path: Path, job_key: str, study_uid: str, y_val: np.ndarray, maximize: bool,
                 classification: bool, max_trials: int | None = None, max_mb: float | None = None,
                 persistent: bool = True):
        """persistent=False: the study lives in memory, so nothing resumes it: trials are kept in memory
        only (no part files) and no earlier file is read; write() still writes the job's file."""
        self.path, self.job_key, self.study_uid, self.maximize = Path(path), job_key, study_uid, maximize
        self.classification = classification
        self.encoding = LOG_PROBA if classification else VALUES
        self.memory: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # this process's trials, float64
        self.parts = self.path.with_suffix(".parts")
        self.y_val = np.asarray(y_val)
        self.max_trials, self.max_mb = max_trials, max_mb
        self.set_aside: list[str] = []  # damaged files found here, renamed (bench.execution.jobs says so)
        self.persistent = persistent
        try:
            old = load(self.path, job_key, study_uid) if persistent else None
        except DamagedPredictions as exc:
            old = None
            self._set_aside(self.path, exc.reason)
        self.old = old  # the merged file of an earlier, interrupted or finished, process
        self.trials: dict[int, dict] = dict(old.trials) if old else {}
        self.dropped: set[int] = set(old.dropped) if old else set()
        self.limit: int | None = (old.info.get("cap") or {}).get("limit") if old else None
        for part in sorted(self.parts.glob("*.npz")) if persistent and self.parts.is_dir() else []:
            meta = read_meta(part)
            if meta is None:
                self._set_aside(part, "unreadable")
            elif meta.get("job_key") == job_key and meta.get("study_uid") == study_uid:
                self.trials[int(meta["number"])] = meta["trial"]
                self.limit = self.limit or meta.get("limit")
            else:
                part.unlink(missing_ok=True)  # another study's or settings' trial: never mixed in

    def _set_aside(self, path: Path, why: str) -> None:
        moved = set_aside(path)
        self.set_aside.append(f"{moved.name}: {why}")

    def add(self, number: int, value: float, val_pred, test_pred, fit_seconds: float | None,
            predict_seconds: float | None, is_default: bool) -> bool:
        """Store one completed trial's predictions (float64 part file and memory); False when they are
        not finite (the trial then cannot be an ensemble member)."""
        exact = np.asarray(val_pred, dtype="float64"), np.asarray(test_pred, dtype="float64")
        if not all(np.all(np.isfinite(a)) for a in exact):
            return False
        if self.limit is None:  # the cap counts the float32 arrays of the job's file
            self.limit = trial_limit((exact[0].nbytes + exact[1].nbytes) // 2, self.max_trials, self.max_mb)
        trial = {"value": float(value), "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                 "is_default": bool(is_default)}
        meta = {"job_key": self.job_key, "study_uid": self.study_uid, "number": number, "trial": trial,
                "limit": self.limit, "encoding": EXACT}
        if self.persistent:
            _write_npz(self.parts / f"{number}.npz", {"val": exact[0], "test": exact[1], "meta": _meta_array(meta)})
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

    def collect(self, complete: set[int]) -> Stored:
        """The predictions of the trials the study holds as COMPLETE (parts of trials that never
        completed, e.g. killed after their part was written, are left out), float64 as the trials were
        scored wherever this process or a part has them. Writes nothing: write() merges afterwards."""
        for number in [n for n in self.trials if n not in complete]:
            del self.trials[number]
        self._cap()
        numbers = sorted(self.trials)
        raw, val, test, from_file = {}, {}, {}, 0  # raw: the float32 arrays for the file
        for n in numbers:
            part = self.parts / f"{n}.npz"
            if n in self.memory:
                val[n], test[n] = self.memory[n]
            elif part.exists():
                with np.load(part, allow_pickle=False) as data:
                    arrays, enc = (data["val"], data["test"]), json.loads(str(data["meta"])).get("encoding", VALUES)
                if enc == EXACT:
                    val[n], test[n] = (np.asarray(a, dtype="float64") for a in arrays)
                else:  # a part written by a version that stored them encoded
                    raw[n] = arrays
                    val[n], test[n] = decode(arrays[0], enc), decode(arrays[1], enc)
            elif self.old is not None:
                raw[n] = self.old.raw[n]
                val[n], test[n] = self.old.val[n], self.old.test[n]
                from_file += 1
            else:  # its part file was removed by someone else since this process listed it
                raise RuntimeError(f"{self.path}: the predictions of trial {n} are in neither {part} nor a merged file")
            if n not in raw:
                raw[n] = encode(val[n], self.classification), encode(test[n], self.classification)
        without = sorted(complete - set(numbers) - self.dropped)
        info = {"study_uid": self.study_uid, "kept": len(numbers), "without": len(without),
                "from_float32_file": from_file,
                "cap": {"max_trials": MAX_TRIALS if self.max_trials is None else self.max_trials,
                        "max_mb": MAX_MB if self.max_mb is None else self.max_mb, "limit": self.limit,
                        "dropped": len(self.dropped & complete)}}
        if self.set_aside:
            info["set_aside"] = list(self.set_aside)
        return Stored(numbers, val, test, self.y_val, {n: self.trials[n] for n in numbers}, info,
                      sorted(self.dropped), raw, self.encoding)

    def write(self, stored: Stored) -> None:
        """Merge `stored` (from collect) into the job's float32 file, atomically, then remove the parts."""
        arrays = {f"val_{n}": stored.raw[n][0] for n in stored.numbers} | \
            {f"test_{n}": stored.raw[n][1] for n in stored.numbers}
        meta = {"job_key": self.job_key, "study_uid": self.study_uid, "dropped_trials": stored.dropped,
                "encoding": self.encoding, "trials": {str(n): stored.trials[n] for n in stored.numbers},
                "info": stored.info}
        _write_npz(self.path, {**arrays, "y_val": self.y_val, "meta": _meta_array(meta)})
        if self.parts.is_dir():
            for part in self.parts.glob("*.npz"):
                part.unlink(missing_ok=True)
            try:
                self.parts.rmdir()
            except OSError:
                pass  # another tuner's part arrived meanwhile (or a damaged part set aside): its own finish merges it
