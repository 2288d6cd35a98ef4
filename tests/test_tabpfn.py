"""TabPFN: weights only from a configured local path, never downloaded; clean "unavailable" records
without them, "failed" records for a broken file, "skipped" records beyond its documented limits.

The real weights cannot be had offline, so the loading path is tested with a randomly initialised
checkpoint in tabpfn's own format (tests/tabpfn_checkpoint.py): it goes through the same loading code,
but its predictions carry no information, so only shapes and well-formedness are checked, never accuracy.
"""

import importlib.util

import numpy as np
import pytest

from bench.adapters import FitContext, get_adapter
from bench.adapters.models.tabpfn import ALLOW_CPU_ENV, WEIGHTS, WEIGHTS_ENV, TabPFNAdapter
from bench.analysis.leaderboard import compute
from bench.execution.runner import run_local
from tests.adapter_helpers import check_output, fit_predict, make_data
from tests.test_runner import _jobs

HAS_V2_ARCHITECTURE = (importlib.util.find_spec("tabpfn") is not None
                       and importlib.util.find_spec("tabpfn.architectures.tabpfn_v2") is not None)
needs_tabpfn = pytest.mark.skipif(not HAS_V2_ARCHITECTURE, reason="tabpfn (with its v2 architecture) not installed")
N_CLASSES = {"binary": 2, "multiclass": 3, "regression": 0}


def _write_weights(folder, kinds=("classifier", "regressor")):
    from tests.tabpfn_checkpoint import write_random_checkpoint

    return {kind: write_random_checkpoint(folder / f"tabpfn-v2-{kind}-random.ckpt", kind == "regressor")
            for kind in kinds}


@pytest.fixture
def weights(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    files = _write_weights(folder)
    monkeypatch.setenv(WEIGHTS_ENV, str(folder))
    return files


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    folder = tmp_path / "no-weights"
    folder.mkdir()
    monkeypatch.setenv(WEIGHTS_ENV, str(folder))
    return folder


@needs_tabpfn
def test_without_weights_the_reason_says_where_it_looked_and_what_to_do(no_weights):
    for task_type in (None, "binary", "regression"):
        reason = TabPFNAdapter.unavailable_reason(task_type)
        assert str(no_weights) in reason and WEIGHTS_ENV in reason and "not downloaded" in reason
    assert "regressor" in TabPFNAdapter.unavailable_reason("regression")
    assert WEIGHTS.find("classifier") is None


@needs_tabpfn
@pytest.mark.parametrize("task_type", ["binary", "multiclass", "regression"])
def test_random_checkpoint_loads_through_the_configured_folder(task_type, weights):
    data = make_data(task_type, n=200)  # awkward names, NaN numerics, a test-only category
    adapter, pred, _ = fit_predict(TabPFNAdapter, task_type, data, {"n_estimators": 2}, FitContext(seed=0))
    check_output(pred, len(data[4]), task_type, N_CLASSES[task_type])
    kind = "regressor" if task_type == "regression" else "classifier"
    assert adapter.ctx.info["weights"] == str(weights[kind])
    assert len(np.unique(np.round(pred, 6), axis=0)) > 1  # the rows reach the network's output


@needs_tabpfn
def test_a_single_file_serves_the_task_its_name_says(tmp_path, monkeypatch):
    files = _write_weights(tmp_path, kinds=("classifier",))
    monkeypatch.setenv(WEIGHTS_ENV, str(files["classifier"]))
    assert TabPFNAdapter.unavailable_reason("multiclass") is None
    assert TabPFNAdapter.unavailable_reason(None) is None  # usable for some task type
    assert "regressor" in TabPFNAdapter.unavailable_reason("regression")


def test_missing_library_is_reported_with_the_extra_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("tabpfn", "pytabkit") else real(name, *a))
    assert "tabular-bench[tabpfn]" in get_adapter("tabpfn").unavailable_reason("binary")
    assert "tabular-bench[realmlp]" in get_adapter("realmlp").unavailable_reason()


