"""--jobs-per-gpu auto and GPU utilization samples, with a fake nvidia-smi on PATH (no GPU needed)."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.cli import main
from bench.cli.main import build_parser
from bench.errors import BenchError
from bench.execution import gpu_usage
from bench.execution.gpu_usage import CUDA_CONTEXT_BYTES, DEFAULT_JOB_BYTES, GIB, MIB
from bench.execution.runner import run_local
from bench.execution.sweep import SweepConfig, plan_jobs
from bench.records.store import ResultStore
from tests.test_splits import Protocol

FAKE_SMI = """#!/bin/sh
# A fake nvidia-smi: two GPUs; the query answers are files the test writes.
case "$*" in
  *-L*) printf 'GPU 0: Fake H200 (UUID: GPU-aaa)\\nGPU 1: Fake H200 (UUID: GPU-bbb)\\n' ;;
  *memory.free*) cat "$FAKE_SMI_DIR/free.csv" ;;
  *utilization.gpu*) cat "$FAKE_SMI_DIR/util.csv" ;;
  *) exit 9 ;;
esac
"""


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    folder = tmp_path / "fake-smi"
    folder.mkdir()
    exe = folder / "nvidia-smi"
    exe.write_text(FAKE_SMI)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SMI_DIR", str(folder))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    # memory.free in MiB as nvidia-smi prints it with nounits; junk lines are skipped
    (folder / "free.csv").write_text("0, GPU-aaa, 40960\nsomething odd\n1, GPU-bbb, [N/A]\n")
    (folder / "util.csv").write_text("0, GPU-aaa, 37, 2048\n1, GPU-bbb, [N/A], 512\n\n")
    return folder


@pytest.fixture
def no_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no nvidia-smi anywhere


def test_free_memory_parsing_tolerates_odd_output(fake_smi):
    assert gpu_usage.free_memory(["0", "1", "7"]) == {"0": 40960 * MIB, "1": None, "7": None}
    (fake_smi / "free.csv").write_text("0, GPU-aaa, 1024 MiB\n")  # with units, by index or by UUID
    assert gpu_usage.free_memory(["GPU-aaa"]) == {"GPU-aaa": 1024 * MIB}


def test_without_nvidia_smi_free_memory_is_unknown_and_auto_means_one(no_smi):
    assert gpu_usage.query(["index"]) is None
    free = gpu_usage.free_memory(["0"])
    counts, note = gpu_usage.auto_jobs_per_gpu(["0"], free, gpu_usage.job_footprint(["mlp"], {}), cores=16,
                                               cpu_workers=1)
    assert counts == {"0": 1} and "free memory unknown" in note


def test_auto_arithmetic_memory_cores_and_footprint():
    peak = 3 * GIB
    footprint = gpu_usage.job_footprint(["mlp", "tabm"], {"mlp": peak, "tabm": 5 * GIB, "xgboost": 9 * GIB})
    assert footprint.bytes == 5 * GIB + CUDA_CONTEXT_BYTES  # the largest planned model; xgboost is not planned
    assert "measured peak of mlp, tabm" in footprint.source
    unmeasured = gpu_usage.job_footprint(["mlp", "catboost"], {"mlp": peak})
    assert unmeasured.bytes == DEFAULT_JOB_BYTES + CUDA_CONTEXT_BYTES
    assert "catboost (not measured yet)" in unmeasured.source

    free = {"0": 80 * GIB, "1": 10 * GIB, "2": 1 * GIB}
    counts, note = gpu_usage.auto_jobs_per_gpu(["0", "1", "2"], free, footprint, cores=64, cpu_workers=4)
    per_job = 5 * GIB + CUDA_CONTEXT_BYTES
    assert counts["0"] == int(0.9 * 80 * GIB // per_job) == 12
    assert counts["1"] == 1 and counts["2"] == 1  # never 0: a GPU that is listed gets a worker
    assert "GPU 0: 12 (80.0 GiB free x 0.9 / 5.59 GiB per job = 12; CPU cap 20)" in note
    few_cores, _ = gpu_usage.auto_jobs_per_gpu(["0"], free, footprint, cores=8, cpu_workers=2)
    assert few_cores == {"0": 6}  # one core per GPU worker: the loop is launch-bound


def test_measured_footprints_read_gpu_records_only():
    records = [{"model": "mlp", "device": "cuda", "fit_info": {"cuda_peak_bytes": 100},
                "test_by_seed": [{"fit_info": {"cuda_peak_bytes": 300}}]},
               {"model": "mlp", "device": "cuda", "fit_info": {"cuda_peak_bytes": 200}},
               {"model": "tabm", "device": "cpu", "fit_info": {"cuda_peak_bytes": 999}},
               {"model": "xgboost", "device": "cuda", "fit_info": {}}, {"model": "x", "status": "failed"}]
    assert gpu_usage.measured_footprints(records) == {"mlp": 300}


def test_jobs_per_gpu_option_validation():
    assert SweepConfig(suite="demo", models=["mlp"], jobs_per_gpu="auto").jobs_per_gpu == "auto"
    for bad in (0, "many", 1.5, True):
        with pytest.raises(BenchError, match=r"--jobs-per-gpu must be an integer >= 1 or 'auto', got"):
            SweepConfig(suite="demo", models=["mlp"], jobs_per_gpu=bad)
    assert build_parser().parse_args(["run", "--jobs-per-gpu", "AUTO"]).jobs_per_gpu == "auto"
    assert build_parser().parse_args(["run", "--jobs-per-gpu", "3"]).jobs_per_gpu == 3
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["run", "--jobs-per-gpu", "lots"])
    assert exc.value.code == 2


def _plan(run_dir: Path, datasets, models, **config):
    store = ResultStore(run_dir)
    suite = SimpleNamespace(name="t", protocol=Protocol(folds=2, repeats=1))
    cfg = SweepConfig(suite="t", models=models, out=run_dir, **config)
    return cfg, plan_jobs(cfg, suite, [SimpleNamespace(dataset=d, task_splits=None) for d in datasets], store), store


def test_planning_with_auto_uses_free_memory_and_the_footprints_measured_in_the_run(fake_smi, make_ds, tmp_path,
                                                                                  monkeypatch):
    from bench.execution import sweep

    monkeypatch.setattr(gpu_usage, "DEFAULT_JOB_BYTES", 8 * GIB)
    monkeypatch.setattr(sweep, "cpu_count", lambda: 32)  # (32 cores - 1 CPU worker) // 2 GPUs: cap 15
    ds = make_ds("binary", n=80)
    cfg, jobs, _ = _plan(tmp_path / "run", [ds], ["test_device_spy", "dummy"], jobs_per_gpu="auto", workers=1)
    # nothing measured yet: 0.9 * 40 GiB / (8 GiB + context) = 4 on GPU 0; GPU 1's free memory is unknown
    assert cfg.gpu_workers() == {"0": 4, "1": 1}
    assert "default estimate 8 GiB for test_device_spy" in cfg.gpu_note
    assert {j.device for j in jobs if j.model == "test_device_spy"} == {"cuda"}

    store = ResultStore(tmp_path / "run")
    record = {**_record_of(jobs[0]), "fit_info": {"cuda_peak_bytes": 2 * GIB}}
    store.write([record])
    cfg2, _, _ = _plan(tmp_path / "run", [ds], ["test_device_spy", "dummy"], jobs_per_gpu="auto", workers=1)
    per_gpu0 = int(0.9 * 40 * GIB // (2 * GIB + CUDA_CONTEXT_BYTES))
    assert cfg2.gpu_workers() == {"0": per_gpu0, "1": 1} == {"0": 13, "1": 1}
    assert "measured peak of test_device_spy" in cfg2.gpu_note
    fixed, _, _ = _plan(tmp_path / "fixed", [ds], ["test_device_spy"], jobs_per_gpu=3)
    assert fixed.gpu_workers() == {"0": 3, "1": 3} and fixed.gpu_note == ""


def _record_of(job) -> dict:
    return {**job.header().fields("default"), "status": "ok", "test_score": 0.5, "test": {"roc_auc": 0.5},
            "direction": "maximize", "device": "cuda"}


def test_gpu_sweep_samples_utilization_into_the_run_folder(fake_smi, make_ds, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_GPU_SAMPLE_SECONDS", "0.1")
    monkeypatch.setenv("BENCH_TEST_SPY_SLEEP", "0.4")
    cfg, jobs, store = _plan(tmp_path / "run", [make_ds("binary", n=80)], ["test_device_spy"], trials=1, threads=1)
    summary = run_local(jobs, store, workers=1, gpus=cfg.gpu_ids(), jobs_per_gpu=cfg.gpu_workers(), time_limit=120)
    assert summary.statuses == {"ok": 2}
    with open(store.run_dir / "gpu-utilization.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(gpu_usage.SAMPLE_COLUMNS)
    assert len(rows) >= 4 and {r["gpu"] for r in rows} == {"0", "1"}
    assert {(r["gpu"], r["utilization_pct"], r["memory_used_mib"]) for r in rows} == {("0", "37.0", "2048.0"),
                                                                                    ("1", "", "512.0")}
    assert [float(r["elapsed_s"]) for r in rows] == sorted(float(r["elapsed_s"]) for r in rows)

    # a CPU-only sweep samples nothing
    cpu_cfg, cpu_jobs, cpu_store = _plan(tmp_path / "cpu", [make_ds("binary", n=80)], ["test_device_spy"],
                                         trials=1, threads=1, device="cpu")
    run_local(cpu_jobs, cpu_store, workers=1, gpus=cpu_cfg.gpu_ids(), time_limit=120)
    assert not (cpu_store.run_dir / "gpu-utilization.csv").exists()


def test_report_plots_gpu_utilization_when_samples_exist(tmp_path):
    from tests.hand_records import record, write_run

    records = [record(d, m, "default", s, score=0.7 + 0.01 * s + (m == "xgboost") * 0.05, family="gbdt")
               for d in ("d1", "d2") for m in ("xgboost", "mlp", "linear") for s in (0, 1)]
    store = write_run(tmp_path / "run", records)
    out = tmp_path / "rep"
    assert main(["report", str(store.run_dir), "--out", str(out), "--bootstrap", "20"]) == 0
    assert 'id="plot-gpu-utilization"' not in (out / "report.html").read_text()

    with open(store.run_dir / "gpu-utilization.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(gpu_usage.SAMPLE_COLUMNS)
        for i in range(6):
            writer.writerow(["2026-01-01T00:00:00+00:00", 5.0 * i, "0", 50 + i, 1024 * (1 + i)])
            writer.writerow(["2026-01-01T00:00:00+00:00", 5.0 * i, "1", "", 300])
    assert main(["report", str(store.run_dir), "--out", str(out), "--bootstrap", "20"]) == 0
    page, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    assert 'id="plot-gpu-utilization"' in page and (out / "report-plots" / "gpu-utilization.png").stat().st_size > 1000
    assert '<table id="gpu-utilization">' in page and "## GPU utilization" in md
    row = next(line for line in md.splitlines() if line.startswith("| 0 |"))
    assert row == "| 0 | 6 | 52.5 | 52.5 | 6.00 | 0.4 |"  # samples, mean/median %, peak GiB, minutes
