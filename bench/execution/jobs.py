"""One job = one model on one split of one dataset. Executing it yields one record per variant.

A job is a plain, picklable description (paths, names, numbers) so that any worker process can run it;
`execute_job` never raises for model problems: they become failure records.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.datasets import load_cached_dataset
from bench.records.identity import job_key, job_settings
from bench.records.record import Cost, Header, JobTuning, failed, not_run, ok
from bench.seeding import job_seed
from bench.train_sizes import TrainSize
from bench.tuning.budget import Budget
from bench.vocabulary import TUNING_VARIANTS, Status


@dataclass(frozen=True)
class Job:
    run_dir: str
    suite: str
    dataset: str
    dataset_dir: str  # materialized dataset (bench.datasets.save_dataset layout)
    dataset_hash: str
    split_file: str  # frozen splits (.npz) and which of them
    split_index: int
    repeat: int
    fold: int
    split_hash: str
    model: str
    # The sweep's declared budget (trials, tuning seconds, sampler, inner folds, the runner's hard time
    # limit): what tuning this job does, and so whether it tunes and which variants it reports.
    budget: Budget
    seed: int
    threads: int = 1
    device: str = "cpu"
    tunable: bool = True  # False for models without a search space: no "tuned" variant to report
    seeds: int = 1  # model seeds each final configuration is refit and tested with
    storage: str | None = None  # shared Optuna storage URL (PostgreSQL, ...); None = one SQLite file per job
    run_id: str = ""  # makes study names unique when many runs share one storage
    # The dataset's metadata (task_type, n_rows, n_features, n_classes, n_categorical) and the model's
    # family, known at planning time: every record of the job carries it, failure records included.
    meta: dict = field(default_factory=dict, hash=False)
    skip_reason: str = ""  # set when the dataset is too small for the protocol: `skipped` records
    # Where the split's rows came from (bench.splits.Split.origin: kfold, openml-task, predefined); the
    # split hash already covers the rows, so it is no setting either: the records say it.
    split_origin: str = ""
    # --train-sizes: the size of the split's learning data this job fits on (its split file and hash are the
    # subsample's, bench.train_sizes); in its id, key and records. None: the whole split, as without the option.
    train_size: TrainSize | None = None

    @property
    def job_id(self) -> str:
        size = self.train_size.suffix if self.train_size is not None else ""
        return f"{self.dataset}/{self.model}/r{self.repeat}f{self.fold}{size}"

    def _identity(self) -> tuple[dict, dict]:
        """(inputs, settings) as bench.records.identity names them."""
        inputs = {"dataset_hash": self.dataset_hash, "split_hash": self.split_hash, "model": self.model,
                  **({"train_size": self.train_size.label} if self.train_size is not None else {})}
        return inputs, {**self.budget.settings(), "seed": self.seed, "seeds": self.seeds}

    def settings(self) -> dict:
        """What decides the tuning this job does and on which rows (bench.records.identity: the job's
        inputs and keyed settings; the others are the run folder's). A study or record made under other
        settings is stale: never resumed, never counted as done."""
        return job_settings(*self._identity())

    @property
    def key(self) -> str:
        """Short hash of settings(): in study names and in every record (`job_key`)."""
        return job_key(*self._identity())

    @property
    def model_budget(self) -> Budget:
        """The budget this job's model gets (the defaults trial only when it has nothing to tune)."""
        return self.budget.for_model(self.tunable)

    @property
    def tunes(self) -> bool:
        return self.model_budget.tunes

    @property
    def variants(self) -> tuple[str, ...]:
        return self.model_budget.variants

    @property
    def study_name(self) -> str:
        name = f"{self.job_id.replace('/', '__')}__{self.key}"
        return f"{self.run_id}__{name}" if self.storage and self.run_id else name

    def header(self) -> Header:
        """What every record of this job says (bench.records.record), with what planning knew of the data."""
        split = {"index": self.split_index, "repeat": self.repeat, "fold": self.fold, "hash": self.split_hash,
                 "origin": self.split_origin or None}
        size = {"train_size": self.train_size.label} if self.train_size is not None else {}
        return Header(self.job_id, self.suite, self.dataset, self.dataset_hash, split, self.model, self.seed,
                      self.key, self.budget.record(), self.device, self.threads, meta={**self.meta, **size})

    @property
    def log_path(self) -> Path:
        """Everything the job printed (fd-level, so native libraries too) and logged."""
        return Path(self.run_dir) / "logs" / f"{self.job_id}.log"

    @property
    def predictions_path(self) -> Path:
        """Every completed trial's validation and test predictions (bench.tuning.predictions)."""
        return Path(self.run_dir) / "predictions" / f"{self.job_id}.npz"

    @property
    def study_file(self) -> Path:
        return Path(self.run_dir) / "optuna" / f"{self.study_name}.db"

    def storage_url(self) -> str | None:
        """Where the job's Optuna study lives (None: in memory, bench.testing's checks)."""
        if self.storage:
            return self.storage
        # One SQLite file per job: concurrent workers never contend for the same database lock.
        self.study_file.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.study_file}"

    def discard_studies(self, current: bool) -> None:
        """Delete this job's studies made under other settings (stale: they would never be read again)
        and, with current=True, its study under today's settings too, so that it starts afresh
        (--retry-failed: failed trials count toward the budget, so an old study would run nothing)."""
        if self.storage:
            if current:
                import optuna

                try:
                    optuna.delete_study(study_name=self.study_name, storage=self.storage)
                except KeyError:
                    pass  # no such study
            return
        folder, stem = self.study_file.parent, self.job_id.replace("/", "__")
        # The study of today's settings, other settings' (<stem>__<key>.db) and a pre-key name (<stem>.db).
        for path in [*folder.glob(f"{stem}__*.db"), folder / f"{stem}.db"]:
            if path.name.removeprefix(f"{stem}__").count("__") == 0 and (current or path != self.study_file):
                path.unlink(missing_ok=True)