@needs_tabpfn
def test_unavailable_records_without_weights_then_ok_once_they_exist(make_ds, no_weights, tmp_path):
    jobs, store = _jobs(tmp_path, [make_ds("multiclass", n=150)], ["tabpfn"], trials=3)
    summary = run_local(jobs, store, workers=0)
    records = store.load_all()
    assert {r["status"] for r in records} == {"unavailable"} and len(records) == 2  # 2 splits, default only
    assert str(no_weights) in records[0]["reason"] and records[0]["task_type"] == "multiclass"
    assert summary.unavailable["tabpfn"] == records[0]["reason"] and not summary.failures
    row = compute(store.frame()).set_index("model").loc["tabpfn"]
    assert row["unavailable"] == 2 and row["failures"] == 0 and np.isnan(row["norm_minmax"])

    _write_weights(no_weights)  # the weights arrive: the same sweep runs the jobs now
    again = run_local(jobs, store, workers=0)
    assert again.skipped_done == 0 and again.statuses == {"ok": 2}


@needs_tabpfn
def test_corrupt_weights_file_is_a_failure_record_naming_the_file(make_ds, tmp_path, monkeypatch):
    broken = tmp_path / "w" / "tabpfn-v2-classifier.ckpt"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a checkpoint")
    monkeypatch.setenv(WEIGHTS_ENV, str(broken.parent))
    jobs, store = _jobs(tmp_path, [make_ds("binary", n=120)], ["tabpfn"], trials=1)
    run_local(jobs, store, workers=0)
    records = store.load_all()
    assert {r["status"] for r in records} == {"failed"}
    assert "could not load the weights" in records[0]["error"]["message"]
    assert str(broken) in records[0]["error"]["message"]


@needs_tabpfn
def test_rows_beyond_the_cpu_limit_are_skipped_records(make_ds, weights, tmp_path):
    jobs, store = _jobs(tmp_path, [make_ds("binary", n=2600)], ["tabpfn"], trials=1)
    run_local(jobs, store, workers=0)  # 2 folds: ~1040 training rows per split
    records = store.load_all()
    assert {r["status"] for r in records} == {"skipped"}
    assert "CPU limit of 1000" in records[0]["reason"] and ALLOW_CPU_ENV in records[0]["reason"]


def test_documented_limits_are_capabilities(monkeypatch):
    caps = TabPFNAdapter.capabilities
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    assert caps.refusal("binary", 1000, 500, 2, "cpu") is None
    assert "10001 training rows exceed the limit of 10000" in caps.refusal("binary", 10_001, 5, 2, "cuda")
    assert "501 features exceed the limit of 500" in caps.refusal("binary", 100, 501, 2, "cuda")
    assert "11 classes exceed the limit of 10" in caps.refusal("multiclass", 100, 5, 11, "cuda")
    assert "CPU limit" in caps.refusal("regression", 1001, 5, 0, "cpu")
    assert caps.refusal("regression", 5000, 5, 0, "cuda") is None
    monkeypatch.setenv(ALLOW_CPU_ENV, "1")  # tabpfn's own switch lifts the CPU limit here too
    assert caps.refusal("regression", 5000, 5, 0, "cpu") is None


def test_without_the_variable_tabpfns_own_cache_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TABPFN_MODEL_CACHE_DIR", str(tmp_path))
    assert WEIGHTS.find("regressor") is None
    (tmp_path / "tabpfn-v2-regressor.ckpt").write_bytes(b"")  # found by name; loading is tested above
    (tmp_path / ".tabpfn-v2-classifier.ckpt.lock").write_bytes(b"")  # a download lock is no checkpoint
    assert WEIGHTS.find("regressor") == tmp_path / "tabpfn-v2-regressor.ckpt"
    assert WEIGHTS.find("classifier") is None
    if importlib.util.find_spec("tabpfn") is not None:
        reason = TabPFNAdapter.unavailable_reason("binary")
        assert str(tmp_path) in reason and f"{WEIGHTS_ENV} is not set" in reason
