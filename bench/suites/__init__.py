"""Suite registry and dataset sources.

    load_suite(name_or_path) -> Suite      a built-in/discoverable name, a .toml file, or a folder
                                           holding manifest.json
    list_suites() -> list[Suite]           every discoverable suite (no data loaded)
    materialize(suite, refresh=False) -> (list[LoadedDataset], list[Excluded])

Named suites are looked up in $BENCH_SUITES_PATH (os.pathsep-separated folders), ./suites, then the
built-in definitions (the top-level suites/ folder, installed as bench.suitedefs).
"""

from bench.suites.materialize import materialize
from bench.suites.registry import list_suites, load_suite
from bench.suites.spec import DatasetEntry, Excluded, Filters, LoadedDataset, Protocol, Suite

__all__ = [
    "load_suite", "list_suites", "materialize",
    "Suite", "Protocol", "Filters", "DatasetEntry", "LoadedDataset", "Excluded",
]
