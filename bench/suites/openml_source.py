"""OpenML tasks, datasets and benchmark suites through the `openml` package.

openml is imported lazily (importing bench must not import it). When OPENML_CACHE_DIR is set, the
openml cache root is pointed at it before any call. Everything openml-python has cached works
offline; anything else needs openml.org, and its absence becomes a DataUnavailableError that names
the id and says how to fill the cache, never a traceback.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import settings
from bench.datasets import Dataset, cache_root, make_dataset
from bench.errors import BenchError, DataUnavailableError
from bench.json_files import write_json_atomic
from bench.names import safe_name
from bench.suites.spec import DatasetEntry

Splits = list[tuple[int, int, np.ndarray, np.ndarray]]
_GET: dict[str, Any] = dict(download_data=True, download_qualities=False, download_features_meta_data=True)


def _openml():
    import openml

    cache_dir = settings.OPENML_CACHE_DIR.value()
    if cache_dir and Path(openml.config.get_config_as_dict()["cachedir"]) != Path(cache_dir):
        openml.config.set_root_cache_directory(cache_dir)
    return openml


def openml_cache_dir() -> str:
    return str(_openml().config.get_config_as_dict()["cachedir"])


def _unavailable(what: str, suite_name: str | None, err: Exception,
                 cache: str | None = None) -> DataUnavailableError:
    """Turn an openml / network exception into an actionable message (no traceback text)."""
    import openml.exceptions as oe

    if isinstance(err, oe.OpenMLServerException):
        return DataUnavailableError(
            f"OpenML {what} is not available: openml.org answered: {err.message} "
            f"(code {err.code}). Check the id in the suite definition.")
    if isinstance(err, oe.OpenMLPrivateDatasetError):
        return DataUnavailableError(f"OpenML {what} is private and cannot be downloaded.")
    fetch = f"bench fetch {suite_name}" if suite_name else "bench fetch <suite>"
    network = isinstance(err, OSError) or type(err).__module__.startswith(("requests", "urllib3"))
    why = ("openml.org could not be reached" if network
           else f"loading it failed ({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''})")
    return DataUnavailableError(
        f"OpenML {what} is not available: {cache or f'the OpenML cache at {openml_cache_dir()}'} "
        f"lacks it and {why}. "
        f"To fill the cache, run `{fetch}` on a machine with network access (then copy that cache "
        f"here and set OPENML_CACHE_DIR to it), or point OPENML_CACHE_DIR at an OpenML cache that "
        f"already holds it."
        + (" A suite's task list is cached in the bench cache: copy it too and set BENCH_CACHE_DIR."
           if cache else "")
    )


def _call(what: str, suite_name: str | None, fn, *args, _cache: str | None = None, **kwargs):
    try:
        return fn(*args, **kwargs)
    except BenchError:
        raise
    except Exception as e:  # noqa: BLE001 - openml raises many types; all mean "not available"
        raise _unavailable(what, suite_name, e, _cache) from e


# --- suites ----------------------------------------------------------------------------------------

def _suite_cache_path(suite_id: int | str) -> Path:
    return cache_root() / "openml" / f"suite-{suite_id}.json"


def suite_task_ids(suite_id: int | str, *, refresh: bool = False, suite_name: str | None = None) -> list[int]:
    """The task ids of an OpenML benchmark suite, cached as JSON so a fetched suite works offline."""
    path = _suite_cache_path(suite_id)
    if path.exists() and not refresh:
        try:
            cached = json.loads(path.read_text())
            return [int(t) for t in cached["tasks"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # corrupted: fetch again
    openml = _openml()
    suite = _call(f"suite {suite_id}", suite_name, openml.study.get_suite, suite_id,
                  _cache=f"the suite cache ({path})")
    tasks = [int(t) for t in (suite.tasks or []) if t is not None]
    if not tasks:
        raise DataUnavailableError(f"OpenML suite {suite_id} lists no tasks")
    write_json_atomic(path, {"suite_id": suite_id, "name": suite.name, "alias": suite.alias,
                             "tasks": tasks, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return tasks


# --- tasks and datasets ----------------------------------------------------------------------------

def load_task(entry: DatasetEntry, *, suite_name: str | None = None) -> tuple[Dataset, Splits]:
    """A task's dataset (its target) and all its estimation-procedure splits (sample 0)."""
    openml = _openml()
    from openml.tasks import TaskType

    tid = entry.id
    task = _call(f"task {tid}", suite_name, openml.tasks.get_task, tid, download_splits=True, **_GET)
    if task.task_type_id not in (TaskType.SUPERVISED_CLASSIFICATION, TaskType.SUPERVISED_REGRESSION):
        raise BenchError(f"OpenML task {tid} is a {task.task_type} task; only supervised "
                         f"classification and regression tasks are supported")
    oml_ds = _call(f"dataset {task.dataset_id} (of task {tid})", suite_name,
                   openml.datasets.get_dataset, task.dataset_id, **_GET)
    X, y, cat_ind, dropped = _get_data(oml_ds, task.target_name, f"task {tid}", suite_name)
    if task.task_type_id == TaskType.SUPERVISED_REGRESSION:
        task_type = "regression"
    else:
        task_type = "binary" if y.dropna().nunique() == 2 else "multiclass"
    keep = y.notna().to_numpy()
    ds = _make(entry, oml_ds, X, y, cat_ind, dropped, task_type, {
        "kind": "openml_task", "openml_task_id": tid,
        "estimation_procedure": _procedure_name(task)})

    # Split indices refer to OpenML's rows; make_dataset removed rows without a target.
    new_index = np.cumsum(keep) - 1
    repeats, folds, _samples = task.get_split_dimensions()
    splits: Splits = []
    for r in range(repeats):
        for f in range(folds):
            tr, te = task.get_train_test_split_indices(fold=f, repeat=r, sample=0)
            tr, te = np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64)
            splits.append((r, f, new_index[tr[keep[tr]]], new_index[te[keep[te]]]))
    return ds, splits


