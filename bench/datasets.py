"""The in-memory dataset every stage after the suite loaders works on, plus its on-disk cache.

A loader (OpenML, local folder, embedded) produces raw features and a raw target; `make_dataset`
turns them into one canonical form so that the rest of the harness never has to care where the data
came from: numeric features as float64, categorical features as pandas `category`, free-text columns
dropped, classification targets as integer codes over the classes that actually occur.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import settings
from bench.errors import BenchError
from bench.json_files import write_json_atomic
from bench.safe_files import write_atomic

TASK_TYPES = ("binary", "multiclass", "regression")
FEW_ROWS = 100  # below this, test scores are too noisy to rank models: said out loud, not refused
# Rows that repeat another row exactly (features and target) land in both the training and the test
# part of a split, where a model scores them from memory. Warned when the extra copies are at least this
# share of the rows (offline-20 and demo: segment 9.7%, cpu 9.1%, letter 6.7%, titanic 14.9%; the
# rest 1.3% or less), or when one row occurs at least this many times (letter 26, titanic 18).
DUPLICATE_SHARE, DUPLICATE_COPIES = 0.05, 10
# Beyond float32's range a finite value becomes infinite in float32, in which scikit-learn's trees,
# XGBoost and the torch models compute: scikit-learn and XGBoost refuse such data, others see inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4e38


@dataclass
class Dataset:
    name: str
    X: pd.DataFrame
    y: np.ndarray  # int64 class codes (classification) or float64 (regression)
    task_type: str
    categorical: list[str]
    classes: list[str] = field(default_factory=list)  # class names, index = code
    source: dict = field(default_factory=dict)  # provenance: openml ids, file, licence...
    dropped: dict = field(default_factory=dict)  # column -> why it was dropped
    content_hash: str = ""
    # What loading changed or found in the data (see data_warnings): inf_values, inf_columns,
    # missing_targets_dropped, inf_targets_dropped, huge_values, huge_columns, huge_targets,
    # duplicate_rows (extra copies of repeated rows), max_copies.
    checks: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.X)

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> dict:
        """What every record of a job on this dataset says about it (bench.records.record.Header.meta)."""
        return {"task_type": self.task_type, "n_rows": self.n_rows, "n_features": self.n_features,
                "n_classes": self.n_classes, "n_categorical": len(self.categorical)}


def infer_task_type(y: pd.Series) -> str:
    if (isinstance(y.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(y)
            or pd.api.types.is_bool_dtype(y) or y.dtype == object):
        return "binary" if y.dropna().nunique() == 2 else "multiclass"
    return "regression"


def make_dataset(
    name: str,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    task_type: str | None = None,
    categorical: list[str] | None = None,
    drop: list[str] | None = None,
    source: dict | None = None,
) -> Dataset:
    """Canonicalize raw features/target. Rows with a missing (or infinite) target are removed (they carry
    no label); infinite feature values become missing values (models disagree about inf: some fail,
    some do not, which would rank them by an accident of the data). Both are counted in `checks`."""
    X = X.copy()
    dropped: dict[str, str] = {}
    for col in drop or []:
        if col not in X.columns:
            raise BenchError(f"dataset '{name}': column '{col}' listed in 'drop' does not exist")
        X = X.drop(columns=col)
        dropped[col] = "dropped by the suite definition"
    X.columns = [str(c) for c in X.columns]
    declared = set(categorical or [])
    unknown = declared - set(X.columns) - set(dropped)
    if unknown:
        raise BenchError(f"dataset '{name}': categorical columns {sorted(unknown)} do not exist")

    cats: list[str] = []
    for col in list(X.columns):
        s = X[col]
        if col in declared or isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == bool:
            X[col] = _as_category(s)
            cats.append(col)
        elif pd.api.types.is_numeric_dtype(s):
            X[col] = s.astype("float64")
        else:
            # Free text (names, tickets, ids) is not a tabular feature; OpenML marks it "string".
            X = X.drop(columns=col)
            dropped[col] = "free-text column (not numeric or categorical)"

    checks: dict = {}
    numeric = [c for c in X.columns if c not in cats]
    if numeric:
        inf = np.isinf(X[numeric].to_numpy(dtype="float64"))
        if inf.any():
            columns = [c for c, n in zip(numeric, inf.sum(axis=0)) if n]
            X[columns] = X[columns].replace([np.inf, -np.inf], np.nan)
            checks["inf_values"], checks["inf_columns"] = int(inf.sum()), columns
    missing, infinite = _unlabelled(y)
    if missing.any():
        checks["missing_targets_dropped"] = int(missing.sum())
    if infinite.any():
        checks["inf_targets_dropped"] = int(infinite.sum())
    keep = ~(missing | infinite)
    X, y = X.loc[keep].reset_index(drop=True), y.loc[keep].reset_index(drop=True)
    task_type = task_type or infer_task_type(y)
    if task_type not in TASK_TYPES:
        raise BenchError(f"dataset '{name}': task type '{task_type}' is not one of {TASK_TYPES}")
    if task_type == "regression":
        y_arr = pd.to_numeric(y, errors="raise").to_numpy(dtype="float64")
        classes: list[str] = []
    else:
        # Only classes with rows: a declared but empty class (anneal's '4') cannot be learned or scored.
        labels = y.astype("string")
        classes = sorted(labels.unique().tolist())
        # A dataset with no rows left is reported and skipped by the sweep, not an error here: one
        # empty file must not stop a whole folder suite.
        if len(classes) < 2 and len(labels):
            raise BenchError(f"dataset '{name}': classification target has {len(classes)} class(es)")
        if task_type == "binary" and len(classes) != 2 and len(labels):
            raise BenchError(f"dataset '{name}': declared binary but has {len(classes)} classes")
        y_arr = pd.Categorical(labels, categories=classes).codes.astype("int64")

    checks.update(_value_checks(X, [c for c in X.columns if c not in cats], y_arr, task_type))
    ds = Dataset(name, X, y_arr, task_type, cats, classes, dict(source or {}), dropped, checks=checks)
    ds.content_hash = content_hash(ds)
    return ds


def _value_checks(X: pd.DataFrame, numeric: list[str], y: np.ndarray, task_type: str) -> dict:
    """Counts of finite values beyond float32's range and of rows repeating another row (see
    DUPLICATE_SHARE, FLOAT32_MAX); only what was found."""
    out: dict = {}
    if numeric:
        huge = np.abs(X[numeric].to_numpy(dtype="float64")) > FLOAT32_MAX  # (NaN compares False)
        if huge.any():
            out["huge_values"] = int(huge.sum())
            out["huge_columns"] = [c for c, n in zip(numeric, huge.sum(axis=0)) if n]
    if task_type == "regression" and (np.abs(y) > FLOAT32_MAX).any():
        out["huge_targets"] = int((np.abs(y) > FLOAT32_MAX).sum())
    if len(X) and X.shape[1]:  # (without features every row repeats: the 'no features' warning says it)
        rows = pd.DataFrame({"x": pd.util.hash_pandas_object(X, index=False).to_numpy(),
                             "y": pd.util.hash_array(np.asarray(y))})
        copies = rows.value_counts()
        if len(copies) < len(rows):
            out["duplicate_rows"], out["max_copies"] = int(len(rows) - len(copies)), int(copies.max())
    return out


def labelled_rows(y: pd.Series) -> np.ndarray:
    """The rows make_dataset keeps (boolean mask over the raw target): those with a finite target. A
    loader with a per-row companion of the data (a predefined split column) filters it with this."""
    missing, infinite = _unlabelled(y)
    return ~(missing | infinite)


def _unlabelled(y: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(missing, infinite) target masks."""
    missing = y.isna().to_numpy()
    infinite = np.zeros(len(y), dtype=bool)
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        infinite = np.isinf(y.to_numpy(dtype="float64", na_value=np.nan))
    return missing, infinite


