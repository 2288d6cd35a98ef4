"""Suite definitions: the dataclasses and the strict TOML parser.

A suite file names its datasets and how to evaluate them; nothing here touches data. Every problem
in a file is reported as SuiteFormatError(file, field, problem) so that a user can fix it at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, NoReturn, get_args

import numpy as np

from bench.datasets import TASK_TYPES, Dataset
from bench.errors import BenchError, SuiteFormatError
from bench.names import name_problem
from bench.suites.predefined import Assignment

# Where a protocol's outer splits come from: "kfold" (an OpenML task's own splits where the entry is a
# task and use_task_splits allows it, else seeded K-fold made here) or "predefined" (every dataset brings
# its own assignment: a split column or a TALENT folder, bench.suites.predefined).
SplitSource = Literal["kfold", "predefined"]


@dataclass
class Protocol:
    folds: int = 5
    repeats: int = 1
    validation_fraction: float = 0.2
    seed: int = 0
    use_task_splits: bool = True  # use an OpenML task's own splits where the entry is a task
    # 1: tune on the validation part (holdout); K > 1: inner K-fold cross-validation of the outer
    # training part (train + validation rows), bench.tuning.crossfit
    inner_folds: int = 1
    # inner_folds applies to datasets of at most this many rows; larger ones keep the holdout (their
    # validation part is large enough to select on). None: every dataset.
    inner_folds_max_rows: int | None = None
    splits: SplitSource = "kfold"


@dataclass
class Filters:
    min_rows: int | None = None
    max_rows: int | None = None
    max_features: int | None = None
    max_classes: int | None = None
    task_types: list[str] | None = None


SOURCE_KINDS = ("openml_task", "openml_dataset", "embedded", "path", "local", "talent")


@dataclass
class DatasetEntry:
    """One source of data. kind is one of SOURCE_KINDS; 'local' is a whole manifest folder that
    materialize() expands into 'path' entries (one per manifest dataset); 'talent' is one dataset folder
    in TALENT's format (bench.suites.talent_source), which brings its own train/val/test split."""

    kind: str
    id: int | None = None  # OpenML task or dataset id
    path: Path | None = None  # file (kind 'path'), folder with manifest.json ('local'), TALENT folder ('talent')
    embedded: str | None = None  # name in bench.suites.embedded_source.DATASETS
    name: str | None = None  # display name; default: the source's own name
    target: str | None = None
    task_type: str | None = None
    categorical: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    sha256: str | None = None  # expected sha256 of the file (kind 'path') or of the folder's files ('talent')
    split_column: str | None = None  # kind 'path': the column holding a predefined split (bench.suites.predefined)
    provenance: dict = field(default_factory=dict)  # extra Dataset.source items (manifest info)

    @property
    def location(self) -> Path:
        """The file or folder of a 'path', 'local' or 'talent' entry (the parser sets it for those kinds)."""
        if self.path is None:
            raise BenchError(f"the {self.kind} entry {self.name or ''} names no file or folder")
        return Path(self.path)

    def describe(self) -> str:
        if self.kind in ("openml_task", "openml_dataset"):
            return f"{self.kind.replace('_', ' ')} {self.id}"
        if self.kind == "embedded":
            return f"embedded dataset '{self.embedded}'"
        if self.kind == "talent":
            return f"TALENT folder {self.path}"
        return f"{'file' if self.kind == 'path' else 'folder'} {self.path}"

    def cache_key(self) -> str:
        """Stable directory name for the materialized dataset; customizations add a spec hash."""
        if self.kind == "openml_task":
            key = f"openml-task-{self.id}"
        elif self.kind == "openml_dataset":
            key = f"openml-dataset-{self.id}-{_slug(self.target or 'default')}"
        elif self.kind == "embedded":
            key = f"embedded-{self.embedded}"
        else:
            path_hash = hashlib.sha256(str(self.location.resolve()).encode()).hexdigest()[:12]
            prefix = "talent" if self.kind == "talent" else "local"
            key = f"{prefix}-{path_hash}-{_slug(self.name or self.location.stem)}"
        custom = [self.drop, self.categorical, self.task_type]
        if self.kind == "path":
            custom += [self.target, self.sha256] + ([self.split_column] if self.split_column else [])
        if any(custom):
            key += "-x" + hashlib.sha256(json.dumps(custom).encode()).hexdigest()[:8]
        return key

    def spec(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path) if self.path else None
        return d