def failure_records(job: Job, status: str, error_type: str, message: str, extra: dict | None = None) -> list[dict]:
    """One failure record per variant (`extra`: more fields, e.g. the memory a job was stopped at)."""
    return [failed(job.header().fields(v), status, error_type, message, extra or {}) for v in job.variants]


def skipped_records(job: Job) -> list[dict]:
    return [not_run(job.header().fields(v), Status.SKIPPED, job.skip_reason) for v in job.variants]


# The part of --time-limit kept back for what follows the last fit (scoring, predictions, records):
# fits stop at limit - reserve, with the reserve 10% of the limit, at least 30 s, at most half of it.
JOB_LIMIT_RESERVE = (0.1, 30.0)


def job_limit_deadline(time_limit: float | None, now: float) -> float | None:
    """The monotonic time at which fits stop so that the job ends before its hard time limit."""
    if not time_limit:
        return None
    share, floor = JOB_LIMIT_RESERVE
    return now + time_limit - min(max(share * time_limit, floor), time_limit / 2)


def from_scratch_if_damaged(job: Job) -> list[str]:
    """When the job's own files are damaged (its predictions files, bench.tuning.predictions.damaged_files,
    or its SQLite study): a truncated or overwritten file is the harness's problem, never the model's, so
    it must not turn into a failure record. Sets them aside (<name>.damaged-<time>) and discards the
    job's study, so that the job runs from scratch and its ensembles have every trial again. Returns
    what was set aside and why (the records say it, in `predictions.set_aside`)."""
    from bench.tuning.predictions import damaged_files, set_aside

    damaged = damaged_files(job.predictions_path)
    if not job.storage and job.study_file.exists():
        problem = _sqlite_problem(job.study_file)
        if problem:
            damaged[job.study_file] = problem
    if not damaged:
        return []
    notes = [f"{set_aside(path).name}: {problem} (the job was run from scratch)" for path, problem in damaged.items()]
    job.discard_studies(current=True)
    return notes


def _sqlite_problem(path: Path) -> str | None:
    """What SQLite's quick check finds wrong with a database file (None: nothing)."""
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:3])


def execute_job(job: Job, adapter_cls=None, on_trial: Callable[[dict], None] | None = None) -> list[dict]:
    """Run the job; always returns one record per variant (ok, failed, skipped or unavailable).

    adapter_cls replaces the registry lookup of job.model (bench.testing checks unregistered adapters);
    on_trial gets each finished trial's summary (bench.tuning.trials) as it ends."""
    from bench.adapters import TaskInfo
    from bench.splits import fold_sizes
    from bench.tuning import Parts

    if job.skip_reason:  # the dataset (or its --train-sizes subsample) is too small for the protocol
        return skipped_records(job)
    started = time.perf_counter()
    limit_deadline = job_limit_deadline(job.budget.time_limit, time.monotonic())
    try:
        adapter_cls, ds, split = _load(job, adapter_cls)
    except Exception as exc:
        return failure_records(job, Status.FAILED, type(exc).__name__, str(exc))
    # n_train: rows each model is fit on; n_val: rows its validation score comes from (inner folds:
    # every outer training row, out of fold)
    n_train, n_val = fold_sizes(len(split.train), len(split.val), job.budget.inner_folds)
    loaded = job.header().knowing(**ds.summary(), n_train=n_train, n_val=n_val, n_test=len(split.test),
                                  inner_folds=job.budget.inner_folds, family=adapter_cls.family, source=ds.source)
    header = loaded.knowing(adapter_cls.libraries)
    try:
        # Unavailable (an optional library or the weights are missing here) comes first: it says nothing
        # about the dataset, and such records are re-run once the environment has what the model needs.
        status, reason = Status.UNAVAILABLE, adapter_cls.unavailable_reason(ds.task_type)
    except Exception as exc:  # a bug in the check must not take the sweep down
        return [failed(loaded.fields(v), Status.FAILED, type(exc).__name__, f"availability check failed: {exc}")
                for v in job.variants]
    if not reason:
        status, reason = Status.SKIPPED, adapter_cls.capabilities.refusal(ds.task_type, n_train,
                                                                     ds.n_features, ds.n_classes, job.device)
    if reason:
        return [not_run(header.fields(v), status, reason) for v in job.variants]
    seed = job_seed(job.seed, job.split_index)
    try:
        set_aside = from_scratch_if_damaged(job)
        outcome = _tune(job, adapter_cls, TaskInfo(ds.task_type, ds.n_classes), Parts.of_split(ds, split), seed,
                        limit_deadline, on_trial)
    except Exception as exc:  # a bug or crash outside any single trial
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
        return [failed(loaded.fields(v), Status.FAILED, type(exc).__name__, f"{exc}\n{tb}") for v in job.variants]
    return outcome_records(job, header, outcome, seed, time.perf_counter() - started, set_aside)