def data_warnings(ds: Dataset) -> list[str]:
    """What a user should know about a dataset before trusting its scores (empty: nothing)."""
    c, out = ds.checks, []
    if c.get("inf_values"):
        cols = c.get("inf_columns") or []
        out.append(f"{c['inf_values']} infinite feature value(s) set to missing"
                   + (f" (columns {_first(cols)})" if cols else ""))
    if c.get("missing_targets_dropped"):
        out.append(f"{c['missing_targets_dropped']} row(s) with a missing target dropped")
    if c.get("inf_targets_dropped"):
        out.append(f"{c['inf_targets_dropped']} row(s) with an infinite target dropped")
    if c.get("huge_values"):
        out.append(f"{c['huge_values']} finite feature value(s) beyond float32's range (|x| > {FLOAT32_MAX:.1e}; "
                   f"columns {_first(c.get('huge_columns') or [])}): infinite in float32, which scikit-learn's trees, "
                   f"XGBoost and torch models compute in; some refuse the data (a failure record), others see inf")
    if c.get("huge_targets"):
        out.append(f"{c['huge_targets']} target value(s) beyond float32's range (|y| > {FLOAT32_MAX:.1e}): "
                   f"infinite in float32; errors and scores may overflow")
    copies, most = c.get("duplicate_rows", 0), c.get("max_copies", 0)
    if copies and (copies >= DUPLICATE_SHARE * ds.n_rows or most >= DUPLICATE_COPIES):
        out.append(f"{copies} row(s) ({copies / max(1, ds.n_rows):.1%}) repeat another row exactly (features and "
                   f"target; one occurs {most} times): copies land in both training and test parts, where a model "
                   f"scores them from memory, so test scores may be optimistic (possible leakage)")
    if ds.n_features == 0:
        out.append("no features: every model can only predict the prior or mean")
    if ds.n_rows < FEW_ROWS:
        out.append(f"only {ds.n_rows} rows: scores are noisy (fewer than {FEW_ROWS})")
    return out


