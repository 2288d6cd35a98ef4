"""The harness never writes through a symbolic link or outside the folder it writes into (issue 18,
item 3): one check (bench.safe_files) that every writer uses. Each writer is tried with a link where it
writes (a folder or a file pointing outside); the target outside must stay as it was."""

from __future__ import annotations

import json
import os
import shutil
from types import SimpleNamespace

import pytest

from tests.cli_helpers import data_file, records, run_cli, suite_file

OUTSIDE_TEXT = '{"precious": "must not change"}\n'  # JSON: readers may parse it before the write


def _outside(tmp_path):
    """A folder outside the run holding one file the links point to."""
    folder = tmp_path / "outside"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "precious.txt").write_text(OUTSIDE_TEXT)
    return folder


def _untouched(folder) -> bool:
    return sorted(p.name for p in folder.iterdir()) == ["precious.txt"] and \
        (folder / "precious.txt").read_text() == OUTSIDE_TEXT


def _link(path, target):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def _argv(folder, out):
    return ["run", "--suite", folder / "s.toml", "--models", "dummy,test_prior", "--trials", 2, "--jobs", 0,
            "--splits", 1, "--out", out, "--quiet"]


@pytest.fixture(scope="module")
def template_run(tmp_path_factory):
    """One small sweep, copied by each test (a sweep per test would cost seconds each)."""
    from bench.cli import main

    folder = tmp_path_factory.mktemp("template")
    data_file(folder / "d.parquet", "binary", n=80)
    suite_file(folder / "s.toml", {"d": ("d.parquet", "binary")})
    assert main([str(a) for a in _argv(folder, folder / "run")]) == 0
    return folder


@pytest.fixture
def small_run(template_run, tmp_path):
    for name in ("d.parquet", "s.toml"):
        shutil.copyfile(template_run / name, tmp_path / name)
    shutil.copytree(template_run / "run", tmp_path / "run")
    return SimpleNamespace(out=tmp_path / "run", argv=_argv(tmp_path, tmp_path / "run"))


# --- through the command line -----------------------------------------------------------------------

@pytest.mark.parametrize("entry, is_dir", [(".bench-run.lock", False), ("records", True), ("predictions", True),
                                           ("logs", True), ("optuna", True), ("data", True), ("splits", True),
                                           ("run.json", False), ("plan.json", False),
                                           ("records/d/test_prior", True), ("logs/d/dummy/r0f0.log", False)])
def test_run_refuses_a_run_folder_with_a_link_where_it_writes(small_run, tmp_path, capsys, entry, is_dir):
    outside = _outside(tmp_path)
    _link(small_run.out / entry, outside if is_dir else outside / "precious.txt")
    (small_run.out / "records" / "d" / "dummy" / "r0f0.default.json").unlink(missing_ok=True)  # work to do
    code, text = run_cli(capsys, *small_run.argv)
    assert code == 2 and "symbolic link" in text and entry in text, text
    assert _untouched(outside)


@pytest.mark.parametrize("entry", ["leaderboard.csv", "leaderboard-binary.csv", "leaderboard.md", "records.parquet"])
def test_leaderboard_refuses_to_overwrite_what_its_files_point_to(small_run, tmp_path, capsys, entry):
    outside = _outside(tmp_path)
    _link(small_run.out / entry, outside / "precious.txt")
    code, text = run_cli(capsys, "leaderboard", small_run.out)
    assert code == 2 and "refusing to write" in text and entry in text and "symbolic link" in text, text
    assert _untouched(outside)


@pytest.mark.parametrize("entry, is_dir", [("report.html", False), ("report.md", False), ("report-plots", True),
                                           ("records.parquet", False)])
def test_report_refuses_to_write_through_links(small_run, tmp_path, capsys, entry, is_dir):
    outside = _outside(tmp_path)
    _link(small_run.out / entry, outside if is_dir else outside / "precious.txt")
    code, text = run_cli(capsys, "report", small_run.out, "--bootstrap", 10)
    assert code == 2 and "symbolic link" in text and entry in text, text
    assert _untouched(outside)
    # into another folder: the same rule there
    report_dir = tmp_path / "report"
    _link(report_dir / "report.html", outside / "precious.txt")
    if entry != "records.parquet":
        code, text = run_cli(capsys, "report", small_run.out, "--bootstrap", 10, "--out", report_dir)
        assert code == 2 and "report.html" in text and _untouched(outside), text


def test_a_run_folder_that_is_itself_a_link_is_fine(small_run, tmp_path, capsys):
    alias = tmp_path / "alias"
    alias.symlink_to(small_run.out)
    code, text = run_cli(capsys, *small_run.argv[:-3], "--out", alias, "--quiet")
    assert code == 0 and "0 jobs run, 2 already done" in text, text
    assert run_cli(capsys, "leaderboard", alias)[0] == 0


