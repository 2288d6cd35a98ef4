"""Finding suites: built-in definitions, extra folders, suite files and local data folders."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from bench import settings
from bench.errors import BenchError, did_you_mean
from bench.suites.local_source import MANIFEST, read_manifest
from bench.suites.spec import DatasetEntry, Filters, Protocol, Suite, parse_suite_file


def search_dirs() -> list[Path]:
    """Where named suites are looked up, first match wins: $BENCH_SUITES_PATH (os.pathsep-separated),
    ./suites in the current directory, then the built-in definitions (package bench.suitedefs)."""
    dirs = [Path(p) for p in settings.SUITES_PATH.items()]
    dirs.append(Path.cwd() / "suites")
    builtin = importlib.resources.files("bench.suitedefs")
    dirs.append(Path(str(builtin)))
    seen, out = set(), []
    for d in dirs:
        key = d.resolve() if d.exists() else d
        if key not in seen and d.is_dir():
            seen.add(key)
            out.append(d)
    return out


def _named() -> dict[str, Path]:
    """name -> suite file (<name>.toml) or local data folder (<name>/manifest.json)."""
    found: dict[str, Path] = {}
    for d in search_dirs():
        for p in sorted(d.iterdir()):
            if p.suffix == ".toml" and p.is_file():
                found.setdefault(p.stem, p)
            elif p.is_dir() and (p / MANIFEST).is_file():
                found.setdefault(p.name, p)
    return found


def suite_names() -> list[str]:
    return sorted(_named())


def load_suite(name_or_path: str) -> Suite:
    """A named suite, a path to a .toml suite file, or a path to a folder holding manifest.json."""
    p = Path(str(name_or_path)).expanduser()
    looks_like_path = p.suffix == ".toml" or os.sep in str(name_or_path) or p.is_absolute()
    if p.is_file() and p.suffix == ".toml":
        return parse_suite_file(p)
    if p.is_dir() and (p / MANIFEST).is_file():
        return folder_suite(p)
    named = _named()
    if str(name_or_path) in named:
        target = named[str(name_or_path)]
        return parse_suite_file(target) if target.is_file() else folder_suite(target)
    if p.is_dir():
        raise BenchError(f"folder {p} is not a local suite: it has no {MANIFEST}")
    if looks_like_path:
        raise BenchError(f"suite file or folder '{name_or_path}' does not exist")
    valid = ", ".join(sorted(named)) or "(none found)"
    raise BenchError(f"unknown suite '{name_or_path}'.{did_you_mean(str(name_or_path), named)} Valid suites: {valid} "
                     f"(or give a path to a .toml file or to a folder with {MANIFEST})")


def list_suites() -> list[Suite]:
    """Every discoverable suite, parsed but with no data loaded (a local folder's manifest is read)."""
    out = []
    for _name, target in sorted(_named().items()):
        out.append(parse_suite_file(target) if target.is_file() else folder_suite(target))
    return out


def folder_suite(folder: Path) -> Suite:
    """A local data folder used directly as a suite: one entry per manifest dataset, 5-fold CV, or each
    dataset's own split when every one declares a split column (`bench import talent` writes such)."""
    folder = Path(folder).resolve()
    name, description, entries = read_manifest(folder)
    with_split = [e.name for e in entries if e.split_column]
    if with_split and len(with_split) < len(entries):
        raise BenchError(f"{folder / MANIFEST}: datasets {', '.join(map(str, with_split))} declare a split_column "
                         f"and the others do not; a folder used as a suite needs all or none (or write a suite "
                         f"file with [protocol] splits)")
    protocol = Protocol(splits="predefined") if with_split else Protocol()
    return Suite(name=name, description=description, path=folder, protocol=protocol,
                 filters=Filters(), entries=entries, openml_suite_id=None)


def expand_local(entry: DatasetEntry) -> list[DatasetEntry]:
    """A suite file's `local = "folder"` entry -> the folder's datasets."""
    return read_manifest(entry.location)[2]


def listed_datasets(suite: Suite) -> tuple[list[DatasetEntry], list[str]]:
    """The datasets a suite lists, without loading any: a `local` folder entry becomes its manifest's
    datasets. Also the problems met (a folder that is not there), so a listing can say so. An OpenML
    suite's tasks are not listed here (they need the OpenML cache)."""
    out: list[DatasetEntry] = []
    problems = []
    for entry in suite.entries:
        if entry.kind != "local":
            out.append(entry)
            continue
        try:
            out += expand_local(entry)
        except BenchError as err:
            problems.append(str(err))
    return out, problems
