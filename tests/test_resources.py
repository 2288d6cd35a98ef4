"""Resource-aware local executor: GPU slots and pinning (with a faked GPU count), thread caps,
per-job memory limit, per-job log files."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.errors import BenchError
from bench.execution import resources
from bench.execution.runner import run_local
from bench.execution.sweep import SweepConfig, plan_jobs
from bench.records.store import ResultStore
from tests.test_splits import Protocol


def _plan(tmp_path, datasets, models, **config):
    store = ResultStore(tmp_path / "run")
    suite = SimpleNamespace(name="t", protocol=Protocol(folds=2, repeats=1))
    loaded = [SimpleNamespace(dataset=ds, task_splits=None) for ds in datasets]
    cfg = SweepConfig(suite="t", models=models, out=store.run_dir, **config)
    return cfg, plan_jobs(cfg, suite, loaded, store), store


@pytest.fixture
def two_fake_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(resources, "detect_gpus", lambda: 2)


def test_visible_gpus_parsing(monkeypatch, two_fake_gpus):
    assert resources.visible_gpus("auto") == ["0", "1"]
    assert resources.visible_gpus("none") == []
    assert resources.visible_gpus("1") == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert resources.visible_gpus("auto") == ["2", "3"]  # an already restricted parent shares only those
    with pytest.raises(BenchError, match="--gpus"):
        resources.visible_gpus("cuda:0")
    slots = resources.plan_slots(2, ["2", "3"], jobs_per_gpu=2)
    assert [s.kind for s in slots] == ["cpu", "cpu", "cuda", "cuda", "cuda", "cuda"]
    assert slots[2].environment(3)["CUDA_VISIBLE_DEVICES"] == "2"
    assert slots[0].environment(3)["CUDA_VISIBLE_DEVICES"] == ""
    assert slots[0].environment(3)["OMP_NUM_THREADS"] == "3"


def test_planning_sends_gpu_capable_models_to_gpus_only_when_there_are_some(make_ds, tmp_path, two_fake_gpus):
    ds = make_ds("binary", n=80)
    _, jobs, _ = _plan(tmp_path, [ds], ["test_device_spy", "test_cpu_spy"])
    assert {(j.model, j.device) for j in jobs} == {("test_device_spy", "cuda"), ("test_cpu_spy", "cpu")}
    for kw in ({"gpus": "none"}, {"device": "cpu"}):
        _, jobs, _ = _plan(tmp_path / str(kw), [ds], ["test_device_spy"], **kw)
        assert {j.device for j in jobs} == {"cpu"}, kw


def test_gpu_jobs_run_on_gpu_workers_pinned_to_one_device_beside_cpu_jobs(make_ds, tmp_path, two_fake_gpus,
                                                                         monkeypatch):
    monkeypatch.setenv("BENCH_TEST_SPY_SLEEP", "0.5")  # GPU jobs overlap, so both GPU workers get work
    config, jobs, store = _plan(tmp_path, [make_ds("binary", n=80), make_ds("regression", n=80)],
                                ["test_device_spy", "test_cpu_spy", "test_raise"], trials=1, threads=1)
    summary = run_local(jobs, store, workers=1, gpus=config.gpu_ids(), time_limit=120)
    assert summary.statuses == {"ok": 8, "failed": 4}
    records = store.load_all()
    gpu = [r for r in records if r["model"] == "test_device_spy"]
    cpu = [r for r in records if r["model"] == "test_cpu_spy"]
    assert {r["device"] for r in gpu} == {"cuda"} and {r["fit_info"]["device"] for r in gpu} == {"cuda"}
    assert {r["fit_info"]["cuda_visible_devices"] for r in gpu} == {"0", "1"}  # one device per worker
    assert {r["device"] for r in cpu} == {"cpu"} and {r["fit_info"]["cuda_visible_devices"] for r in cpu} == {""}
    assert {r["fit_info"]["pid"] for r in gpu}.isdisjoint({r["fit_info"]["pid"] for r in cpu})
    assert {r["fit_info"]["omp_threads"] for r in gpu + cpu} == {"1"}

    # every job has a log with everything it printed, from Python and from the descriptors below it
    spy = gpu[0]
    text = Path(spy["log"]).read_text()
    assert "spy: python-level stdout line" in text and "spy: fd-level stderr line" in text
    assert spy["log"].endswith(f"logs/{spy['job_id']}.log") and "log_tail" not in spy
    failed = next(r for r in records if r["model"] == "test_raise")
    assert "injected failure in fit" in failed["log_tail"]
    assert any(f[1] == "failed" and f[3] == failed["log"] for f in summary.failures)


def test_memory_limit_stops_the_job_with_an_out_of_memory_record(make_ds, tmp_path):
    _, jobs, store = _plan(tmp_path, [make_ds("binary", n=80)], ["test_memory", "test_prior"], trials=1,
                           threads=1)
    # The limit covers the worker's whole process tree, libraries included (~0.3 GB for the harness).
    summary = run_local(jobs, store, workers=1, memory_limit_gb=0.8, time_limit=120)
    by_model = {}
    for r in store.load_all():
        by_model.setdefault(r["model"], []).append(r)
    assert {r["status"] for r in by_model["test_prior"]} == {"ok"}  # the sweep went on after the kill
    hog = by_model["test_memory"]
    assert len(hog) == 2 and {r["status"] for r in hog} == {"out_of_memory"}
    for r in hog:
        assert r["error"]["type"] == "MemoryLimitExceeded" and "0.80 GB" in r["error"]["message"]
        assert r["memory_peak_bytes"] > r["memory_limit_bytes"] == 0.8e9
        assert json.loads(Path(store.path_for(r["job_id"], "default")).read_text())["status"] == "out_of_memory"
    assert summary.statuses["out_of_memory"] == 2
    # --retry-failed counts an out-of-memory job as failed and runs it again
    assert not any(store.is_done(j, retry_failed=True) for j in jobs if j.model == "test_memory")