@dataclass
class Suite:
    name: str
    description: str
    path: Path | None
    protocol: Protocol
    filters: Filters
    entries: list[DatasetEntry]
    openml_suite_id: int | str | None = None  # numeric id or alias


@dataclass
class LoadedDataset:
    dataset: Dataset
    # (repeat, fold, train_indices, test_indices) from an OpenML task; indices into dataset rows.
    # None unless the entry is an OpenML task and the suite's protocol has use_task_splits = true.
    task_splits: list[tuple[int, int, np.ndarray, np.ndarray]] | None
    entry: DatasetEntry
    # The dataset's own split (a split column or a TALENT folder); set exactly when the suite's
    # protocol has splits = "predefined".
    predefined: Assignment | None = None


@dataclass
class Excluded:
    name: str
    reason: str


# --- parsing --------------------------------------------------------------------------------------

_TOP_KEYS = {"name", "description", "protocol", "filters", "openml_suite", "datasets",
             "paths_relative_to"}
_ENTRY_KEYS = {"name", "target", "task_type", "categorical", "drop", "sha256", "split_column"}
# Which optional fields each source accepts (a field that would be silently ignored is an error).
_ALLOWED = {
    "openml_task": {"name", "categorical", "drop"},
    "openml_dataset": {"name", "target", "task_type", "categorical", "drop"},
    "embedded": {"name", "drop"},
    "path": {"name", "target", "task_type", "categorical", "drop", "sha256", "split_column"},
    "local": set(),
    "talent": {"name", "sha256"},
}


def _type_name(v) -> str:
    return f"{type(v).__name__} {v!r}"


