"""TabICL and TabDPT: weights only from local files (BENCH_TABICL_WEIGHTS / BENCH_TABDPT_WEIGHTS, else the
Hugging Face cache), never downloaded; clean "unavailable" records without them, "failed" records for a
broken file, "skipped" records beyond the CPU bound and the documented limits.

The real weights cannot be had offline, so the loading path is tested with randomly initialised checkpoints
in each package's own format (tests/icl_checkpoints.py): the same loading code, meaningless predictions, so
only shapes, well-formedness and that the rows reach the output are checked, never accuracy.
"""

import importlib
import importlib.util
import os

import numpy as np
import pytest

from bench.adapters import FitContext, get_adapter
from bench.adapters.framework.in_context import ALLOW_CPU_ENV, hf_hub_cache
from bench.execution.runner import run_local
from tests.adapter_helpers import check_output, fit_predict, make_data
from tests.test_runner import _jobs

HAS = {name: importlib.util.find_spec(name) is not None for name in ("tabicl", "tabdpt")}
ENV = {"tabicl": "BENCH_TABICL_WEIGHTS", "tabdpt": "BENCH_TABDPT_WEIGHTS"}
N_CLASSES = {"binary": 2, "multiclass": 3, "regression": 0}
MODELS = [pytest.param(m, marks=pytest.mark.skipif(not HAS[m], reason=f"{m} not installed")) for m in HAS]


def _write(model, folder, kinds=("classifier", "regressor")):
    from tests.icl_checkpoints import write_random_tabdpt, write_random_tabicl

    if model == "tabdpt":  # one file serves both kinds
        return {kind: write_random_tabdpt(folder / "tabdpt-random.safetensors") for kind in kinds}
    return {kind: write_random_tabicl(folder / f"tabicl-{kind}-random.ckpt", kind == "regressor") for kind in kinds}


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to download from the Hugging Face Hub fails the test."""
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    for module in ("tabicl._sklearn.classifier", "tabicl._sklearn.regressor", "tabdpt.estimator"):
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            monkeypatch.setattr(importlib.import_module(module), "hf_hub_download", refuse)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("task_type", ["binary", "multiclass", "regression"])
def test_random_checkpoint_loads_from_the_configured_folder_without_network(model, task_type, tmp_path,
                                                                             monkeypatch, no_network):
    files = _write(model, tmp_path / "w")
    monkeypatch.setenv(ENV[model], str(tmp_path / "w"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    data = make_data(task_type, n=200)  # awkward names, NaN numerics, a test-only category
    cls = get_adapter(model)
    adapter, pred, _ = fit_predict(cls, task_type, data, dict(cls.smoke_params), FitContext(seed=0))
    check_output(pred, len(data[4]), task_type, N_CLASSES[task_type])
    kind = "regressor" if task_type == "regression" else "classifier"
    assert adapter.ctx.info["weights"] == str(files[kind]) and adapter.ctx.info["stopped_by"] == "converged"
    assert len(np.unique(np.round(pred, 6), axis=0)) > 1  # the rows reach the network's output
    assert "HF_HUB_OFFLINE" not in os.environ  # offline only while loading, then as it was


@pytest.mark.parametrize("model", MODELS)
def test_more_classes_than_the_checkpoint_has_outputs(model, tmp_path, monkeypatch):
    """12 classes against the checkpoints' 10 outputs: TabICL's many-class strategy, TabDPT's digits."""
    _write(model, tmp_path / "w", kinds=("classifier",))
    monkeypatch.setenv(ENV[model], str(tmp_path / "w"))
    X, y, tr, va, te = make_data("multiclass", n=360)
    y = np.arange(len(y)) % 12
    cls = get_adapter(model)
    _, pred, _ = fit_predict(cls, "multiclass", (X, y, tr, va, te), dict(cls.smoke_params), n_classes=12)
    check_output(pred, len(te), "multiclass", 12)


@pytest.mark.parametrize("model", MODELS)
def test_without_weights_the_reason_says_where_it_looked_and_what_to_do(model, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV[model], str(tmp_path))
    cls = get_adapter(model)
    for task_type in (None, "binary", "regression"):
        reason = cls.unavailable_reason(task_type)
        assert str(tmp_path) in reason and ENV[model] in reason and "not downloaded" in reason
    monkeypatch.delenv(ENV[model])
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert str(tmp_path / "hub") in cls.unavailable_reason("binary") and "is not set" in cls.unavailable_reason()


@pytest.mark.parametrize("model", MODELS)
def test_the_hugging_face_cache_is_found_without_importing_the_hub(model, tmp_path, monkeypatch):
    """A connected machine's earlier download, in huggingface_hub's cache layout, is used as it is."""
    from bench.adapters.models import tabdpt, tabicl

    weights = {"tabicl": tabicl.WEIGHTS, "tabdpt": tabdpt.WEIGHTS}[model]
    monkeypatch.delenv(ENV[model], raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hf_hub_cache() == tmp_path / "hf" / "hub"
    assert weights.find("classifier") is None
    snapshot = tmp_path / "hf" / "hub" / ("models--" + weights.hf_repo.replace("/", "--")) / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / weights.files["classifier"]).write_bytes(b"")  # found by name; loading is tested above
    assert weights.find("classifier") == snapshot / weights.files["classifier"]
    assert get_adapter(model).unavailable_reason("binary") is None


