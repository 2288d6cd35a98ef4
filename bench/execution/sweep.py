"""A sweep: suite -> datasets -> frozen splits -> jobs (dataset x split x model) -> executor.

The Python API the CLI wraps (and `bench regress`, tests and notebooks call directly):

    config = SweepConfig(suite="demo", models=["xgboost", "mlp"], trials=5)   # validated here
    result = run_sweep(config)            # = execute_sweep(prepare_sweep(config))
    result.summary.statuses, result.store.frame()

The run directory is self-contained: it holds the materialized datasets and frozen split indices the
jobs used, so every record can be traced back to the exact rows a model saw. One sweep at a time
holds a run directory (bench.execution.lock, taken by prepare_sweep, released by execute_sweep or
SweepPlan.close). Its identity (run.json: suite, protocol, budget, dataset hashes) and plan (plan.json:
every job, its hashes and variants) are written when the sweep really starts, in execute_sweep, which
also makes the cross-model ensembles once the jobs are done (bench.execution.ensembles).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

from bench.datasets import data_warnings
from bench.errors import BenchError, check_choice, check_int, check_positive
from bench.execution.ensembles import AsSplitsFinish, count_into, run_cross_model
from bench.execution.ensembles import plan_entries as cross_model_entries
from bench.execution.heartbeat import Eta
from bench.execution.jobs import Job
from bench.execution.lock import RunLock, open_run_dir
from bench.execution.planning import plan_jobs
from bench.execution.resources import cpu_count, visible_gpus
from bench.execution.signals import stop_on_signals
from bench.execution.storage import check_storage
from bench.execution.storage import normalize as normalize_storage
from bench.names import check_name
from bench.records.identity import run_settings
from bench.records.store import ResultStore
from bench.safe_files import refuse_links_under
from bench.train_sizes import TrainSize, parse_train_sizes
from bench.tuning.budget import Budget
from bench.tuning.samplers import Sampler

if TYPE_CHECKING:  # the runner (multiprocessing, the worker loop) is imported when workers start
    from bench.execution.runner import EarlyWorkers

Device = Literal["auto", "cpu", "cuda"]
Executor = Literal["local", "ray"]


@dataclass
class SweepConfig:
    """Everything a sweep needs; every value is checked when the config is made (BenchError naming
    the option, as the command line spells it, and the value)."""

    suite: str
    models: list[str]
    out: Path | None = None  # run directory; None = results/<suite name>
    datasets: list[str] | None = None  # a subset of the suite's datasets; None = all
    trials: int | None = 1  # incl. the defaults trial; None = as many as tune_seconds allows
    tune_seconds: float | None = None  # tuning wall clock per job, counted after the defaults trial
    sampler: Sampler = "tpe"  # bench.tuning.samplers: tpe (with median pruning) | random (no pruning)
    inner_folds: int | None = None  # inner cross-validation folds; None = the suite protocol's (default 1)
    pack: int = 1  # trials trained together as one packed model where the model can (bench.tuning.packing)
    seed: int = 0
    workers: int = 1  # CPU worker slots; 0 = in this process (debugging: no isolation, no limits)
    threads: int = 0  # per job; 0 = cores / all worker slots
    time_limit: float | None = None
    max_splits: int | None = None
    # --train-sizes (bench.train_sizes): every job once per size of its split's learning data (fractions in
    # (0, 1] or row counts > 1; text "0.1,0.5,1" or a list); None: the whole split, as always
    train_sizes: list[TrainSize] | str | None = None
    device: Device = "auto"
    retry_failed: bool = False
    seeds: int = 1  # model seeds per final configuration (default and tuned)
    gpus: str = "auto"  # auto | none | device ids "0,1"
    jobs_per_gpu: int | Literal["auto"] = 1  # GPU worker slots per device; auto: what fits (gpu_usage)
    memory_limit_gb: float | None = None  # per job (worker process tree resident memory)
    storage: str | None = None  # shared Optuna storage URL; None = one SQLite file per job
    executor: Executor = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        self.models = _names("--models", self.models)
        if self.datasets is not None:
            self.datasets = _names("--datasets", self.datasets)
        # The budget's own options (trials, tune seconds, sampler, inner folds, time limit, pack) are checked by it.
        self._budget = Budget(self.trials, self.tune_seconds, self.sampler,
                              1 if self.inner_folds is None else self.inner_folds, self.time_limit, self.pack)
        check_int("--seeds", self.seeds, 1)
        check_int("--jobs", self.workers, 0)
        check_int("--threads", self.threads, 0)
        if self.jobs_per_gpu != "auto":
            check_int("--jobs-per-gpu", self.jobs_per_gpu, 1, "or 'auto'")
        check_int("--seed", self.seed, 0)
        if self.max_splits is not None:
            check_int("--splits", self.max_splits, 1)
        if self.train_sizes is not None:
            self.train_sizes = parse_train_sizes(self.train_sizes)
        check_positive("--memory-limit", self.memory_limit_gb, "GB")
        check_choice("--device", self.device, Device)
        check_choice("--executor", self.executor, Executor)
        if self.out is not None:
            self.out = Path(self.out)
        if self.storage:
            self.storage = normalize_storage(self.storage)  # postgresql:// gets the installed driver

    def gpu_ids(self) -> list[str]:
        if not hasattr(self, "_gpu_ids"):  # detection runs nvidia-smi: once per sweep is enough
            self._gpu_ids = [] if self.device == "cpu" else visible_gpus(self.gpus)
        return self._gpu_ids

    def resolved_inner_folds(self, suite) -> int:
        """--inner-folds when given, else the suite protocol's inner_folds."""
        return self.inner_folds if self.inner_folds is not None else getattr(suite.protocol, "inner_folds", 1)

    def budget(self, suite) -> Budget:
        """The sweep's budget (its inner folds: --inner-folds, else the suite's); dataset_budget is a job's."""
        return replace(self._budget, inner_folds=self.resolved_inner_folds(suite))

    def dataset_budget(self, suite, n_rows: int) -> Budget:
        """The budget of one dataset's jobs: the sweep's, except that the suite's inner folds apply only to
        datasets of at most protocol.inner_folds_max_rows rows (larger ones keep the holdout); --inner-folds
        applies to every dataset. Each record's `budget` and `inner_folds` say what its job used."""
        limit = getattr(suite.protocol, "inner_folds_max_rows", None)
        if self.inner_folds is None and limit is not None and n_rows > limit:
            return replace(self.budget(suite), inner_folds=1)
        return self.budget(suite)

    def gpu_workers(self, gpu_models: Sequence[str] = (), store: ResultStore | None = None) -> dict[str, int]:
        """Worker slots per GPU id. A number applies to every GPU; "auto" is decided once per sweep
        from free memory and the measured per-job footprint (bench.execution.gpu_usage), with the
        reasoning in self.gpu_note."""
        if not hasattr(self, "_gpu_workers"):
            gpus = self.gpu_ids()
            self.gpu_note = ""
            if self.jobs_per_gpu != "auto":
                self._gpu_workers = {g: self.jobs_per_gpu for g in gpus}
            elif not gpus or not gpu_models:
                self._gpu_workers = {g: 1 for g in gpus}
            else:
                from bench.execution import gpu_usage

                measured = gpu_usage.measured_footprints(store.load_all() if store is not None else [])
                footprint = gpu_usage.job_footprint(list(gpu_models), measured)
                self._gpu_workers, self.gpu_note = gpu_usage.auto_jobs_per_gpu(
                    gpus, gpu_usage.free_memory(gpus), footprint, cpu_count(), self.workers)
        return self._gpu_workers

    def identity(self, suite, datasets=None) -> dict:
        """What run.json records and compares (bench.records.store.check_config): the suite's name and
        protocol, the budget (sampler, inner folds and the job time limit included: the limit decides
        which trials are cut short and which jobs time out), and, once loaded, each dataset's content
        hash."""
        settings = run_settings({"suite": suite.name, "seed": self.seed, "max_splits": self.max_splits,
                                 "seeds": self.seeds, **self.budget(suite).settings()})
        out = {"suite": suite.name, "protocol": asdict(suite.protocol), **settings, "models": list(self.models)}
        if datasets is not None:
            out["datasets"] = {ds.name: ds.content_hash for ds in datasets}
            text = json.dumps([out["protocol"], sorted(out["datasets"].items())], sort_keys=True)
            out["suite_hash"] = hashlib.sha256(text.encode()).hexdigest()[:16]
        return out


