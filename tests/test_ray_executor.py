"""The Ray executor on a local Ray instance writes the same records as the local executor."""

from types import SimpleNamespace

import pytest

from bench.execution.runner import run_local
from bench.execution.sweep import SweepConfig, plan_jobs
from bench.records.store import ResultStore
from tests.test_splits import Protocol

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'tabular-bench[ray]'")

MODELS = ["test_prior", "dummy", "linear", "test_raise", "test_crash", "test_hang"]
# Fields that legitimately differ between two executions: where and when, and how long things took.
VOLATILE = {"host", "finished_at", "log", "log_tail", "job_seconds", "tuning_seconds", "fit_seconds",
            "predict_seconds", "device_seconds", "ray_node"}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _plan(run_dir, datasets):
    store = ResultStore(run_dir)
    suite = SimpleNamespace(name="t", protocol=Protocol(folds=2, repeats=1))
    config = SweepConfig(suite="t", models=MODELS, out=run_dir, trials=2, device="cpu", threads=1)
    jobs = plan_jobs(config, suite, [SimpleNamespace(dataset=d, task_splits=None) for d in datasets], store)
    # one hanging job is enough to show the time limit (each costs a full limit of waiting)
    return [j for j in jobs if not (j.model == "test_hang" and j.fold == 1)], store


def _comparable(record: dict) -> dict:
    # predictions name the study's random uid; ensemble_inputs is a digest of the members' predictions
    out = {k: v for k, v in record.items() if k not in VOLATILE | {"predictions", "ensemble_inputs"}}
    if "ensemble" in out:
        out["ensemble"] = {k: v for k, v in out["ensemble"].items() if k not in ("predictions", "selection_seconds")}
    out["trials"] = [{k: v for k, v in t.items() if k not in ("seconds", "fit_seconds", "cpu_seconds")}
                     for t in record.get("trials", [])]
    out["test_by_seed"] = [{k: v for k, v in s.items() if k not in VOLATILE}
                           for s in record.get("test_by_seed", [])]
    if record["status"] == "crashed":  # how the death is described is each executor's own
        out["error"] = {"type": record["error"]["type"]}
    return out


def test_ray_records_equal_local_records(local_ray, make_ds, tmp_path):
    from bench.execution.ray_executor import run_ray

    datasets = [make_ds("binary", n=100)]
    jobs, store = _plan(tmp_path / "local", datasets)
    # 30 s: the hanging job waits it out; shorter limits also cut ordinary jobs on a busy 2-core machine
    run_local(jobs, store, workers=2, time_limit=30)
    ray_jobs, ray_store = _plan(tmp_path / "ray", datasets)
    summary = run_ray(ray_jobs, ray_store, time_limit=30)

    local = {(r["job_id"], r["variant"]): r for r in store.load_all()}
    remote = {(r["job_id"], r["variant"]): r for r in ray_store.load_all()}
    assert set(local) == set(remote)
    # 3 variants (default, tuned, ensemble) x 2 folds x models; dummy: default only; one hanging job
    assert len(remote) == 3 * 2 * len(MODELS) - 2 * 2 - 3
    assert {r["status"] for r in remote.values()} == {"ok", "failed", "crashed", "timeout"}
    assert summary.statuses["timeout"] == 3 and summary.statuses["crashed"] == 6
    for key in local:
        assert _comparable(remote[key]) == _comparable(local[key]), key
    # a rerun on Ray skips everything already recorded
    assert run_ray(ray_jobs, ray_store).skipped_done == len(ray_jobs)
