"""Outer train/test splits and the inner validation split, frozen on disk with a content hash.

Outer splits: the dataset's own predefined split when the protocol says splits = "predefined"
(bench.suites.predefined: train/val/test parts used row for row, or fold ids), else the OpenML task's own
splits when the dataset came from a task (and the protocol allows it), else seeded (stratified for
classification) K-fold with repeats. The inner validation part, used for early stopping and tuning, is
carved out of the outer training part only (a predefined val part is taken as given), so nothing from
the test part ever reaches tuning, early stopping or preprocessing.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.datasets import Dataset, cache_root
from bench.safe_files import write_atomic
from bench.seeding import validation_seed
from bench.suites.predefined import Assignment


@dataclass(frozen=True)
class Split:
    repeat: int
    fold: int
    train: np.ndarray  # rows the model is fit on
    val: np.ndarray  # rows for early stopping and tuning (taken from the outer training part)
    test: np.ndarray  # rows only the final evaluation sees
    hash: str
    origin: str  # "openml-task", "kfold" or "predefined"

    @property
    def label(self) -> str:
        return f"r{self.repeat}f{self.fold}"


def split_hash(train: np.ndarray, val: np.ndarray, test: np.ndarray) -> str:
    h = hashlib.sha256()
    for part in (train, val, test):
        h.update(np.asarray(part, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()[:16]


def fold_sizes(n_train: int, n_val: int, k: int) -> tuple[int, int]:
    """(rows each model is fit on, rows the validation score is computed on) for a split's training and
    validation parts: with the holdout (k = 1) those parts; with inner K folds (bench.tuning.crossfit) the
    mean training-fold size and the whole outer training part (every row is scored once, out of fold)."""
    if k <= 1:
        return n_train, n_val
    n = n_train + n_val
    return round(n * (k - 1) / k), n


def make_splits(ds: Dataset, protocol, task_splits=None, cache_dir: Path | None = None,
                root: Path | None = None, predefined: Assignment | None = None) -> tuple[list[Split], Path]:
    """All splits of a dataset under a protocol and the file they are frozen in (reused when present).
    `root`: the run folder cache_dir is in (the file is never written outside it, bench.safe_files)."""
    use_task = bool(task_splits) and protocol.use_task_splits and predefined is None
    key = {
        "dataset": ds.content_hash, "folds": protocol.folds, "repeats": protocol.repeats,
        "validation_fraction": protocol.validation_fraction, "seed": protocol.seed,
        "task": ds.source.get("openml_task_id") if use_task else None,
    }
    if predefined is not None:  # the assignment, not the protocol's folds, decides the rows
        key = {"dataset": ds.content_hash, "predefined": predefined.digest(),
               "validation_fraction": protocol.validation_fraction if predefined.form == "folds" else None,
               "seed": protocol.seed if predefined.form == "folds" else None}
    key_hash = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = (cache_dir or cache_root() / "splits") / f"{ds.name}-{key_hash}.npz"
    cached = load_frozen(path)
    if cached is not None:
        return cached, path

    if predefined is not None:
        splits = _predefined(ds, protocol, predefined)
        save_frozen(path, splits, root)
        return splits, path
    outer = list(task_splits) if use_task else _kfold(ds, protocol)
    splits = []
    for repeat, fold, train_outer, test in outer:
        train, val = _inner_validation(ds, np.asarray(train_outer), protocol, repeat, fold)
        test = np.sort(np.asarray(test, dtype=np.int64))
        splits.append(Split(repeat, fold, train, val, test, split_hash(train, val, test),
                            "openml-task" if use_task else "kfold"))
    save_frozen(path, splits, root)
    return splits, path


def splits_or_reason(ds: Dataset, protocol, task_splits=None, cache_dir: Path | None = None,
                     root: Path | None = None,
                     predefined: Assignment | None = None) -> tuple[list[Split], Path | None, str | None]:
    """make_splits, or the reason the dataset is too small for the protocol (then no splits): the
    sweep records such a dataset as `skipped` and goes on with the others."""
    use_task = bool(task_splits) and protocol.use_task_splits
    if ds.n_rows == 0:
        return [], None, "the dataset has no rows"
    if not use_task and predefined is None and ds.n_rows < protocol.folds:
        return [], None, f"too small for the protocol: {ds.n_rows} rows, fewer than protocol.folds = {protocol.folds}"
    try:
        splits, path = make_splits(ds, protocol, task_splits, cache_dir, root, predefined)
    except ValueError as exc:  # sklearn: a part too small to split, or to stratify
        return [], None, (f"too small for the protocol ({ds.n_rows} rows, {protocol.folds} folds, validation "
                          f"fraction {protocol.validation_fraction}): {exc}")
    empty = [s.label for s in splits if not (len(s.train) and len(s.val) and len(s.test))]
    if empty:
        return [], None, (f"too small for the protocol ({ds.n_rows} rows): split(s) {', '.join(empty)} would "
                          f"have an empty training, validation or test part")
    return splits, path, None


def planned_labels(protocol, task_splits=None, predefined: Assignment | None = None) -> list[tuple[int, int]]:
    """(repeat, fold) of every split the protocol asks for, without making them."""
    if predefined is not None:
        return predefined.labels()
    if task_splits and protocol.use_task_splits:
        return [(int(r), int(f)) for r, f, _, _ in task_splits]
    return [(r, f) for r in range(protocol.repeats) for f in range(protocol.folds)]


def _kfold(ds: Dataset, protocol):
    # scikit-learn (~1-4 s to import) only when splits are made: a sweep's parent imports this module
    # before its workers start, and a rerun reads its frozen splits
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    n = ds.n_rows
    if protocol.folds < 2:
        raise ValueError("a K-fold protocol needs folds >= 2")
    if ds.task_type == "regression":
        cv = RepeatedKFold(n_splits=protocol.folds, n_repeats=protocol.repeats, random_state=protocol.seed)
    else:
        counts = np.bincount(ds.y)
        if counts[counts > 0].min() < protocol.folds:
            # Too few rows of some class to stratify: plain shuffled folds keep every row used once.
            cv = RepeatedKFold(n_splits=protocol.folds, n_repeats=protocol.repeats, random_state=protocol.seed)
        else:
            cv = RepeatedStratifiedKFold(n_splits=protocol.folds, n_repeats=protocol.repeats,
                                         random_state=protocol.seed)
    for i, (train, test) in enumerate(cv.split(np.zeros(n), ds.y)):
        yield i // protocol.folds, i % protocol.folds, train, test


def _predefined(ds: Dataset, protocol, assignment: Assignment) -> list[Split]:
    """The dataset's own split(s): its train / val / test parts exactly as given (no re-carving), or one
    split per fold id with the validation part carved from the other folds as for K-fold."""
    if len(assignment.codes) != ds.n_rows:
        raise ValueError(f"predefined split of {len(assignment.codes)} rows for a dataset of {ds.n_rows}")
    if assignment.form == "parts":
        train, val, test = (assignment.rows(code) for code in range(3))
        return [Split(0, 0, train, val, test, split_hash(train, val, test), "predefined")]
    splits = []
    for repeat, fold in assignment.labels():
        test = assignment.rows(fold)
        train, val = _inner_validation(ds, np.flatnonzero(assignment.codes != fold), protocol, repeat, fold)
        splits.append(Split(repeat, fold, train, val, test, split_hash(train, val, test), "predefined"))
    return splits


def _inner_validation(ds: Dataset, train_outer: np.ndarray, protocol, repeat: int, fold: int):
    from sklearn.model_selection import train_test_split

    seed = validation_seed(protocol.seed, repeat, fold)
    stratify = None
    if ds.task_type != "regression":
        counts = np.bincount(ds.y[train_outer])
        if counts[counts > 0].min() >= 2:
            stratify = ds.y[train_outer]
    train, val = train_test_split(train_outer, test_size=protocol.validation_fraction,
                                  random_state=seed, stratify=stratify)
    return np.sort(train).astype(np.int64), np.sort(val).astype(np.int64)


def save_frozen(path: Path, splits: list[Split], root: Path | None = None) -> None:
    arrays = {}
    for i, s in enumerate(splits):
        arrays[f"{i}_train"], arrays[f"{i}_val"], arrays[f"{i}_test"] = s.train, s.val, s.test
        arrays[f"{i}_meta"] = np.array([s.repeat, s.fold])
    arrays["origin"] = np.array([splits[0].origin if splits else "kfold"])
    # numpy's stub has the keyword allow_pickle: bool, which mypy checks every **arrays value against.
    write_atomic(path, lambda f: np.savez(f, **arrays), root)  # type: ignore[arg-type]


def load_frozen(path: Path) -> list[Split] | None:
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            n = sum(1 for k in z.files if k.endswith("_meta"))
            origin = str(z["origin"][0])
            out = []
            for i in range(n):
                tr, va, te = z[f"{i}_train"], z[f"{i}_val"], z[f"{i}_test"]
                r, f = (int(v) for v in z[f"{i}_meta"])
                out.append(Split(r, f, tr, va, te, split_hash(tr, va, te), origin))
            return out
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # unreadable (truncated, damaged) cache entry: recompute it
