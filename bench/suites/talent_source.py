"""TALENT's dataset folder format, read directly (suite entries `talent = "folder"`) or converted to
Parquet + manifest.json with a split column (`bench import talent DIR OUT`).

A folder (LAMDA-Tabular/TALENT, readme "How to Place Datasets"; reader TALENT/model/lib/data.py
`dataname_to_numpy`) holds N_{train,val,test}.npy (numeric features, omitted without any),
C_{train,val,test}.npy (categorical features, omitted without any), y_{train,val,test}.npy and info.json
with task_type "binclass" | "multiclass" | "regression", n_num_features and n_cat_features. The three
parts are TALENT's fixed split: the rows here are train, then val, then test, in the files' order, and
the split is predefined (bench.suites.predefined, form "parts"). Feature names come from info.json
(feature_intro.num / .cat or num_feature_intro / cat_feature_intro) when they fit, else num_0.., cat_0...
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.datasets import Dataset, labelled_rows, make_dataset
from bench.errors import DataUnavailableError
from bench.json_files import write_json_atomic
from bench.safe_files import write_atomic
from bench.suites import predefined
from bench.suites.spec import DatasetEntry

TASK_TYPES = {"binclass": "binary", "multiclass": "multiclass", "regression": "regression"}
TARGET = "target"  # the target column of an imported Parquet file
SPLIT_COLUMN = "split"  # and its split column


def is_talent_folder(folder: Path) -> bool:
    return (Path(folder) / "info.json").is_file() and (Path(folder) / "y_train.npy").is_file()


def folder_files(folder: Path) -> list[Path]:
    """The files that make the dataset (what the digest and the cache fingerprint cover)."""
    names = ["info.json"] + [f"{kind}_{part}.npy" for kind in "NCy" for part in predefined.PARTS]
    return [Path(folder) / n for n in names if (Path(folder) / n).is_file()]


def folder_digest(folder: Path) -> str:
    """sha256 over the folder's files ("name sha256" lines, sorted): what a `talent` entry's sha256 pins."""
    lines = []
    for path in sorted(folder_files(folder)):
        lines.append(f"{path.name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def fingerprint(entry: DatasetEntry) -> str | None:
    """Changes when any file changes (size or modification time), so the cache is rebuilt."""
    files = folder_files(entry.location)
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files) or None


def read_folder(folder: Path) -> tuple[pd.DataFrame, pd.Series, str, list[str], np.ndarray, dict]:
    """(features, target, task type, categorical columns, part code per row, info.json) of a folder."""
    folder = Path(folder)
    if not is_talent_folder(folder):
        raise DataUnavailableError(f"{folder} is not a TALENT dataset folder (it needs info.json and "
                                   f"y_train.npy, y_val.npy, y_test.npy)" + ("" if folder.is_dir() else
                                                                             " (the folder does not exist)"))
    try:
        info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataUnavailableError(f"{folder / 'info.json'}: not valid JSON: {e}") from e
    declared = info.get("task_type") if isinstance(info, dict) else None
    task_type = TASK_TYPES.get(declared) if isinstance(declared, str) else None
    if task_type is None:
        raise DataUnavailableError(f"{folder / 'info.json'}: task_type must be one of {', '.join(TASK_TYPES)}, "
                                   f"got {declared!r}")
    targets = _parts(folder, "y")
    if targets is None:
        raise DataUnavailableError(f"{folder}: y_train.npy, y_val.npy and y_test.npy are all needed")
    sizes = [len(a) for a in targets]
    blocks: dict[str, pd.DataFrame] = {}
    for kind, key in (("N", "num"), ("C", "cat")):
        parts = _parts(folder, kind)
        if parts is None:
            continue
        if [len(a) for a in parts] != sizes:
            raise DataUnavailableError(f"{folder}: {kind}_*.npy have {[len(a) for a in parts]} rows "
                                       f"(train, val, test) but y_*.npy {sizes}")
        values = np.concatenate([a.reshape(len(a), -1) for a in parts])
        blocks[key] = pd.DataFrame(values, columns=_names(info, key, values.shape[1]))
    if not blocks:
        raise DataUnavailableError(f"{folder}: no N_*.npy or C_*.npy (no features)")
    if "num" in blocks:
        blocks["num"] = blocks["num"].apply(pd.to_numeric, errors="raise").astype("float64")
    if "cat" in blocks:  # categories as text; None / NaN stay missing (as TALENT's data_nan_process has it)
        blocks["cat"] = blocks["cat"].apply(lambda col: col.map(_category))
    if "num" in blocks and "cat" in blocks and set(blocks["num"].columns) & set(blocks["cat"].columns):
        for key, block in blocks.items():  # a name in both blocks: positional names for all
            block.columns = [f"{key}_{i}" for i in range(block.shape[1])]
    categorical = list(blocks["cat"].columns) if "cat" in blocks else []
    X = pd.concat(list(blocks.values()), axis=1)
    y_values = np.concatenate(targets)
    y = pd.Series(y_values.astype("float64") if task_type == "regression" else y_values.astype(str), name=TARGET)
    codes = np.repeat(np.arange(3, dtype=np.int64), sizes)
    return X, y, task_type, categorical, codes, info


def load(entry: DatasetEntry) -> tuple[Dataset, predefined.Assignment]:
    folder = entry.location
    name = entry.name or folder.name
    if entry.sha256 and is_talent_folder(folder):
        actual = folder_digest(folder)
        if actual != entry.sha256:
            raise DataUnavailableError(f"dataset '{name}': sha256 mismatch for the files of {folder}: expected "
                                       f"{entry.sha256}, they have {actual}. A file was modified or corrupted; "
                                       f"restore the original files.")
    X, y, task_type, categorical, codes, info = read_folder(folder)
    keep = labelled_rows(y)
    source = {"kind": "talent", "folder": str(folder), "split": "TALENT's train/val/test files",
              **{f"talent_{k}": info[k] for k in ("name", "source", "openml_id")
                 if isinstance(info.get(k), (str, int))}}
    if entry.sha256:
        source["sha256"] = entry.sha256
    try:
        ds = make_dataset(name, X, y, task_type=task_type, categorical=categorical, source=source)
    except ValueError as e:
        raise DataUnavailableError(f"dataset '{name}' ({folder}): {e}") from e
    assignment = predefined.from_column(pd.Series(np.array(predefined.PARTS)[codes], name="TALENT files"),
                                        f"dataset '{name}': TALENT folder {folder}", keep=keep)
    return ds, assignment


def import_folders(source: Path, out: Path) -> list[dict]:
    """Convert a TALENT dataset folder, or a folder of them, into Parquet files (features, `target`,
    `split`) plus a manifest.json in `out` that declares the split column; returns the manifest entries.
    `bench run --suite OUT` then uses the predefined splits."""
    from bench.suites.local_source import MANIFEST, file_sha256

    source, out = Path(source), Path(out)
    folders = [source] if is_talent_folder(source) else sorted(p for p in source.glob("*/") if is_talent_folder(p))
    if not folders:
        raise DataUnavailableError(f"{source} is neither a TALENT dataset folder nor a folder of them "
                                   f"(each needs info.json and y_train.npy, y_val.npy, y_test.npy)")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for folder in folders:
        X, y, task_type, categorical, codes, info = read_folder(folder)
        frame = X.copy()
        for col in categorical:
            frame[col] = frame[col].astype("category")
        frame[TARGET] = y.to_numpy()
        frame[SPLIT_COLUMN] = np.array(predefined.PARTS)[codes]
        file = write_atomic(out / f"{folder.name}.parquet", frame.to_parquet(index=False))
        entries.append({"name": folder.name, "file": file.name, "target": TARGET, "task_type": task_type,
                        "categorical_features": categorical, "split_column": SPLIT_COLUMN,
                        "sha256": file_sha256(file), "source": f"TALENT folder {folder.resolve()} "
                        f"(files sha256 {folder_digest(folder)})"})
    write_json_atomic(out / MANIFEST, {"name": out.name, "description": f"imported from TALENT folders in {source}",
                                       "datasets": entries})
    return entries


def _parts(folder: Path, kind: str) -> list[np.ndarray] | None:
    paths = [folder / f"{kind}_{part}.npy" for part in predefined.PARTS]
    present = [p.is_file() for p in paths]
    if not any(present):
        return None
    if not all(present):
        missing = [p.name for p, ok in zip(paths, present) if not ok]
        raise DataUnavailableError(f"{folder}: {', '.join(missing)} missing (train, val and test are needed)")
    out = []
    for p in paths:
        try:
            out.append(np.load(p, allow_pickle=kind == "C" or kind == "y"))  # text columns are object arrays
        except (OSError, ValueError) as e:
            raise DataUnavailableError(f"{p}: cannot read: {e}") from e
    return out


def _category(value) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _names(info: dict, key: str, n: int) -> list[str]:
    """Column names from info.json when it has exactly n distinct ones, else num_0.. / cat_0..."""
    intro = info.get(f"{key}_feature_intro")
    if not isinstance(intro, dict):
        feature_intro = info.get("feature_intro")
        intro = feature_intro.get(key) if isinstance(feature_intro, dict) else None
    names = [str(k) for k in intro] if isinstance(intro, dict) else []
    return names if len(names) == n and len(set(names)) == n else [f"{key}_{i}" for i in range(n)]