def _names(option: str, names: Sequence[str]) -> list[str]:
    """Names as given, each once (a repeated model would run the same job twice at once, sharing one
    study); an empty name (`--datasets ,`) is an error, not "all of them"."""
    stripped = [str(n).strip() for n in names]
    if not all(stripped) or not stripped:
        given = ",".join(map(str, names))
        raise BenchError(f"{option}: an empty name in {given!r}; give one or more comma-separated names")
    return list(dict.fromkeys(stripped))


@dataclass
class SweepPlan:
    """A prepared sweep: the data is loaded and split, the jobs are planned, nothing has run. It holds
    the run directory's lock until execute_sweep ends (or close())."""

    config: SweepConfig
    suite: object  # bench.suites.Suite
    store: ResultStore
    loaded: list  # bench.suites.LoadedDataset, after --datasets
    excluded: list  # bench.suites.Excluded (suite filters)
    jobs: list[Job]
    run_config: dict = field(default_factory=dict)  # run.json as execute_sweep writes it
    notes: list[str] = field(default_factory=list)  # for the user: changed datasets, a taken-over lock
    data_notes: dict[str, list[str]] = field(default_factory=dict)  # dataset -> load-time warnings
    skipped: dict[str, str] = field(default_factory=dict)  # dataset -> why it is too small for the protocol
    lock: RunLock | None = None
    early: EarlyWorkers | None = None  # local CPU workers started while planning

    @property
    def out(self) -> Path:
        return self.store.run_dir

    def done_count(self) -> int:
        return sum(self.store.is_done(j, self.config.retry_failed) for j in self.jobs)

    def eta(self) -> Eta:
        """The ETA of this sweep's jobs not done yet (per-model medians, bench.execution.heartbeat)."""
        config = self.config
        workers = max(1, config.workers) + (sum(config.gpu_workers().values()) if config.executor == "local" else 0)
        return Eta([j.model for j in self.jobs if not self.store.is_done(j, config.retry_failed)], workers)

    def close(self) -> None:
        early, self.early = self.early, None
        if early is not None:
            early.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def plan_entries(self) -> tuple[dict, dict]:
        """(datasets, jobs) for plan.json."""
        datasets = {}
        for item in self.loaded:
            ds = item.dataset
            datasets[ds.name] = {"hash": ds.content_hash, "task_type": ds.task_type, "n_rows": ds.n_rows,
                                 "n_features": ds.n_features, "checks": ds.checks,
                                 "warnings": self.data_notes.get(ds.name, []), "skipped": self.skipped.get(ds.name)}
        run_dir = self.store.run_dir
        jobs = {j.job_id: {"dataset": j.dataset, "model": j.model, "dataset_hash": j.dataset_hash,
                           "split_hash": j.split_hash, "job_key": j.key, "variants": list(j.variants),
                           "split_file": str(Path(j.split_file).relative_to(run_dir)) if j.split_file else None,
                           "split_index": j.split_index}
                for j in self.jobs}
        return datasets, jobs


