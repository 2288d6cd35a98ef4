"""The data the perf scripts time on: the first split of named datasets of a suite, as a job gets it."""

from __future__ import annotations

from bench.adapters import TaskInfo
from bench.splits import make_splits
from bench.suites import load_suite, materialize
from bench.tuning import Parts


def first_split_parts(suite_name: str, names: list[str]) -> dict[str, tuple[TaskInfo, Parts]]:
    """name -> (task, the dataset's first split's parts) for each of `names`, in that order (SystemExit naming
    the datasets the suite lacks). The suite's own splits (OpenML task, predefined) as bench run uses them."""
    suite = load_suite(suite_name)
    loaded, _ = materialize(suite)
    out = {}
    for item in loaded:
        ds = item.dataset
        if ds.name in names:
            split = make_splits(ds, suite.protocol, item.task_splits, predefined=item.predefined)[0][0]
            out[ds.name] = (TaskInfo(ds.task_type, ds.n_classes), Parts.of_split(ds, split))
    missing = [n for n in names if n not in out]
    if missing:
        raise SystemExit(f"suite {suite_name} has no dataset(s) {', '.join(missing)}")
    return {n: out[n] for n in names}
