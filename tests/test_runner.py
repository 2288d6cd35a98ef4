"""The executor with real worker processes: failures become records, sweeps resume."""

from types import SimpleNamespace

from bench.execution.runner import run_local
from bench.execution.sweep import SweepConfig, plan_jobs
from bench.records.store import ResultStore
from tests.test_splits import Protocol


def _jobs(tmp_path, datasets, models, trials=2):
    store = ResultStore(tmp_path / "run")
    suite = SimpleNamespace(name="t", protocol=Protocol(folds=2, repeats=1))
    loaded = [SimpleNamespace(dataset=ds, task_splits=None) for ds in datasets]
    config = SweepConfig(suite="t", models=models, out=store.run_dir, trials=trials, device="cpu")
    return plan_jobs(config, suite, loaded, store), store


def test_faults_become_records_and_the_sweep_finishes(make_ds, tmp_path):
    jobs, store = _jobs(tmp_path, [make_ds("binary", n=120)],
                        ["test_prior", "test_raise", "test_crash", "test_hang", "test_nan"])
    summary = run_local(jobs, store, workers=2, time_limit=15)
    by_model = {}
    for r in store.load_all():
        by_model.setdefault(r["model"], set()).add(r["status"])
    assert by_model == {"test_prior": {"ok"}, "test_raise": {"failed"}, "test_crash": {"crashed"},
                        "test_hang": {"timeout"}, "test_nan": {"failed"}}
    assert summary.statuses["ok"] == 6  # 2 splits x 3 variants (default, tuned, ensemble)
    crashed = store.read("synth-binary/test_crash/r0f0", "default")
    assert "SIGKILL" in crashed["error"]["message"]
    ok = store.read("synth-binary/test_prior/r0f1", "tuned")
    for key in ("dataset_hash", "split", "params", "seed", "versions", "fit_seconds", "predict_seconds",
                "tuning_seconds", "device", "trials", "test", "val_score"):
        assert key in ok, key
    assert ok["split"]["hash"] and ok["versions"]["optuna"]


def test_rerun_skips_finished_jobs_and_retries_failures_on_request(make_ds, tmp_path):
    jobs, store = _jobs(tmp_path, [make_ds("regression", n=100)], ["test_prior", "test_raise"])
    first = run_local(jobs, store, workers=1)
    assert first.skipped_done == 0
    before = {p: p.stat().st_mtime_ns for p in store.records_dir.rglob("*.json")}
    second = run_local(jobs, store, workers=1)
    assert second.skipped_done == len(jobs) and not second.statuses
    assert before == {p: p.stat().st_mtime_ns for p in store.records_dir.rglob("*.json")}
    third = run_local(jobs, store, workers=0, retry_failed=True)
    assert third.skipped_done == 2 and third.statuses["failed"] == 6  # 2 splits x 3 variants


def test_capability_refusal_is_a_skipped_record(make_ds, tmp_path):
    jobs, store = _jobs(tmp_path, [make_ds("binary", n=80)], ["test_regression_only"], trials=1)
    run_local(jobs, store, workers=0)
    records = store.load_all()
    assert {r["status"] for r in records} == {"skipped"}
    assert "task type 'binary' not supported" in records[0]["reason"]


def test_partial_record_file_is_not_read_as_valid(make_ds, tmp_path):
    jobs, store = _jobs(tmp_path, [make_ds("binary", n=80)], ["test_prior"], trials=1)
    path = store.path_for(jobs[0].job_id, "default")
    path.parent.mkdir(parents=True)
    path.write_text('{"job_id": "synth-binary/test_prior/r0f0", "status": "o')  # torn write
    assert not store.is_done(jobs[0])
    run_local(jobs, store, workers=0)
    assert store.read(jobs[0].job_id, "default")["status"] == "ok"


def test_entry_point_adapters_are_registered(monkeypatch):
    """Outside packages register through the `bench.adapters` entry-point group."""
    import bench.adapters.framework.registry as registry

    class FakeEntryPoint:
        name = "ep_model"

        def load(self):
            from tests.fault_adapters import _Prior

            return type("EntryPointAdapter", (_Prior,), {"name": "ep_model", "__module__": "ep_pkg"})

    class BrokenEntryPoint:
        name = "broken"

        def load(self):
            raise ImportError("missing dependency of a plug-in")

    monkeypatch.setattr(registry, "entry_points",
                        lambda group: [FakeEntryPoint(), BrokenEntryPoint()] if group == "bench.adapters" else [])
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    adapters = registry.load_adapters()
    assert "ep_model" in adapters and "xgboost" in adapters  # a broken plug-in does not hide the rest
    assert registry.get_adapter("ep_model").__module__ == "ep_pkg"


def test_workers_end_after_the_sweep_without_the_parent_waiting_for_them(make_ds, tmp_path):
    import time

    import psutil

    jobs, store = _jobs(tmp_path, [make_ds("binary", n=80)], ["test_prior"], trials=1)
    run_local(jobs, store, workers=2)
    # The parent asked its workers to end and went on; they end by themselves shortly after and the
    # reaper thread collects them (one that does not end is stopped after 5 s): no process is left,
    # not even a zombie.
    deadline = time.monotonic() + 30
    while left := _workers_left(psutil):
        assert time.monotonic() < deadline, f"worker processes left 30 s after the sweep: {left}"
        time.sleep(0.1)


def _workers_left(psutil) -> list[tuple[int, str]]:
    """This process's worker children still there, zombies included (multiprocessing's resource tracker,
    a child for the life of the process, is not a worker)."""
    left = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE or "spawn_main" in " ".join(child.cmdline()):
                left.append((child.pid, child.status()))
        except psutil.NoSuchProcess:
            pass
        except psutil.ZombieProcess:
            left.append((child.pid, "zombie"))
    return left


def test_a_worker_reads_a_dataset_once_for_consecutive_jobs_and_again_once_it_is_rewritten(make_ds, tmp_path):
    from bench.datasets import save_dataset
    from bench.execution import jobs as J

    ds = make_ds("binary", n=60)
    directory = save_dataset(ds, tmp_path / "data" / ds.name)
    reads = []

    def read():
        reads.append(directory)
        return J.load_cached_dataset(directory)

    files = (directory / "meta.json", directory / "data.parquet")
    first = J._recent(files, read)
    assert J._recent(files, read) is first and len(reads) == 1  # the next job: no second read
    other = make_ds("binary", n=70)
    save_dataset(other, directory)  # rewritten (atomic rename: new file identity)
    again = J._recent(files, read)
    assert len(reads) == 2 and again.content_hash == other.content_hash != first.content_hash