@dataclass
class SweepResult:
    plan: SweepPlan
    summary: object  # bench.execution.runner.SweepSummary
    store: ResultStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.plan.store


Progress = Callable[[Job, list[dict]], None]


def prepare_sweep(config: SweepConfig) -> SweepPlan:
    """Resolve models and suite, take the run directory, load and split the data, plan the jobs (no job
    is run, and run.json is not written: a sweep that fails here leaves nothing that blocks the next).
    The local CPU workers start first, idle, so that their start-up (imports) runs beside all of this
    (EarlyWorkers); plan.close() or execute_sweep stops them, and so does a failure here."""
    early = _early_workers(config)
    try:
        plan = _plan(config, early)
    except BaseException:
        if early is not None:
            early.close()
        raise
    return plan


def _plan(config: SweepConfig, early: EarlyWorkers | None) -> SweepPlan:
    from bench.adapters import resolve_models
    from bench.suites import Protocol, load_suite, materialize

    for adapter in resolve_models(config.models):  # unknown names fail here, before any data is loaded
        check_name("model", adapter.name)
    suite = load_suite(config.suite)
    check_name("suite", suite.name)
    out = config.out or Path("results") / suite.name
    if config.storage:
        check_storage(config.storage)
    store = ResultStore(open_run_dir(out))
    refuse_links_under(store.run_dir, "the run folder")  # the harness would write through them (safe_files)
    lock = RunLock(store.run_dir).acquire()
    plan = None
    try:
        defaults = asdict(Protocol())  # what a key an older run.json lacks meant
        store.check_config(config.identity(suite), defaults)  # a changed budget or protocol fails before any loading
        loaded, excluded = materialize(suite)
        if config.datasets:
            names = [item.dataset.name for item in loaded]
            unknown = [d for d in config.datasets if d not in names]
            if unknown:
                raise BenchError(f"suite '{suite.name}' has no dataset(s) {', '.join(unknown)}. "
                                 f"Its datasets: {', '.join(names)}")
            loaded = [item for item in loaded if item.dataset.name in config.datasets]
        run_config, notes = store.check_config(config.identity(suite, [item.dataset for item in loaded]), defaults)
        plan = SweepPlan(config, suite, store, loaded, excluded, [], run_config, notes, lock=lock, early=early)
        plan.notes += [lock.note] if lock.note else []
        plan.data_notes = {item.dataset.name: data_warnings(item.dataset) for item in loaded
                           if data_warnings(item.dataset)}
        plan.jobs = plan_jobs(config, suite, loaded, store, run_id=run_config["run_id"], skipped=plan.skipped,
                              notes=plan.notes)
        plan.notes += [config.gpu_note] if getattr(config, "gpu_note", "") else []
        return plan
    except BaseException:
        if plan is not None:
            plan.early = None  # (prepare_sweep stops them)
            plan.close()
        else:
            lock.release()
        raise


