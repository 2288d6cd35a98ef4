"""Loading a suite's datasets through the on-disk cache, and applying its filters.

Cache layout, one folder per entry under cache_root()/datasets/<entry.cache_key()>/:
    data.parquet, meta.json   (bench.datasets.save_dataset)
    splits.npz                (OpenML task splits: train_<r>_<f>, test_<r>_<f>)
    assignment.npz            (a predefined split: split column or TALENT folder, bench.suites.predefined)
    entry.json                (written last: loader version, the entry's spec, a source fingerprint;
                               a folder whose entry.json does not match is rebuilt)
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.datasets import Dataset, cache_root, load_cached_dataset, save_dataset
from bench.errors import BenchError, DataUnavailableError
from bench.json_files import write_json_atomic
from bench.names import name_problem
from bench.safe_files import write_atomic
from bench.suites import predefined
from bench.suites.predefined import Assignment
from bench.suites.spec import DatasetEntry, Excluded, Filters, LoadedDataset, Suite

LOADER_VERSION = 3  # 2: infinite feature values become missing, load-time checks in meta.json; 3: checks for
# repeated rows and values beyond float32's range


def expand_entries(suite: Suite, *, refresh: bool = False) -> list[tuple[str, DatasetEntry]]:
    """The suite's concrete entries, each with where the suite lists it (for messages): an OpenML suite
    becomes its tasks, a `local` folder its files."""
    from bench.suites import openml_source
    from bench.suites.registry import expand_local

    if suite.openml_suite_id is not None:
        ids = openml_source.suite_task_ids(suite.openml_suite_id, refresh=refresh,
                                           suite_name=fetch_arg(suite))
        return [(f"OpenML suite {suite.openml_suite_id}: task {t}", DatasetEntry(kind="openml_task", id=t))
                for t in ids]
    out: list[tuple[str, DatasetEntry]] = []
    for i, e in enumerate(suite.entries):
        if e.kind != "local":
            out.append((f"datasets[{i}] ({e.describe()})", e))
            continue
        try:
            expanded = expand_local(e)
        except DataUnavailableError as err:
            raise DataUnavailableError(f"suite '{suite.name}' ({suite.path}, datasets[{i}].local): {err}") from err
        out += [(f"datasets[{i}].local (manifest entry '{x.name}', {x.describe()})", x) for x in expanded]
    return out


def materialize(suite: Suite, *, refresh: bool = False) -> tuple[list[LoadedDataset], list[Excluded]]:
    """Load every dataset of the suite (cached unless refresh) and split off those the filters exclude.

    Raises DataUnavailableError for the first dataset that cannot be loaded, and BenchError when two
    entries hold the same data (by content hash, whatever their names or files): it would count twice
    in every mean, rank, win and Elo rating."""
    loaded: list[LoadedDataset] = []
    excluded: list[Excluded] = []
    names: set[str] = set()
    listed: dict[str, str] = {}  # content hash -> where the suite lists it first
    hint = fetch_arg(suite)
    for where, entry in expand_entries(suite, refresh=refresh):
        ds, splits = load_entry(entry, refresh=refresh, suite_name=hint)
        where = f"{where}, dataset '{ds.name}'"
        if ds.content_hash in listed:
            raise BenchError(f"suite '{suite.name}' ({suite.path}) holds the same data twice (content hash "
                             f"{ds.content_hash}): {listed[ds.content_hash]} and {where}. A dataset listed twice "
                             f"counts twice in every mean, rank, win and Elo rating: remove one of the entries")
        listed[ds.content_hash] = where
        if ds.name in names:  # two entries with the same source name: keep both, distinguishably
            ds.name = f"{ds.name}-{entry.cache_key()}"
        if ds.name in names:
            raise BenchError(f"suite '{suite.name}' lists {entry.describe()} twice")
        problem = name_problem(ds.name)
        if problem:  # e.g. a file's own name, used when the entry gives none
            raise BenchError(f"suite '{suite.name}', {entry.describe()}: dataset name {problem}; "
                             f"give the entry a name")
        names.add(ds.name)
        given = splits if isinstance(splits, Assignment) else None
        check_split_source(suite, ds.name, entry, given)
        reason = filter_reason(ds, suite.filters)
        if reason:
            excluded.append(Excluded(ds.name, reason))
            continue
        task_splits = splits if given is None and suite.protocol.use_task_splits else None
        loaded.append(LoadedDataset(ds, task_splits, entry, given))
    return loaded, excluded


def check_split_source(suite: Suite, name: str, entry: DatasetEntry, given: Assignment | None) -> None:
    """A predefined protocol needs every dataset's own split; a dataset that brings one is never
    silently re-split by a K-fold protocol (BenchError, exit 2)."""
    if suite.protocol.splits == "predefined" and given is None:
        raise BenchError(f"suite '{suite.name}' ({suite.path}): protocol.splits = \"predefined\" but dataset "
                         f"'{name}' ({entry.describe()}) brings no split: give its entry a split_column, or "
                         f"use a TALENT folder (talent = ...)")
    if suite.protocol.splits != "predefined" and given is not None:
        how = f"split column '{entry.split_column}'" if entry.split_column else "its TALENT files"
        raise BenchError(f"suite '{suite.name}' ({suite.path}): dataset '{name}' brings its own split ({how}) "
                         f"but the protocol makes its own folds; set [protocol] splits = \"predefined\" to use "
                         f"it" + (f", or remove split_column and add drop = [\"{entry.split_column}\"] to "
                                  f"ignore it" if entry.split_column else ""))


def fetch_arg(suite: Suite) -> str:
    """How to name this suite on the command line: its name if that finds it, else its path."""
    from bench.suites.registry import _named

    try:
        found = _named().get(suite.name)
        if found is not None and suite.path is not None and found.resolve() == Path(suite.path).resolve():
            return suite.name
    except OSError:
        pass
    return str(suite.path) if suite.path is not None else suite.name


def filter_reason(ds: Dataset, f: Filters) -> str | None:
    if f.task_types is not None and ds.task_type not in f.task_types:
        return f"task type {ds.task_type} not in {', '.join(f.task_types)}"
    if f.min_rows is not None and ds.n_rows < f.min_rows:
        return f"{ds.n_rows} rows < min_rows {f.min_rows}"
    if f.max_rows is not None and ds.n_rows > f.max_rows:
        return f"{ds.n_rows} rows > max_rows {f.max_rows}"
    if f.max_features is not None and ds.n_features > f.max_features:
        return f"{ds.n_features} features > max_features {f.max_features}"
    if f.max_classes is not None and ds.task_type != "regression" and ds.n_classes > f.max_classes:
        return f"{ds.n_classes} classes > max_classes {f.max_classes}"
    return None


def load_entry(entry: DatasetEntry, *, refresh: bool = False, suite_name: str | None = None):
    """(Dataset, OpenML task splits | predefined Assignment | None) for one concrete entry, from the cache
    when valid."""
    directory = cache_root() / "datasets" / entry.cache_key()
    # A display name is not part of the data (nor of its hash): the cache holds the source's own
    # name and the entry's name is applied on top. (A manifest file's name is part of its key.)
    source_entry = entry if entry.kind == "path" else replace(entry, name=None)
    stamp = {"loader_version": LOADER_VERSION, "entry": source_entry.spec(),
             "fingerprint": _fingerprint(entry)}
    hit = None if refresh else _read_cache(directory, stamp, want_splits=entry.kind == "openml_task",
                                           want_assignment=bool(entry.split_column) or entry.kind == "talent")
    if hit is not None:
        ds, splits = hit
    else:
        ds, splits = _load_fresh(source_entry, suite_name)
        try:
            _write_cache(directory, ds, splits, stamp)
        except OSError:
            pass  # a read-only or full cache must not stop a run; the data is in memory
    if entry.name:
        ds.name = entry.name
    return ds, splits


def _fingerprint(entry: DatasetEntry) -> str | None:
    if entry.kind == "path":
        from bench.suites import local_source

        return local_source.fingerprint(entry) if entry.location.is_file() else None
    if entry.kind == "talent":
        from bench.suites import talent_source

        return talent_source.fingerprint(entry)
    if entry.kind == "embedded":
        from bench.suites import embedded_source

        return embedded_source.fingerprint()
    return None  # OpenML ids are immutable


def _load_fresh(entry: DatasetEntry, suite_name: str | None):
    if entry.kind == "openml_task":
        from bench.suites.openml_source import load_task

        return load_task(entry, suite_name=suite_name)
    if entry.kind == "openml_dataset":
        from bench.suites.openml_source import load_dataset

        return load_dataset(entry, suite_name=suite_name), None
    if entry.kind == "embedded":
        from bench.suites.embedded_source import load

        return load(entry.embedded or "", display_name=entry.name, drop=entry.drop), None
    if entry.kind == "path":
        from bench.suites.local_source import load_file

        return load_file(entry)
    if entry.kind == "talent":
        from bench.suites import talent_source

        return talent_source.load(entry)
    raise BenchError(f"cannot load a '{entry.kind}' entry directly")


def _read_cache(directory: Path, stamp: dict, *, want_splits: bool, want_assignment: bool = False):
    try:
        if json.loads((directory / "entry.json").read_text()) != json.loads(json.dumps(stamp)):
            return None
        ds = load_cached_dataset(directory)
        if ds is None:
            return None
        splits: Any = None  # OpenML's splits, or a predefined assignment
        if want_splits:
            with np.load(directory / "splits.npz") as z:
                splits = _unpack_splits(z)
            if not splits or any(len(a) and a.max() >= ds.n_rows for _, _, tr, te in splits for a in (tr, te)):
                return None
        if want_assignment:
            splits = predefined.load(directory, ds.n_rows)
            if splits is None:
                return None
        return ds, splits
    except Exception:  # noqa: BLE001 - missing or corrupt cache entries are rebuilt
        return None


def _write_cache(directory: Path, ds: Dataset, splits, stamp: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "entry.json").unlink(missing_ok=True)  # invalid until fully written
    save_dataset(ds, directory)
    if isinstance(splits, Assignment):
        predefined.save(directory, splits)
    elif splits is not None:
        arrays = {}
        for r, f, tr, te in splits:
            arrays[f"train_{r}_{f}"], arrays[f"test_{r}_{f}"] = tr, te
        write_atomic(directory / "splits.npz", lambda f: np.savez_compressed(f, **arrays))
    write_json_atomic(directory / "entry.json", stamp)


def _unpack_splits(z) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    keys = sorted((tuple(map(int, k.split("_")[1:])) for k in z.files if k.startswith("train_")))
    return [(r, f, z[f"train_{r}_{f}"].astype(np.int64), z[f"test_{r}_{f}"].astype(np.int64))
            for r, f in keys]