def _load(job: Job, adapter_cls):
    """(adapter class, dataset, split) of the job, checked against the hashes it was planned with."""
    from bench.adapters import get_adapter
    from bench.splits import load_frozen

    adapter_cls = adapter_cls or get_adapter(job.model)
    data_dir, split_file = Path(job.dataset_dir), Path(job.split_file)
    ds = _recent((data_dir / "meta.json", data_dir / "data.parquet"), lambda: load_cached_dataset(data_dir))
    if ds is None or ds.content_hash != job.dataset_hash:
        raise RuntimeError(f"materialized dataset at {job.dataset_dir} is missing or changed")
    splits = _recent((split_file,), lambda: load_frozen(split_file))
    if splits is None:
        raise RuntimeError(f"frozen split file {job.split_file} is missing or unreadable")
    split = splits[job.split_index]
    if split.hash != job.split_hash:
        raise RuntimeError(f"frozen split {job.split_file}[{job.split_index}] changed")
    return adapter_cls, ds, split


# A worker's jobs come in plan order (dataset x split x model): consecutive jobs read the same dataset
# and split files. The last few reads are kept, each under its files' identity (device, inode, size,
# modification time): every file here is written by an atomic rename, so a rewritten file has a new
# identity and is read (and its content hash checked) again.
_RECENT: dict[tuple, object] = {}
_RECENT_MAX = 4


def _recent(files: tuple[Path, ...], read: Callable[[], object]):
    """What `read()` gives for `files`, read again only when one of them changed (None is not kept)."""
    try:
        stats = [f.stat() for f in files]
    except OSError:
        return read()  # missing: the reader says what is wrong
    key = tuple((str(f), s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns) for f, s in zip(files, stats))
    if key not in _RECENT:
        value = read()
        if value is None:
            return None
        if len(_RECENT) >= _RECENT_MAX:
            _RECENT.pop(next(iter(_RECENT)))
        _RECENT[key] = value
    return _RECENT[key]


def _tune(job: Job, adapter_cls, task, parts, seed: int, limit_deadline: float | None, on_trial=None):
    """The job's tuning session (bench.tuning.study); it runs a single trial for models with nothing to tune."""
    from bench.execution.storage import job_study_storage
    from bench.tuning import tune

    # A one-trial job has nothing to resume, and a persistent study would only add its database
    # set-up (0.3-1 s per job, most of the harness overhead on small jobs): it tunes in memory.
    url = job.storage_url() if job.tunes else None
    storage = job_study_storage(job.study_file) if url and not job.storage else url
    return tune(adapter_cls, task, parts, job.budget, seed=seed, threads=job.threads, device=job.device,
                storage=storage, study_name=job.study_name, seeds=job.seeds, predictions=job.predictions_path,
                job_key=job.key, limit_deadline=limit_deadline, on_trial=on_trial)


def outcome_records(job: Job, header: Header, outcome, seed: int, job_seconds: float,
                    set_aside: list[str]) -> list[dict]:
    """The records of a tuning outcome (bench.tuning.study.TuningOutcome): one per variant, ok or failed."""
    predictions = None
    if outcome.predictions is not None:  # what the cross-model ensemble reads (bench.execution.ensembles)
        info = dict(outcome.predictions)
        if set_aside:  # found damaged before the job ran: it was run from scratch
            info["set_aside"] = set_aside + info.get("set_aside", [])
        predictions = {"file": str(job.predictions_path.relative_to(job.run_dir)), **info}
    tuning = JobTuning(outcome.objective, outcome.direction, outcome.trials, outcome.tuning_seconds, job_seconds,
                       seed, outcome.resumes, predictions).fields()

    def cost(variant: str) -> dict:
        """What the variant cost and whether tuning really ran (bench.records.schema)."""
        spent = outcome.costs[variant]
        return Cost(outcome.only_defaults if variant in TUNING_VARIANTS else None, spent["cpu"],
                    spent["wall"] if job.device == "cuda" else 0.0).fields()

    records = [ok(header.fields(v.variant), outcome.objective, v, tuning, cost(v.variant)) for v in outcome.variants]
    for variant, message in outcome.failures.items():
        records.append(failed(header.fields(variant), Status.FAILED, message.split(":", 1)[0], message, tuning,
                              cost(variant)))
    return records