def load_dataset(entry: DatasetEntry, *, suite_name: str | None = None) -> Dataset:
    """A dataset by id, with the given target or OpenML's default_target_attribute."""
    openml = _openml()
    did = entry.id
    oml_ds = _call(f"dataset {did}", suite_name, openml.datasets.get_dataset, did, **_GET)
    target = entry.target or oml_ds.default_target_attribute
    if not target:
        raise BenchError(f"OpenML dataset {did} has no default target; set target = \"...\" in the "
                         f"suite entry")
    if "," in target:
        raise BenchError(f"OpenML dataset {did} has several default targets ({target}); set "
                         f"target = \"...\" in the suite entry")
    X, y, cat_ind, dropped = _get_data(oml_ds, target, f"dataset {did}", suite_name)
    if entry.task_type:
        task_type = entry.task_type
    elif isinstance(y.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(y):
        task_type = "binary" if y.dropna().nunique() == 2 else "multiclass"
    else:
        task_type = "regression"
    return _make(entry, oml_ds, X, y, cat_ind, dropped, task_type, {"kind": "openml_dataset"})


def _get_data(oml_ds, target: str, what: str, suite_name):
    names = [f.name for f in oml_ds.features.values()] if oml_ds.features else []
    if names and target not in names:
        raise BenchError(f"OpenML {what}: target '{target}' is not a column of dataset "
                         f"{oml_ds.dataset_id} ({oml_ds.name})")
    X, y, cat_ind, attr_names = _call(f"{what} (dataset {oml_ds.dataset_id} data)", suite_name,
                                      oml_ds.get_data, target=target)
    if not isinstance(y, pd.Series):
        raise BenchError(f"OpenML {what}: target '{target}' did not give a single column")
    # get_data already leaves out OpenML's ignore and row-id attributes; record why they are gone.
    dropped = {}
    for col in _as_list(oml_ds.ignore_attribute):
        dropped[col] = "OpenML ignore_attribute"
    for col in _as_list(oml_ds.row_id_attribute):
        dropped[col] = "OpenML row_id_attribute"
    for col in list(dropped):
        if col in X.columns:  # defensive: older openml versions kept them
            X = X.drop(columns=col)
    cats = [str(n) for n, is_cat in zip(attr_names, cat_ind) if is_cat and n in X.columns]
    return X, y, cats, dropped


def _make(entry, oml_ds, X, y, cats, dropped, task_type, extra) -> Dataset:
    source = {
        **extra, "openml_dataset_id": int(oml_ds.dataset_id), "openml_dataset_name": oml_ds.name,
        "openml_dataset_version": int(oml_ds.version) if oml_ds.version else None,
        "target": str(y.name), "licence": oml_ds.licence or "unknown",
        "origin": f"https://www.openml.org/d/{oml_ds.dataset_id}",
    }
    if "openml_task_id" in extra:
        source["origin"] = f"https://www.openml.org/t/{extra['openml_task_id']}"
    missing = [c for c in entry.categorical if c not in X.columns]
    if missing:
        raise BenchError(f"OpenML {entry.describe()}: categorical columns {missing} do not exist")
    # OpenML's own names are not the user's to fix: made safe for folder names instead of refused.
    ds = make_dataset(entry.name or safe_name(oml_ds.name), X, y, task_type=task_type,
                      categorical=sorted(set(cats) | set(entry.categorical), key=list(X.columns).index),
                      drop=entry.drop, source=source)
    ds.dropped.update(dropped)
    return ds


def _as_list(v) -> list[str]:
    if not v:
        return []
    return [str(x) for x in (v if isinstance(v, (list, tuple)) else [v])]


def _procedure_name(task) -> str:
    proc = getattr(task, "estimation_procedure", None) or {}
    return str(proc.get("type", "")) if isinstance(proc, dict) else str(proc)
