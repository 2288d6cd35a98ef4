"""A sweep: suite -> datasets -> frozen splits -> jobs (dataset x split x model) -> executor.

The run directory is self-contained: it holds the materialized datasets and frozen split indices the
jobs used, so every record can be traced back to the exact rows a model saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.datasets import load_cached_dataset, save_dataset
from bench.errors import BenchError
from bench.execution.jobs import Job
from bench.execution.resources import cpu_count, visible_gpus
from bench.records.store import ResultStore
from bench.splits import make_splits


@dataclass
class SweepConfig:
    suite: str
    models: list[str]
    out: Path
    trials: int = 1
    tune_seconds: float | None = None
    seed: int = 0
    workers: int = 1  # CPU worker slots
    threads: int = 0  # per job; 0 = cores / all worker slots
    time_limit: float | None = None
    max_splits: int | None = None
    device: str = "auto"  # auto | cpu | cuda
    retry_failed: bool = False
    seeds: int = 1  # model seeds per final configuration (default and tuned)
    gpus: str = "auto"  # auto | none | device ids "0,1"
    jobs_per_gpu: int = 1  # GPU worker slots per device
    memory_limit_gb: float | None = None  # per job (worker process tree resident memory)
    storage: str | None = None  # shared Optuna storage URL; None = one SQLite file per job
    executor: str = "local"  # local | ray
    ray_address: str | None = None

    def gpu_ids(self) -> list[str]:
        if not hasattr(self, "_gpu_ids"):  # detection runs nvidia-smi: once per sweep is enough
            self._gpu_ids = [] if self.device == "cpu" else visible_gpus(self.gpus)
        return self._gpu_ids

    def identity(self, suite_name: str) -> dict:
        return {"suite": suite_name, "trials": self.trials, "tune_seconds": self.tune_seconds,
                "seed": self.seed, "max_splits": self.max_splits, "seeds": self.seeds,
                "models": list(self.models)}


def check_storage(url: str) -> None:
    """Open a shared Optuna storage once up front: a wrong URL or a missing driver is one clear error
    instead of a failure record for every job, and Optuna's tables exist before many workers start
    (workers creating the schema of a fresh database at the same moment collide in PostgreSQL)."""
    import optuna

    try:
        optuna.storages.RDBStorage(url)
    except ModuleNotFoundError as exc:
        raise BenchError(f"--storage {_redact(url)}: the database driver is not installed ({exc}); for "
                         f"PostgreSQL: pip install 'tabular-bench[postgres]'") from None
    except Exception as exc:  # sqlalchemy's errors (bad URL, refused connection, auth) vary by driver
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchError(f"--storage {_redact(url)}: cannot open the Optuna storage: {first}") from None


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def plan_jobs(config: SweepConfig, suite, loaded, store: ResultStore) -> list[Job]:
    from bench.adapters import resolve_models

    adapters = resolve_models(config.models)
    gpus = config.gpu_ids()
    gpu_slots = len(gpus) * config.jobs_per_gpu if any(a.capabilities.gpu != "no" for a in adapters) else 0
    # GPU workers feed their device from the CPU too, so they get their share of the cores.
    threads = config.threads or max(1, cpu_count() // max(1, config.workers + gpu_slots))
    run_id = store.config().get("run_id", "")
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
                    storage=config.storage, run_id=run_id,
                ))
    return jobs
