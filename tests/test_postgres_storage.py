"""Shared Optuna storage on a real PostgreSQL server: two processes tune one study at the same time,
and a sweep keeps its studies there under run-unique names. The server's URL is exactly the README's
form, `postgresql://user@host/db` without a driver (issue 18 item 9: SQLAlchemy's default driver for it
was not the one the `postgres` extra installs). Two runs creating one shared SQLite storage at the same
moment do not collide."""

import json
import multiprocessing as mp
from collections import Counter
from types import SimpleNamespace

import optuna
import pytest

from bench.execution.storage import normalize
from tests.postgres_server import postgres_bin_dir, server_user_problem, start

TRIALS_PER_TUNER = {"tuner-a": 6, "tuner-b": 5}


@pytest.fixture(scope="module")
def postgres():
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin); "
                    "`apt-get install -y postgresql` (.ci/run does this)")
    problem = server_user_problem()
    if problem:
        pytest.skip(problem)
    server, stop = start(bin_dir)
    yield server
    stop()


def _tune_in_process(url: str, study_name: str, tuner: str, trials: int, barrier) -> None:
    from bench.adapters import TaskInfo
    from bench.datasets import make_dataset
    from bench.tuning import Budget, tune
    from tests.conftest import synthetic_frame
    from tests.fault_adapters import DeviceSpyAdapter
    from tests.test_tuning import _parts

    ds = make_dataset("pg", *synthetic_frame("binary", 150), task_type="binary")
    barrier.wait(timeout=180)  # both processes start tuning together
    out = tune(DeviceSpyAdapter, TaskInfo("binary", 2), _parts(ds), Budget(trials), seed=0, threads=1,
               device="cpu", storage=normalize(url), study_name=study_name, tuner=tuner)
    assert {v.variant for v in out.variants} == {"default", "tuned"}, out.failures


def test_two_processes_tune_one_study_concurrently(postgres, monkeypatch):
    monkeypatch.setenv("BENCH_TEST_SPY_SLEEP", "0.1")  # trials long enough for the two to interleave
    from bench.execution.storage import check_storage

    check_storage(postgres.url)  # creates Optuna's schema once, as `bench run --storage` does
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_tune_in_process, args=(postgres.url, "shared", tuner, n, barrier))
             for tuner, n in TRIALS_PER_TUNER.items()]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]

    trials = optuna.load_study(study_name="shared", storage=normalize(postgres.url)).trials
    assert len(trials) == sum(TRIALS_PER_TUNER.values())  # nothing lost, nothing extra
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # no duplicates
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED", "FAIL"}
    assert Counter(t.user_attrs["tuner"] for t in trials) == TRIALS_PER_TUNER
    defaults = [t for t in trials if t.user_attrs.get("is_default")]
    assert len(defaults) == 1 and defaults[0].number == 0 and defaults[0].params == {"shrink": 0.5}
    spans = {tuner: (min(t.datetime_start for t in trials if t.user_attrs["tuner"] == tuner),
                     max(t.datetime_complete for t in trials if t.user_attrs["tuner"] == tuner))
             for tuner in TRIALS_PER_TUNER}
    (a0, a1), (b0, b1) = spans.values()
    assert a0 < b1 and b0 < a1, f"the two tuners did not overlap in time: {spans}"


def test_a_sweep_keeps_its_studies_in_the_shared_storage(postgres, make_ds, tmp_path):
    from bench.execution.runner import run_local
    from bench.execution.storage import check_storage
    from bench.execution.sweep import SweepConfig, plan_jobs
    from bench.records.store import ResultStore
    from tests.test_splits import Protocol

    check_storage(postgres.url)
    store = ResultStore(tmp_path / "run")
    store.write_config(store.check_config({"suite": "t", "trials": 3, "seed": 0, "models": ["test_prior"]})[0])
    config = SweepConfig(suite="t", models=["test_prior"], out=store.run_dir, trials=3, device="cpu",
                         storage=postgres.url)
    suite = SimpleNamespace(name="t", protocol=Protocol(folds=2, repeats=1))
    jobs = plan_jobs(config, suite, [SimpleNamespace(dataset=make_ds("binary", n=80), task_splits=None)], store)
    run_local(jobs, store, workers=2, time_limit=120)
    assert {r["status"] for r in store.load_all()} == {"ok"} and len(store.load_all()) == 6  # 2 splits x 3 variants
    run_id = store.config()["run_id"]
    names = set(optuna.get_all_study_names(storage=normalize(postgres.url)))
    for job in jobs:
        name = job.study_name
        assert name.startswith(f"{run_id}__{job.job_id.replace('/', '__')}__") and name in names
        assert len(optuna.load_study(study_name=name, storage=normalize(postgres.url)).trials) == 3
    assert not (store.run_dir / "optuna").exists()  # no per-job SQLite files


def test_a_bad_storage_url_is_one_clear_error():
    from bench.errors import BenchError
    from bench.execution.storage import check_storage

    with pytest.raises(BenchError, match="cannot open the Optuna storage"):
        check_storage("postgresql+psycopg2://nobody:secret@/nodb?host=/nonexistent&port=1")
    with pytest.raises(BenchError) as err:
        check_storage("postgresql+psycopg2://nobody:secret@/nodb?host=/nonexistent&port=1")
    assert "secret" not in str(err.value)


def test_the_readmes_storage_url_works_from_the_command_line(postgres, tmp_path, capsys):
    from tests.cli_helpers import data_file, records, run_cli, suite_file

    assert postgres.url.startswith("postgresql://")  # no driver named, as the README writes it
    data_file(tmp_path / "d.parquet", "binary", n=80)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", "test_prior", "--trials", 2, "--jobs", 2,
                         "--storage", postgres.url, "--out", tmp_path / "run", "--quiet")
    assert code == 0, text
    assert {r["status"] for r in records(tmp_path / "run").values()} == {"ok"}
    run_id = json.loads((tmp_path / "run" / "run.json").read_text())["run_id"]
    names = optuna.get_all_study_names(storage=normalize(postgres.url))
    assert len([n for n in names if n.startswith(f"{run_id}__d__test_prior__")]) == 2  # one study per split


def test_postgres_urls_get_the_installed_driver():
    import importlib.util

    installed = next(d for d in ("psycopg", "psycopg2") if importlib.util.find_spec(d))
    assert normalize("postgresql://u:pw@h:5/db?sslmode=require") == f"postgresql+{installed}://u:pw@h:5/db?sslmode=require"
    assert normalize("postgres://u@h/db") == f"postgresql+{installed}://u@h/db"
    for url in ("postgresql+psycopg2://u@h/db", "sqlite:///x.db", "mysql://u@h/db"):
        assert normalize(url) == url


def _create_storages(urls, barrier, failures) -> None:
    from bench.execution.storage import check_storage

    for url in urls:
        barrier.wait(timeout=120)  # both processes create the same fresh database at the same moment
        try:
            check_storage(url)
        except Exception as exc:  # noqa: BLE001 - counted, the test names them
            failures.put(f"{url}: {exc}")


def test_two_runs_creating_one_sqlite_storage_at_the_same_moment_do_not_collide(tmp_path):
    ctx = mp.get_context("spawn")
    urls = [f"sqlite:///{tmp_path}/shared-{i}.db" for i in range(8)]  # a race per database: 8 chances to lose
    barrier, failures = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_create_storages, args=(urls, barrier, failures)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    lost = []
    while not failures.empty():
        lost.append(failures.get())
    assert lost == []
    for url in urls:
        optuna.create_study(storage=url, study_name="after")  # a usable storage
