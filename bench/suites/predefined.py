"""Predefined splits: a dataset's own train / validation / test assignment, one value per row.

It comes from a split column of a Parquet/CSV file (`split_column` in a suite entry or a manifest) or
from a TALENT folder's N_/C_/y_{train,val,test}.npy (bench.suites.talent_source). Two forms:

    parts   values train / val / test: one split, used row for row (the validation part is the given
            one, never re-carved from the training part)
    folds   integer fold ids 0..K-1: K splits, fold k is the test part of split k; the validation part
            is carved from the other folds as for harness-made folds (protocol.validation_fraction)

A malformed column is refused with a DataUnavailableError naming the file, the column and the problem
(missing values, an unknown part name, an empty part or fold), which the command line turns into exit 2.
bench.splits turns an Assignment into frozen splits; its digest is part of their cache key, and the
split hash covers the rows of each part, so changing the column re-runs the jobs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from bench.errors import DataUnavailableError

PARTS = ("train", "val", "test")  # codes 0, 1, 2 of the parts form
SplitForm = Literal["parts", "folds"]
FILE = "assignment.npz"  # in a materialized dataset's cache folder (bench.suites.materialize)


@dataclass(frozen=True)
class Assignment:
    form: SplitForm
    codes: np.ndarray  # int64, one per dataset row: index into PARTS (parts) or the fold id (folds)
    column: str  # the column (or "TALENT folder") it came from: provenance and messages

    @property
    def n_splits(self) -> int:
        return 1 if self.form == "parts" else int(self.codes.max()) + 1

    def labels(self) -> list[tuple[int, int]]:
        """(repeat, fold) of each split it defines."""
        return [(0, k) for k in range(self.n_splits)]

    def rows(self, code: int) -> np.ndarray:
        """The rows (ascending, so the file's order) with this part code or fold id."""
        return np.flatnonzero(self.codes == code).astype(np.int64)

    def digest(self) -> str:
        h = hashlib.sha256(self.form.encode())
        h.update(np.ascontiguousarray(self.codes, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        names = PARTS if self.form == "parts" else [f"fold {k}" for k in range(self.n_splits)]
        return {name: int((self.codes == code).sum()) for code, name in enumerate(names)}


def from_column(values, where: str, keep: np.ndarray | None = None) -> Assignment:
    """Validate a split column and turn it into an Assignment. `where` starts every message (e.g.
    "dataset 'x': split column 'split' in /data/x.parquet"); `keep` (a boolean mask) drops the rows the
    dataset drops (rows without a target, bench.datasets.labelled_rows) after the per-row checks."""
    series = pd.Series(values).reset_index(drop=True)
    name = str(series.name) if series.name is not None else "split"
    missing = series.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        raise DataUnavailableError(f"{where}: {len(rows)} missing value(s) (rows {shown}, counting from 0); "
                                   f"every row needs its part ({', '.join(PARTS)}) or an integer fold id")
    if keep is not None:
        series = series[np.asarray(keep, dtype=bool)].reset_index(drop=True)
    if pd.api.types.is_bool_dtype(series):
        raise DataUnavailableError(f"{where}: boolean values; expected {', '.join(PARTS)} or integer fold ids")
    if pd.api.types.is_numeric_dtype(series):
        return Assignment("folds", _fold_ids(series.to_numpy(dtype="float64"), where), name)
    text = series.astype(str)
    unknown = sorted(set(text) - set(PARTS))
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise DataUnavailableError(f"{where}: unknown part name(s) {shown}; expected {', '.join(PARTS)} "
                                   f"(or integer fold ids 0..K-1 for cross-validation)")
    codes = text.map({p: i for i, p in enumerate(PARTS)}).to_numpy(dtype=np.int64)
    empty = [p for i, p in enumerate(PARTS) if not (codes == i).any()]
    if empty:
        raise DataUnavailableError(f"{where}: no {' / '.join(repr(p) for p in empty)} rows; each part "
                                   f"({', '.join(PARTS)}) needs at least one row")
    return Assignment("parts", codes, name)


def _fold_ids(values: np.ndarray, where: str) -> np.ndarray:
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)) or values.min() < 0:
        bad = values[~(np.isfinite(values) & (values == np.round(values)) & (values >= 0))][:3]
        raise DataUnavailableError(f"{where}: fold ids must be integers >= 0, got {', '.join(map(str, bad))}")
    ids = values.astype(np.int64)
    k = int(ids.max()) + 1
    if k < 2:
        raise DataUnavailableError(f"{where}: only fold 0; cross-validation needs fold ids 0..K-1 with K >= 2 "
                                   f"(or the values {', '.join(PARTS)} for one fixed split)")
    empty = [f for f in range(k) if not (ids == f).any()]
    if empty:
        raise DataUnavailableError(f"{where}: fold(s) {', '.join(map(str, empty))} have no rows; fold ids "
                                   f"must be 0..K-1, each with at least one row")
    return ids


def save(directory: Path, assignment: Assignment) -> None:
    from bench.safe_files import write_atomic

    write_atomic(Path(directory) / FILE, lambda f: np.savez(f, codes=assignment.codes, form=np.array([assignment.form]),
                                                             column=np.array([assignment.column])))


def load(directory: Path, n_rows: int) -> Assignment | None:
    """The saved assignment, or None when it is missing, unreadable or not one value per row."""
    try:
        with np.load(Path(directory) / FILE) as z:
            codes, form, column = z["codes"].astype(np.int64), str(z["form"][0]), str(z["column"][0])
    except (OSError, KeyError, ValueError):
        return None
    if len(codes) != n_rows or form not in ("parts", "folds"):
        return None
    return Assignment("parts" if form == "parts" else "folds", codes, column)
