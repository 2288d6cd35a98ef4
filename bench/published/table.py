"""Published result tables as data: one cell per dataset x model x variant, with its source and protocol.

A table is a TOML file in a `published/` folder of the suite search path (the built-in ones in
suites/published/, installed as bench.suitedefs), or any path. Format (README, "Reproducing published
results"):

    name = "talent"                      # default: the file name
    description = "..."
    suite = "talent"                     # the suite (name, or a .toml path relative to this file) that
                                         # holds the cells' datasets with the source's split
    decimals = 4                         # digits the source prints means and stds with
    std_ddof = 0                         # the source's std over seeds (numpy's np.std: 0)
    [source]                             # where the numbers come from
    repository = "LAMDA-Tabular/TALENT"
    commit = "c9d24c8..."                # or release = "v1.0"
    url = "https://github.com/..."       # optional
    [datasets.<name>]                    # per dataset: the metric and the source's file of its row
    metric = "accuracy"                  # accuracy | roc_auc | log_loss | rmse | mae | r2
    file = "results/cls_bin.md"
    [protocols.<name>]                   # the source's protocol, shared by the cells that name it
    split = "..."                        # in words
    trials = 100                         # tuning trials (omit: not tuned)
    seeds = 15                           # seeds the mean and std are over
    early_stopping = "..."               # in words ("none" when the model has none)
    max_epochs = 200                     # optional: neural models' epoch cap
    tuning = "..."                       # optional: sampler, objective, search space, in words
    cells = [ { dataset = "bank", model = "xgboost", variant = "tuned", mean = 0.9060, std = 0.0012,
                protocol = "gbdt", source_model = "xgboost", note = "..." }, ... ]

`model` is the harness's model name (`bench models list`), `source_model` the source's column. A cell
may override its dataset's `metric` / `file` and its protocol's `trials` / `seeds`. Problems are
SuiteFormatError naming the file and field (exit 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.suites.spec import FieldChecker
from bench.vocabulary import Variant

# Metrics a cell can name (bench.metrics reports them per test record and model seed); True: higher is better.
METRICS = {"accuracy": True, "roc_auc": True, "r2": True, "rmse": False, "log_loss": False, "mae": False}
FOLDER = "published"  # in every suite search folder


@dataclass(frozen=True)
class SourceProtocol:
    name: str
    split: str
    seeds: int
    early_stopping: str
    trials: int | None = None  # tuning trials; None: the source did not tune
    max_epochs: int | None = None
    tuning: str = ""


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: str  # the harness's model name
    source_model: str  # the source's name for it (its table's column)
    variant: str  # bench.records.schema.Variant: which of our records it is compared with
    metric: str
    mean: float
    std: float
    protocol: SourceProtocol
    file: str  # the source file its row is in
    note: str = ""

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric]

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.model}/{self.variant}"


@dataclass
class PublishedTable:
    name: str
    description: str
    path: Path
    suite: str  # suite name or resolved .toml path
    decimals: int
    std_ddof: int
    repository: str
    version: str  # commit or release
    url: str
    protocols: dict[str, SourceProtocol]
    cells: list[Cell] = field(default_factory=list)

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(c.dataset for c in self.cells))

    def models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.cells))

    def source_of(self, cell: Cell) -> str:
        return f"{self.repository} {cell.file} @ {self.version}"


def parse_table(path: str | Path) -> PublishedTable:
    path = Path(path)
    c = FieldChecker(path)
    raw = c.read_toml()
    c.unknown(raw, {"name", "description", "suite", "decimals", "std_ddof", "source", "datasets", "protocols",
                    "cells"}, "")
    name = c.name(c.str_(raw.get("name", path.stem), "name"), "name", "table")
    description = raw.get("description", "")
    if not isinstance(description, str):
        c.fail("description", f"expected a string, got {description!r}")
    for key in ("suite", "source", "datasets", "protocols", "cells"):
        if key not in raw:
            c.fail(key, "required")
    suite = c.str_(raw["suite"], "suite")
    if suite.endswith(".toml"):
        suite = str((path.resolve().parent / suite).resolve())
    decimals = c.int_(raw.get("decimals", 4), "decimals", minimum=0)
    std_ddof = c.int_(raw.get("std_ddof", 0), "std_ddof", minimum=0)
    if std_ddof > 1:
        c.fail("std_ddof", f"expected 0 (population std) or 1 (sample std), got {std_ddof}")
    source = c.table(raw["source"], "source")
    c.unknown(source, {"repository", "commit", "release", "url"}, "source")
    repository = c.str_(source.get("repository"), "source.repository")
    versions = [k for k in ("commit", "release") if k in source]
    if len(versions) != 1:
        c.fail("source", "give exactly one of commit or release (the numbers' exact version)")
    version = c.str_(source[versions[0]], f"source.{versions[0]}")
    url = source.get("url", "")
    datasets = {n: _dataset(c, c.table(d, f"datasets.{n}"), f"datasets.{n}")
                for n, d in c.table(raw["datasets"], "datasets").items()}
    protocols = {n: _protocol(c, n, c.table(p, f"protocols.{n}"), f"protocols.{n}")
                 for n, p in c.table(raw["protocols"], "protocols").items()}
    cells_raw = raw["cells"]
    if not isinstance(cells_raw, list) or not cells_raw:
        c.fail("cells", "expected a non-empty array of cell tables")
    cells = [_cell(c, c.table(d, f"cells[{i}]"), f"cells[{i}]", datasets, protocols) for i, d in enumerate(cells_raw)]
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells):
        if cell.key in seen:
            c.fail(f"cells[{i}]", f"{cell.key} is also cells[{seen[cell.key]}]")
        seen[cell.key] = i
    _check_models(c, cells)
    return PublishedTable(name, description, path, suite, decimals, std_ddof, repository, version, url, protocols,
                          cells)


def _dataset(c: FieldChecker, d: dict, where: str) -> dict:
    c.unknown(d, {"metric", "file"}, where)
    return {"metric": _metric(c, d.get("metric"), f"{where}.metric"), "file": c.str_(d.get("file"), f"{where}.file")}


def _metric(c: FieldChecker, value, where: str) -> str:
    if value not in METRICS:
        c.fail(where, f"expected one of {', '.join(METRICS)}, got {value!r}")
    return value


def _protocol(c: FieldChecker, name: str, d: dict, where: str) -> SourceProtocol:
    c.unknown(d, {"split", "trials", "seeds", "early_stopping", "max_epochs", "tuning"}, where)
    trials = c.int_(d["trials"], f"{where}.trials", minimum=1) if "trials" in d else None
    max_epochs = c.int_(d["max_epochs"], f"{where}.max_epochs", minimum=1) if "max_epochs" in d else None
    tuning = d.get("tuning", "")
    if not isinstance(tuning, str):
        c.fail(f"{where}.tuning", f"expected a string, got {tuning!r}")
    return SourceProtocol(name, c.str_(d.get("split"), f"{where}.split"),
                          c.int_(d.get("seeds"), f"{where}.seeds", minimum=1),
                          c.str_(d.get("early_stopping"), f"{where}.early_stopping"), trials, max_epochs, tuning)


_CELL_KEYS = {"dataset", "model", "source_model", "variant", "metric", "mean", "std", "protocol", "file", "trials",
              "seeds", "note"}


def _cell(c: FieldChecker, d: dict, where: str, datasets: dict, protocols: dict[str, SourceProtocol]) -> Cell:
    c.unknown(d, _CELL_KEYS, where)
    dataset = c.str_(d.get("dataset"), f"{where}.dataset")
    if dataset not in datasets:
        c.fail(f"{where}.dataset", f"'{dataset}' is not in [datasets] ({', '.join(datasets) or 'none'})")
    protocol_name = c.str_(d.get("protocol"), f"{where}.protocol")
    if protocol_name not in protocols:
        c.fail(f"{where}.protocol", f"'{protocol_name}' is not in [protocols] ({', '.join(protocols) or 'none'})")
    protocol = protocols[protocol_name]
    overrides = {}
    if "trials" in d:
        overrides["trials"] = c.int_(d["trials"], f"{where}.trials", minimum=1)
    if "seeds" in d:
        overrides["seeds"] = c.int_(d["seeds"], f"{where}.seeds", minimum=1)
    if overrides:
        protocol = SourceProtocol(**{**protocol.__dict__, **overrides})
    variant = c.str_(d.get("variant"), f"{where}.variant")
    if variant not in [v.value for v in Variant]:
        c.fail(f"{where}.variant", f"expected one of {', '.join(v.value for v in Variant)}, got {variant!r}")
    if variant != Variant.DEFAULT and protocol.trials is None:
        c.fail(f"{where}.variant", f"a {variant} cell needs its source's trials (protocol '{protocol.name}' "
                                   f"has none)")
    mean, std = (_number(c, d.get(k), f"{where}.{k}") for k in ("mean", "std"))
    if std < 0:
        c.fail(f"{where}.std", f"must be >= 0, got {std}")
    note = d.get("note", "")
    if not isinstance(note, str):
        c.fail(f"{where}.note", f"expected a string, got {note!r}")
    model = c.str_(d.get("model"), f"{where}.model")
    return Cell(dataset, model, c.str_(d.get("source_model", model), f"{where}.source_model"), variant,
                _metric(c, d.get("metric", datasets[dataset]["metric"]), f"{where}.metric"), mean, std, protocol,
                c.str_(d.get("file", datasets[dataset]["file"]), f"{where}.file"), note)


def _number(c: FieldChecker, value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        c.fail(where, f"expected a finite number, got {value!r} (leave out cells the source has no number for)")
    return float(value)


def _check_models(c: FieldChecker, cells: list[Cell]) -> None:
    from bench.adapters import load_adapters

    known = load_adapters()
    for i, cell in enumerate(cells):
        if cell.model not in known:
            c.fail(f"cells[{i}].model", f"unknown model '{cell.model}'; valid: {', '.join(sorted(known))}")


def search_dirs() -> list[Path]:
    """`published/` in every suite search folder (bench.suites.registry.search_dirs), first match wins."""
    from bench.suites.registry import search_dirs as suite_dirs

    return [d / FOLDER for d in suite_dirs() if (d / FOLDER).is_dir()]


def table_names() -> list[str]:
    return sorted({p.stem for d in search_dirs() for p in d.glob("*.toml")})


def load_table(name_or_path: str | Path) -> PublishedTable:
    """A table by name (published/<name>.toml in the suite search folders) or by path."""
    p = Path(str(name_or_path)).expanduser()
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise BenchError(f"published table file '{name_or_path}' does not exist")
        return parse_table(p)
    for d in search_dirs():
        if (d / f"{name_or_path}.toml").is_file():
            return parse_table(d / f"{name_or_path}.toml")
    raise BenchError(f"unknown published table '{name_or_path}'. Tables: {', '.join(table_names()) or '(none found)'} "
                     f"(or give a path to a .toml file)")