def test_a_single_file_serves_the_task_its_name_says(tmp_path, monkeypatch):
    from bench.adapters.models.tabdpt import WEIGHTS as TABDPT
    from bench.adapters.models.tabicl import WEIGHTS as TABICL

    clf = tmp_path / "tabicl-classifier-v2-20260212.ckpt"
    clf.write_bytes(b"")
    monkeypatch.setenv(TABICL.env, str(clf))
    assert TABICL.find("classifier") == clf and TABICL.find("regressor") is None
    one = tmp_path / "tabdpt1_3.safetensors"
    one.write_bytes(b"")
    monkeypatch.setenv(TABDPT.env, str(one))
    assert TABDPT.find("classifier") == one == TABDPT.find("regressor")


@pytest.mark.parametrize("model", MODELS)
def test_unavailable_records_without_weights_then_ok_once_they_exist(model, make_ds, tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(ENV[model], str(folder))
    jobs, store = _jobs(tmp_path, [make_ds("multiclass", n=150)], [model], trials=3)
    summary = run_local(jobs, store, workers=0)
    records = store.load_all()
    assert {r["status"] for r in records} == {"unavailable"} and len(records) == 2  # 2 splits, default only
    assert str(folder) in records[0]["reason"] and not summary.failures
    _write(model, folder)  # the weights arrive: the same sweep runs the jobs now
    again = run_local(jobs, store, workers=0)
    assert again.statuses == {"ok": 2}


@pytest.mark.parametrize("model", MODELS)
def test_corrupt_weights_file_is_a_failure_record_naming_the_file(model, make_ds, tmp_path, monkeypatch):
    name = {"tabicl": "tabicl-classifier-v2-20260212.ckpt", "tabdpt": "tabdpt1_3.safetensors"}[model]
    broken = tmp_path / "w" / name
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a checkpoint")
    monkeypatch.setenv(ENV[model], str(broken.parent))
    jobs, store = _jobs(tmp_path, [make_ds("binary", n=120)], [model], trials=1)
    run_local(jobs, store, workers=0)
    records = store.load_all()
    assert {r["status"] for r in records} == {"failed"}
    assert str(broken) in records[0]["error"]["message"] and "weights" in records[0]["error"]["message"]


@pytest.mark.parametrize("model", MODELS)
def test_rows_beyond_the_cpu_bound_are_skipped_records(model, make_ds, tmp_path, monkeypatch):
    _write(model, tmp_path / "w")
    monkeypatch.setenv(ENV[model], str(tmp_path / "w"))
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    jobs, store = _jobs(tmp_path, [make_ds("binary", n=2600)], [model], trials=1)
    run_local(jobs, store, workers=0)  # 2 folds: ~1040 training rows per split
    records = store.load_all()
    assert {r["status"] for r in records} == {"skipped"}
    assert "CPU bound of 1000" in records[0]["reason"] and ALLOW_CPU_ENV in records[0]["reason"]


def test_documented_limits_are_capabilities(monkeypatch):
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    tabicl, tabdpt = get_adapter("tabicl").capabilities, get_adapter("tabdpt").capabilities
    assert tabicl.refusal("binary", 1000, 2000, 2, "cpu") is None
    assert "100001 training rows exceed the limit of 100000" in tabicl.refusal("binary", 100_001, 5, 2, "cuda")
    assert "2001 features exceed the limit of 2000" in tabicl.refusal("binary", 100, 2001, 2, "cuda")
    assert tabicl.refusal("multiclass", 100, 5, 100, "cuda") is None  # the many-class strategy
    assert tabdpt.refusal("multiclass", 50_000, 500, 100, "cuda") is None  # PCA and digits: no hard limit
    for caps in (tabicl, tabdpt):
        assert "CPU bound" in caps.refusal("regression", 1001, 5, 0, "cpu")
        assert caps.refusal("regression", 5000, 5, 0, "cuda") is None
    monkeypatch.setenv(ALLOW_CPU_ENV, "1")
    assert tabicl.refusal("regression", 5000, 5, 0, "cpu") is None and tabdpt.refusal("binary", 5000, 5, 2) is None


def test_missing_libraries_are_reported_with_the_extra_to_install(monkeypatch):
    real = importlib.util.find_spec
    blocked = ("tabicl", "tabdpt", "pytorch_tabnet", "interpret", "skorch")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in blocked else real(name, *a))
    for model, extra in (("tabicl", "tabicl"), ("tabdpt", "tabdpt"), ("tabnet", "tabnet"), ("ebm", "ebm"),
                         ("tabr", "tabr")):
        cls = get_adapter(model)
        assert cls.extra == extra and f"tabular-bench[{extra}]" in cls.unavailable_reason("binary")