# --- each writer on its own --------------------------------------------------------------------------

def test_the_lock_never_truncates_a_link_or_a_hard_link(tmp_path):
    from bench.errors import BenchError
    from bench.execution.lock import LOCK_NAME, RunLock

    outside = _outside(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).symlink_to(outside / "precious.txt")
    with pytest.raises(BenchError, match="symbolic link"):
        RunLock(run).acquire()
    (run / LOCK_NAME).unlink()
    os.link(outside / "precious.txt", run / LOCK_NAME)
    with pytest.raises(BenchError, match="other hard links"):
        RunLock(run).acquire()
    assert (outside / "precious.txt").read_text() == OUTSIDE_TEXT


def test_the_store_writes_nothing_through_a_link(small_run, tmp_path):
    from bench.records.store import ResultStore
    from bench.safe_files import UnsafePathError

    outside = _outside(tmp_path)
    store = ResultStore(small_run.out)
    record = next(iter(records(small_run.out).values()))
    config, plan = store.config(), store.plan()
    _link(small_run.out / "records", outside)
    with pytest.raises(UnsafePathError, match="records"):
        store.write([record])
    for name, write in (("run.json", lambda: store.write_config(config)),
                        ("plan.json", lambda: store.write_plan(plan["datasets"], plan["jobs"])),
                        ("records.parquet", lambda: store.write_table())):
        _link(small_run.out / name, outside / "precious.txt")
        with pytest.raises(UnsafePathError, match=name):
            write()
    assert _untouched(outside)


def test_jobs_write_no_log_prediction_or_study_through_a_link(small_run, tmp_path):
    from bench.execution.joblog import execute_logged
    from bench.execution.sweep import SweepConfig, plan_jobs
    from bench.records.store import ResultStore
    from bench.suites import load_suite, materialize

    suite = load_suite(str(tmp_path / "s.toml"))
    store = ResultStore(small_run.out)
    config = SweepConfig(suite=suite.name, models=["test_prior"], out=small_run.out, trials=2, max_splits=1)
    (job,) = plan_jobs(config, suite, materialize(suite)[0], store)
    for entry, is_dir in (("logs", True), ("logs/d/test_prior/r0f0.log", False), ("predictions", True),
                          ("predictions/d/test_prior", True), ("optuna", True)):
        outside = _outside(tmp_path / entry.replace("/", "_"))
        _link(small_run.out / entry, outside if is_dir else outside / "precious.txt")
        recs = execute_logged(job)
        assert {r["status"] for r in recs} == {"failed"}, entry
        message = recs[0]["error"]["message"]
        assert recs[0]["error"]["type"] == "UnsafePathError" and "symbolic link" in message and entry in message
        assert "log_tail" not in recs[0]  # the log (maybe the link) is not read either
        assert _untouched(outside), entry
        (small_run.out / entry).unlink()


def test_run_folder_copies_of_data_and_splits_are_never_written_through_a_link(make_ds, tmp_path):
    from bench.datasets import save_dataset
    from bench.safe_files import UnsafePathError, confined
    from bench.splits import make_splits
    from tests.test_splits import Protocol

    outside, run = _outside(tmp_path), tmp_path / "run"
    ds = make_ds("binary", n=60)
    _link(run / "data", outside)
    with pytest.raises(UnsafePathError, match="data"):
        save_dataset(ds, run / "data" / ds.name, root=run)
    _link(run / "splits", outside)
    with pytest.raises(UnsafePathError, match="splits"):
        make_splits(ds, Protocol(), cache_dir=run / "splits", root=run)
    assert _untouched(outside)
    with pytest.raises(UnsafePathError, match="outside"):
        confined(run / ".." / "elsewhere.json", run)


def test_gpu_samples_are_never_appended_through_a_link(tmp_path, monkeypatch):
    from bench.execution import gpu_usage

    outside, run = _outside(tmp_path), tmp_path / "run"
    _link(run / gpu_usage.SAMPLE_FILE, outside / "precious.txt")
    monkeypatch.setattr(gpu_usage, "query", lambda *a, **k: [{"index": "0", "uuid": "GPU-x", "utilization.gpu": "50",
                                                               "memory.used": "100"}])
    monkeypatch.setattr(gpu_usage, "match", lambda rows, gpu: rows[0])
    sampler = gpu_usage.GpuSampler(run / gpu_usage.SAMPLE_FILE, ["0"], interval=60)
    sampler.sample()
    assert sampler.samples == 0 and _untouched(outside)
    (run / gpu_usage.SAMPLE_FILE).unlink()
    sampler.sample()
    assert sampler.samples == 1 and json.dumps((run / gpu_usage.SAMPLE_FILE).read_text())