def _early_workers(config: SweepConfig):
    """The local CPU workers, started now so that their start-up runs beside the loading and splitting
    of the data (bench.execution.runner.EarlyWorkers); None with other executors, no workers or GPUs
    (GPU slots change every worker's thread share, known only once the models are planned)."""
    if config.executor != "local" or config.workers <= 0 or config.gpu_ids():
        return None
    from bench.execution.runner import EarlyWorkers

    return EarlyWorkers(config.workers, config.threads or max(1, cpu_count() // config.workers),
                        config.memory_limit_gb is not None)


def execute_sweep(plan: SweepPlan, progress: Progress | None = None,
                  heartbeat: Callable[[Job, str], None] | None = None) -> SweepResult:
    """Run every planned job not already done; `progress(job, records)` as each one finishes, and
    `heartbeat(job, line)` as each trial of a running job does (local workers; bench.execution.heartbeat).

    SIGTERM / SIGHUP stop it cleanly (bench.execution.signals.Interrupted: workers and their children
    are stopped, finished records are kept, a rerun resumes)."""
    config = plan.config
    try:
        with stop_on_signals():
            # The run really starts: its identity and plan are written now, never by a failed start.
            plan.store.write_config(plan.run_config)
            plan.store.write_plan(*plan.plan_entries())
            # The cross-model ensembles of every split with 2+ models in the folder (earlier runs' too).
            plan.store.write_plan({}, cross_model_entries(plan.store.plan().get("jobs") or {}))
            as_finished = AsSplitsFinish(plan.store, config.retry_failed)

            def finished(job: Job, records: list[dict]) -> None:
                try:
                    as_finished(job.job_id)
                except Exception:  # noqa: BLE001 - the pass after the executor computes (or reports) it
                    pass
                if progress is not None:
                    progress(job, records)

            if config.executor == "ray":
                from bench.execution.ray_executor import run_ray

                summary = run_ray(plan.jobs, plan.store, address=config.ray_address, time_limit=config.time_limit,
                                  memory_limit_gb=config.memory_limit_gb, retry_failed=config.retry_failed,
                                  progress=finished)
            else:
                from bench.execution.runner import run_local

                summary = run_local(plan.jobs, plan.store, workers=config.workers, gpus=config.gpu_ids(),
                                    jobs_per_gpu=config.gpu_workers(), time_limit=config.time_limit,
                                    memory_limit_gb=config.memory_limit_gb, retry_failed=config.retry_failed,
                                    progress=finished, heartbeat=heartbeat, early=plan.early)
                plan.early = None  # run_local took them over, or stopped them
            # After every job: also a rerun that found them all done computes what is missing.
            count_into(summary, as_finished.written + run_cross_model(plan.store, config.retry_failed))
    finally:
        plan.close()
    return SweepResult(plan, summary)


def run_sweep(config: SweepConfig, progress: Progress | None = None) -> SweepResult:
    """Prepare and execute a sweep (see the module docstring)."""
    return execute_sweep(prepare_sweep(config), progress)
