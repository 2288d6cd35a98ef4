"""A sweep: suite -> datasets -> frozen splits -> jobs (dataset x split x model) -> executor.

The run directory is self-contained: it holds the materialized datasets and frozen split indices the
jobs used, so every record can be traced back to the exact rows a model saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.datasets import load_cached_dataset, save_dataset
from bench.jobs import Job, cpu_count
from bench.results import ResultStore
from bench.splits import make_splits


@dataclass
class SweepConfig:
    suite: str
    models: list[str]
    out: Path
    trials: int = 1
    tune_seconds: float | None = None
    seed: int = 0
    workers: int = 1
    threads: int = 0  # per job; 0 = cores / workers
    time_limit: float | None = None
    max_splits: int | None = None
    device: str = "auto"  # auto | cpu | cuda
    retry_failed: bool = False
    seeds: int = 1  # model seeds per final configuration (default and tuned)

    def identity(self, suite_name: str) -> dict:
        return {"suite": suite_name, "trials": self.trials, "tune_seconds": self.tune_seconds,
                "seed": self.seed, "max_splits": self.max_splits, "seeds": self.seeds,
                "models": list(self.models)}


def detect_gpus() -> int:
    """Number of visible NVIDIA GPUs, without importing torch in the parent process."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def plan_jobs(config: SweepConfig, suite, loaded, store: ResultStore) -> list[Job]:
    from bench.adapters import resolve_models

    adapters = resolve_models(config.models)
    workers = max(1, config.workers)
    threads = config.threads or max(1, cpu_count() // workers)
    gpus = detect_gpus() if config.device in ("auto", "cuda") else 0
    jobs = []
    for item in loaded:
        ds = item.dataset
        data_dir = store.run_dir / "data" / ds.name
        cached = load_cached_dataset(data_dir)
        if cached is None or cached.content_hash != ds.content_hash:
            save_dataset(ds, data_dir)
        splits, split_file = make_splits(ds, suite.protocol, item.task_splits, store.run_dir / "splits")
        if config.max_splits:
            splits = splits[: config.max_splits]
        for index, split in enumerate(splits):
            for adapter in adapters:
                device = "cuda" if gpus and adapter.capabilities.gpu != "no" else "cpu"
                jobs.append(Job(
                    run_dir=str(store.run_dir), suite=suite.name, dataset=ds.name, dataset_dir=str(data_dir),
                    dataset_hash=ds.content_hash, split_file=str(split_file), split_index=index,
                    repeat=split.repeat, fold=split.fold, split_hash=split.hash, model=adapter.name,
                    trials=config.trials, tune_seconds=config.tune_seconds, seed=config.seed,
                    threads=threads, device=device, tunable=bool(adapter.search_space_for(ds.task_type)),
                    seeds=config.seeds,
                ))
    return jobs
