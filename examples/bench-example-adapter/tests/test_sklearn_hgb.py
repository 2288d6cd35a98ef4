"""The adapter keeps tabular-bench's contract, and the entry point registers it."""

from importlib.metadata import PackageNotFoundError, distribution

import pytest
from bench_example_adapter import HistGradientBoostingAdapter

from bench.testing import check_adapter


def test_keeps_the_adapter_contract():
    report = check_adapter(HistGradientBoostingAdapter)
    print(report)
    assert set(report.passed) == {"binary", "multiclass", "regression"}


def test_the_entry_point_registers_it():
    try:
        distribution("bench-example-adapter")
    except PackageNotFoundError:
        pytest.skip("the package is not installed (pip install -e .), so it has no entry point yet")
    from bench.adapters import load_adapters

    assert load_adapters()["sklearn_hgb"] is HistGradientBoostingAdapter
