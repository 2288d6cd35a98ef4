"""Local data: a folder with manifest.json (one file per dataset) and single Parquet/CSV files.

manifest.json (the format of shared/data/suites/offline-20):
    {"name": ..., "description": ...,
     "datasets": [{"name", "file", "target", "task_type", "categorical_features",
                   "openml_dataset_id" (optional), "sha256" (optional, of the file),
                   "split_column" (optional: the dataset's own split, bench.suites.predefined), ...}]}
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from bench.datasets import TASK_TYPES, Dataset, labelled_rows, make_dataset
from bench.errors import DataUnavailableError, SuiteFormatError
from bench.names import name_problem
from bench.suites import predefined
from bench.suites.spec import DatasetEntry

MANIFEST = "manifest.json"
# manifest items copied into Dataset.source (provenance)
_PROVENANCE = ("openml_dataset_id", "related_openml_dataset_id", "licence", "source", "notes")


def read_manifest(folder: Path) -> tuple[str, str, list[DatasetEntry]]:
    """Parse folder/manifest.json into (suite name, description, one 'path' entry per dataset)."""
    folder = Path(folder)
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise DataUnavailableError(f"local suite folder {folder} has no {MANIFEST}"
                                   + ("" if folder.is_dir() else " (the folder does not exist)"))
    try:
        raw = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SuiteFormatError(mpath, "(file)", f"not valid JSON: {e}") from e
    if not isinstance(raw, dict) or not isinstance(raw.get("datasets"), list) or not raw["datasets"]:
        raise SuiteFormatError(mpath, "datasets", "expected a non-empty list of dataset objects")
    entries, seen = [], set()
    for i, d in enumerate(raw["datasets"]):
        where = f"datasets[{i}]"
        if not isinstance(d, dict):
            raise SuiteFormatError(mpath, where, f"expected an object, got {type(d).__name__}")
        for key in ("name", "file", "target"):
            if not isinstance(d.get(key), str) or not d[key]:
                raise SuiteFormatError(mpath, f"{where}.{key}", "missing or not a non-empty string")
        problem = name_problem(d["name"])
        if problem:
            raise SuiteFormatError(mpath, f"{where}.name", f"dataset name {problem}")
        if d["name"] in seen:
            raise SuiteFormatError(mpath, f"{where}.name", f"duplicate dataset name '{d['name']}'")
        seen.add(d["name"])
        task_type = d.get("task_type")
        if task_type is not None and task_type not in TASK_TYPES:
            raise SuiteFormatError(mpath, f"{where}.task_type",
                                   f"'{task_type}' is not one of {', '.join(TASK_TYPES)}")
        cats = d.get("categorical_features") or []
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            raise SuiteFormatError(mpath, f"{where}.categorical_features", "expected a list of strings")
        sha = d.get("sha256")
        if sha is not None and (not isinstance(sha, str) or len(sha) != 64):
            raise SuiteFormatError(mpath, f"{where}.sha256", "expected 64 hexadecimal digits")
        split_column = d.get("split_column")
        if split_column is not None and (not isinstance(split_column, str) or not split_column):
            raise SuiteFormatError(mpath, f"{where}.split_column", "expected the name of a column")
        file = (folder / d["file"]).resolve()
        if folder.resolve() not in file.parents:
            raise SuiteFormatError(mpath, f"{where}.file", "must name a file inside the folder")
        prov = {k: d[k] for k in _PROVENANCE if d.get(k) is not None}
        prov["manifest"] = str(mpath.resolve())
        entries.append(DatasetEntry(
            kind="path", path=file, name=d["name"], target=d["target"], task_type=task_type,
            categorical=list(cats), sha256=sha.lower() if sha else None, split_column=split_column,
            provenance=prov))
    name: str = raw["name"] if isinstance(raw.get("name"), str) else folder.name
    problem = name_problem(name)
    if problem:
        raise SuiteFormatError(mpath, "name", f"suite name {problem}"
                               + ("" if "name" in raw else " (taken from the folder name; set \"name\")"))
    description: str = raw["description"] if isinstance(raw.get("description"), str) else ""
    return name, description, entries


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(entry: DatasetEntry) -> str:
    """Changes when the file changes (size or modification time), so the cache is rebuilt."""
    st = entry.location.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def load_file(entry: DatasetEntry) -> tuple[Dataset, predefined.Assignment | None]:
    """The file's dataset and, when the entry names a split column, its predefined split (the column is
    no feature)."""
    path = entry.location
    name = entry.name or path.stem
    if not path.is_file():
        raise DataUnavailableError(f"dataset '{name}': file {path} does not exist")
    if entry.sha256:
        actual = file_sha256(path)
        if actual != entry.sha256:
            raise DataUnavailableError(
                f"dataset '{name}': sha256 mismatch for {path}: expected {entry.sha256}, file has "
                f"{actual}. The file was modified or corrupted; restore the original file."
            )
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)  # pyarrow restores pandas 'category' dtypes
    except Exception as e:  # noqa: BLE001 - any reader failure means the file is unusable
        raise DataUnavailableError(f"dataset '{name}': cannot read {path}: {type(e).__name__}: {e}") from e
    if entry.target not in frame.columns:
        raise DataUnavailableError(
            f"dataset '{name}': target column '{entry.target}' is not in {path} "
            f"(columns: {', '.join(map(str, frame.columns[:20]))}{'...' if frame.shape[1] > 20 else ''})"
        )
    y = frame.pop(entry.target)
    split = None
    if entry.split_column:
        if entry.split_column not in frame.columns:
            raise DataUnavailableError(f"dataset '{name}': split column '{entry.split_column}' is not in {path}")
        split = predefined.from_column(frame.pop(entry.split_column),
                                       f"dataset '{name}': split column '{entry.split_column}' in {path}",
                                       keep=labelled_rows(y))
    categorical = list(entry.categorical)
    if path.suffix.lower() == ".csv":
        # CSV has no types: text columns are categorical (pandas 3 reads them as 'str', older as object).
        categorical += [c for c in frame.columns if c not in categorical
                        and (pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c]))]
    categorical = [c for c in categorical if c not in entry.drop]
    task_type = entry.task_type or infer_task_type(y)
    source = {"kind": "local", "file": str(path), **entry.provenance}
    if entry.sha256:
        source["sha256"] = entry.sha256
    if split is not None:
        source["split_column"] = entry.split_column
    try:
        ds = make_dataset(name, frame, y, task_type=task_type, categorical=categorical,
                          drop=entry.drop, source=source)
    except ValueError as e:  # e.g. a non-numeric regression target
        raise DataUnavailableError(f"dataset '{name}' ({path}): {e}") from e
    return ds, split


def infer_task_type(y: pd.Series) -> str:
    """Text, boolean and categorical targets are classification; numbers are regression.

    (Handles pandas 3 'str' columns, which bench.datasets.infer_task_type reads as regression.)"""
    if (isinstance(y.dtype, pd.CategoricalDtype) or y.dtype == bool
            or pd.api.types.is_object_dtype(y) or pd.api.types.is_string_dtype(y)):
        return "binary" if y.dropna().nunique() == 2 else "multiclass"
    return "regression"