class _Checker:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, fld: str, problem: str) -> NoReturn:
        raise SuiteFormatError(self.path, fld, problem)

    def read_toml(self) -> dict:
        """The file's TOML; an unreadable or invalid file fails on the field "(file)"."""
        try:
            return tomllib.loads(self.path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            self.fail("(file)", f"invalid TOML: {e}")
        except OSError as e:
            self.fail("(file)", f"cannot read: {e.strerror or e}")

    def int_(self, v, fld, minimum=None):
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(fld, f"expected an integer, got {_type_name(v)}")
        if minimum is not None and v < minimum:
            self.fail(fld, f"must be >= {minimum}, got {v}")
        return v

    def str_(self, v, fld):
        if not isinstance(v, str) or not v.strip():
            self.fail(fld, f"expected a non-empty string, got {_type_name(v)}")
        return v

    def name(self, v, fld, what: str):
        """A suite or dataset name: it becomes a folder name (bench.names)."""
        problem = name_problem(v)
        if problem:
            self.fail(fld, f"{what} name {problem}")
        return v

    def str_list(self, v, fld):
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            self.fail(fld, f"expected a list of strings, got {_type_name(v)}")
        return list(v)

    def task_type(self, v, fld):
        self.str_(v, fld)
        if v not in TASK_TYPES:
            self.fail(fld, f"'{v}' is not a task type; expected one of {', '.join(TASK_TYPES)}")
        return v

    def table(self, v, fld):
        if not isinstance(v, dict):
            self.fail(fld, f"expected a table, got {_type_name(v)}")
        return v

    def unknown(self, d: dict, allowed: set, prefix: str):
        for k in d:
            if k not in allowed:
                where = f"{prefix}.{k}" if prefix else k
                self.fail(where, f"unknown field; allowed: {', '.join(sorted(allowed))}")


# The strict field checker is shared with the other TOML files the harness reads (published tables,
# bench.published.table): the same "file: field: problem" messages.
FieldChecker = _Checker


def parse_suite_file(path: str | Path) -> Suite:
    path = Path(path)
    c = _Checker(path)
    raw = c.read_toml()
    c.unknown(raw, _TOP_KEYS, "")
    name = c.name(c.str_(raw["name"], "name"), "name", "suite") if "name" in raw else \
        c.name(path.stem, "name", "suite (from the file name; set name = \"...\")")
    description = raw.get("description", "")
    if not isinstance(description, str):
        c.fail("description", f"expected a string, got {_type_name(description)}")
    relative_to = raw.get("paths_relative_to", "suite")
    if relative_to not in ("suite", "cwd"):
        c.fail("paths_relative_to", f"expected 'suite' or 'cwd', got {relative_to!r}")
    base = path.resolve().parent if relative_to == "suite" else Path.cwd()

    protocol = _parse_protocol(c, c.table(raw.get("protocol", {}), "protocol"))
    filters = _parse_filters(c, c.table(raw.get("filters", {}), "filters"))

    suite_id = None
    if "openml_suite" in raw:
        value = raw["openml_suite"]
        # OpenML accepts a suite's numeric id or its alias (e.g. "tabarena-v0.1").
        if isinstance(value, str) and value.strip():
            suite_id = value.strip()
        else:
            suite_id = c.int_(value, "openml_suite", minimum=1)
    datasets = raw.get("datasets", [])
    if not isinstance(datasets, list):
        c.fail("datasets", f"expected an array of tables ([[datasets]]), got {_type_name(datasets)}")
    if suite_id is not None and datasets:
        c.fail("datasets", "give either openml_suite or [[datasets]] entries, not both")
    if suite_id is None and not datasets:
        c.fail("datasets", "the suite has no datasets: add [[datasets]] entries or openml_suite = <id>")
    entries = [_parse_entry(c, c.table(d, f"datasets[{i}]"), f"datasets[{i}]", base)
               for i, d in enumerate(datasets)]
    return Suite(name, description, path, protocol, filters, entries, suite_id)


def _parse_protocol(c: _Checker, t: dict) -> Protocol:
    c.unknown(t, {"folds", "repeats", "validation_fraction", "seed", "use_task_splits", "inner_folds",
                  "inner_folds_max_rows", "splits"}, "protocol")
    p = Protocol()
    if "splits" in t:
        allowed = get_args(SplitSource)
        if t["splits"] not in allowed:
            c.fail("protocol.splits", f"expected one of {', '.join(repr(a) for a in allowed)}, got {t['splits']!r}")
        p.splits = t["splits"]
        if p.splits == "predefined":
            for key in ("folds", "repeats", "use_task_splits"):
                if key in t:
                    c.fail(f"protocol.{key}", "not used with splits = \"predefined\" (each dataset's split "
                                              "column or TALENT folder defines its splits); remove it")
    if "folds" in t:
        p.folds = c.int_(t["folds"], "protocol.folds", minimum=2)
    if "repeats" in t:
        p.repeats = c.int_(t["repeats"], "protocol.repeats", minimum=1)
    if "seed" in t:
        p.seed = c.int_(t["seed"], "protocol.seed", minimum=0)
    if "inner_folds" in t:
        p.inner_folds = c.int_(t["inner_folds"], "protocol.inner_folds", minimum=1)
    if "inner_folds_max_rows" in t:
        p.inner_folds_max_rows = c.int_(t["inner_folds_max_rows"], "protocol.inner_folds_max_rows", minimum=1)
    if "validation_fraction" in t:
        v = t["validation_fraction"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            c.fail("protocol.validation_fraction", f"expected a number in (0, 1), got {v!r}")
        p.validation_fraction = float(v)
    if "use_task_splits" in t:
        if not isinstance(t["use_task_splits"], bool):
            c.fail("protocol.use_task_splits", f"expected true or false, got {t['use_task_splits']!r}")
        p.use_task_splits = t["use_task_splits"]
    return p


def _parse_filters(c: _Checker, t: dict) -> Filters:
    c.unknown(t, {"min_rows", "max_rows", "max_features", "max_classes", "task_types"}, "filters")
    f = Filters()
    for key in ("min_rows", "max_rows", "max_features", "max_classes"):
        if key in t:
            setattr(f, key, c.int_(t[key], f"filters.{key}", minimum=1))
    if "task_types" in t:
        f.task_types = c.str_list(t["task_types"], "filters.task_types")
        for i, tt in enumerate(f.task_types):
            c.task_type(tt, f"filters.task_types[{i}]")
    if f.min_rows and f.max_rows and f.min_rows > f.max_rows:
        c.fail("filters.min_rows", f"min_rows {f.min_rows} is larger than max_rows {f.max_rows}")
    return f


def _parse_entry(c: _Checker, d: dict, where: str, base: Path) -> DatasetEntry:
    c.unknown(d, _ENTRY_KEYS | set(SOURCE_KINDS), where)
    kinds = [k for k in SOURCE_KINDS if k in d]
    if len(kinds) != 1:
        got = f"got {' and '.join(kinds)}" if kinds else "got none"
        c.fail(where, f"needs exactly one source ({', '.join(SOURCE_KINDS)}); {got}")
    kind = kinds[0]
    for k in d:
        if k != kind and k not in _ALLOWED[kind]:
            c.fail(f"{where}.{k}", f"not allowed with {kind}"
                   + (" (the task defines it)" if kind == "openml_task" else ""))
    e = DatasetEntry(kind=kind)
    if kind in ("openml_task", "openml_dataset"):
        e.id = c.int_(d[kind], f"{where}.{kind}", minimum=1)
    elif kind == "embedded":
        from bench.suites.embedded_source import DATASETS

        e.embedded = c.str_(d[kind], f"{where}.embedded")
        if e.embedded not in DATASETS:
            c.fail(f"{where}.embedded", f"unknown embedded dataset '{e.embedded}'; "
                   f"valid: {', '.join(sorted(DATASETS))}")
    else:
        e.path = resolve_path(c, c.str_(d[kind], f"{where}.{kind}"), f"{where}.{kind}", base)
        if kind == "path" and e.path.suffix.lower() not in (".parquet", ".pq", ".csv"):
            c.fail(f"{where}.path", f"expected a .parquet or .csv file, got '{e.path.name}'")
    if "split_column" in d:
        e.split_column = c.str_(d["split_column"], f"{where}.split_column")
    if "name" in d:
        e.name = c.name(c.str_(d["name"], f"{where}.name"), f"{where}.name", "dataset")
    if "target" in d:
        e.target = c.str_(d["target"], f"{where}.target")
    elif kind == "path":
        c.fail(f"{where}.target", "required for a path entry (the name of the target column)")
    if "task_type" in d:
        e.task_type = c.task_type(d["task_type"], f"{where}.task_type")
    if "categorical" in d:
        e.categorical = c.str_list(d["categorical"], f"{where}.categorical")
    if "drop" in d:
        e.drop = c.str_list(d["drop"], f"{where}.drop")
    if "sha256" in d:
        e.sha256 = c.str_(d["sha256"], f"{where}.sha256").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", e.sha256):
            c.fail(f"{where}.sha256", "expected 64 hexadecimal digits")
    return e


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def resolve_path(c: _Checker, value: str, fld: str, base: Path) -> Path:
    """Expand ${VAR} / ${VAR:-default}, then resolve a relative path against base."""

    def sub(m: re.Match) -> str:
        val = os.environ.get(m.group(1))
        if val:
            return val
        if m.group(2) is None:
            c.fail(fld, f"environment variable {m.group(1)} is not set (and no ${{VAR:-default}})")
        return m.group(2)

    p = Path(_VAR.sub(sub, value)).expanduser()
    return p if p.is_absolute() else base / p


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)[:60]