def _first(columns: list, n: int = 5) -> str:
    return ", ".join(map(str, columns[:n])) + (", ..." if len(columns) > n else "")


def _as_category(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        # Category labels as strings so that every adapter sees the same vocabulary type.
        return s.cat.rename_categories([str(c) for c in s.cat.categories])
    return s.astype("string").astype("category")


def content_hash(ds: Dataset) -> str:
    """Hash of everything a model sees: values, dtypes, column names, target and task type."""
    h = hashlib.sha256()
    h.update(json.dumps([ds.task_type, list(ds.X.columns), ds.categorical, ds.classes]).encode())
    h.update(pd.util.hash_pandas_object(ds.X, index=False).to_numpy().tobytes())
    h.update(np.ascontiguousarray(ds.y).tobytes())
    return h.hexdigest()[:16]


# --- on-disk cache of materialized datasets -------------------------------------------------------

def cache_root() -> Path:
    root = settings.CACHE_DIR.value() or Path.home() / ".cache" / "tabular-bench"
    return Path(root)


def save_dataset(ds: Dataset, directory: Path, root: Path | None = None) -> Path:
    """Write features+target as Parquet and metadata as JSON, atomically (bench.safe_files; with
    `root`, a run folder, never outside it or through a link)."""
    frame = ds.X.copy()
    frame["__target__"] = ds.y
    write_atomic(directory / "data.parquet", lambda f: frame.to_parquet(f, index=False), root)
    meta = {
        "name": ds.name, "task_type": ds.task_type, "categorical": ds.categorical,
        "classes": ds.classes, "source": ds.source, "dropped": ds.dropped,
        "content_hash": ds.content_hash, "checks": ds.checks,
    }
    write_json_atomic(directory / "meta.json", meta, root)
    return directory


def load_cached_dataset(directory: Path) -> Dataset | None:
    """The dataset saved in `directory`, or None when it is missing or damaged (then rebuild it)."""
    return read_cached_dataset(directory)[0]


_META_KEYS = ("name", "task_type", "categorical", "classes", "source", "dropped", "content_hash")


def read_cached_dataset(directory: Path) -> tuple[Dataset | None, str | None]:
    """(dataset, None); (None, None) when nothing is saved there; (None, what is wrong) when its files are
    missing, unreadable, or hold other data than meta.json's content hash says (truncated, edited)."""
    meta_path, data_path = directory / "meta.json", directory / "data.parquet"
    missing = [p.name for p in (meta_path, data_path) if not p.exists()]
    if len(missing) == 2:
        return None, None
    if missing:
        return None, f"{missing[0]} is missing"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:  # (UnicodeDecodeError and JSONDecodeError are ValueErrors)
        return None, f"meta.json is damaged ({type(exc).__name__}: {exc})"
    if not isinstance(meta, dict) or any(k not in meta for k in _META_KEYS):
        return None, "meta.json is damaged (not a dataset's metadata)"
    try:
        frame = pd.read_parquet(data_path)
        y = frame.pop("__target__").to_numpy()
    except (OSError, ValueError, TypeError, KeyError) as exc:  # pyarrow's errors derive from these
        return None, f"data.parquet is damaged ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})"
    try:
        ds = Dataset(meta["name"], frame, y, meta["task_type"], meta["categorical"], meta["classes"],
                     meta["source"], meta["dropped"], meta["content_hash"], meta.get("checks") or {})
        digest = content_hash(ds)
    except (TypeError, ValueError) as exc:
        return None, f"meta.json is damaged ({type(exc).__name__}: {exc})"
    if digest != meta["content_hash"]:
        return None, (f"data.parquet holds other data (content hash {digest}) than meta.json says "
                      f"({meta['content_hash']}): damaged, edited or written by an incompatible version")
    return ds, None
