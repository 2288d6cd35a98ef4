"""`bench plan`: what a sweep will cost before it runs, from costs measured in earlier run folders or in a short
calibration, and afterwards how far the estimate was from what the run really took.

    config = SweepConfig(suite="demo", models=["xgboost", "mlp"], trials=20, workers=2)
    model = cost_model([Path("results/demo")])             # or cost_model(calibrate(config, folder))
    jobs, notes = planned_jobs(config)
    estimate = estimate_sweep(jobs, model, *slots(config))
    estimate.wall_seconds, estimate.cpu_hours, estimate.over_limit

The per-job arithmetic is bench.analysis.costs (measured parts, scaled by rows x features x classes). A sweep
is the jobs `bench run` would plan (dataset x split x model, x train size with --train-sizes; datasets and
sizes too small for the protocol left out),
each on the device it would get, and its wall time is the executor's schedule replayed: jobs in plan order,
each to the first free worker of its kind (CPU workers: --jobs, 0 = one in-process; GPU workers: GPUs x
--jobs-per-gpu, auto counted as 1), as bench.execution.runner hands them out. Worker start-up is not counted.

    CPU-hours  sum over CPU jobs of seconds x threads per job (core-hours the sweep holds)
    GPU-hours  sum over GPU jobs of seconds (device-hours held)
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.costs import CostModel, JobBudget, cost_key, data_size, job_seconds, measure, record_size
from bench.errors import BenchError
from bench.execution.resources import cpu_count
from bench.execution.sweep import SweepConfig, run_sweep
from bench.records.store import ResultStore
from bench.seeding import calibration_seed
from bench.vocabulary import CROSS_MODEL, Variant

CALIBRATION_QUANTILES = (0.0, 0.5, 0.75)  # of the suite's dataset sizes: smallest, median, 75%
# The defaults trial and two sampled configurations: a tuning trial can cost far more than the defaults
# (an XGBoost trial with deep trees and a small learning rate: 41 s per job on offline-20 against a
# 0.1-1.5 s defaults trial), so the ratio of a sampled trial to the defaults is measured, not assumed 1.
CALIBRATION_TRIALS = 3
JOB_COLUMNS = ["dataset", "train_size", "model", "split", "device", "threads", "trials", "seconds", "defaults_seconds",
               "source"]


@dataclass(frozen=True)
class PlannedJob:
    dataset: str
    model: str
    split: int
    device: str
    size: float  # bench.analysis.costs.data_size
    threads: int
    budget: JobBudget
    train_size: str | None = None  # --train-sizes: the size's label (bench.train_sizes); None: the whole split

    @property
    def cost_key(self) -> str:
        return cost_key(self.dataset, self.train_size)


def planned_jobs(config: SweepConfig) -> tuple[list[PlannedJob], list[str]]:
    """The jobs `bench run` would plan for `config` (nothing is written to a run folder), and notes: datasets
    left out as too small for the protocol. With --train-sizes, one job per size too, its rows scaled by the
    share of the learning rows the size takes (bench.train_sizes.learning_share, on the protocol's splits,
    computed as bench run computes them and kept in the bench cache); a size too small for a split is left
    out with the reason in the notes, as bench run skips it."""
    from bench.adapters import resolve_models
    from bench.splits import planned_labels
    from bench.suites import load_suite, materialize

    adapters = resolve_models(config.models)
    suite = load_suite(config.suite)
    loaded, _ = materialize(suite)
    if config.datasets:
        unknown = sorted(set(config.datasets) - {item.dataset.name for item in loaded})
        if unknown:
            raise BenchError(f"--datasets: suite '{suite.name}' has no dataset(s) {', '.join(unknown)}")
        loaded = [item for item in loaded if item.dataset.name in config.datasets]
    _, gpu_slots = slots(config)
    threads = config.threads or max(1, cpu_count() // max(1, config.workers + gpu_slots))
    jobs: list[PlannedJob] = []
    notes = ["--executor ray: the wall time counts --jobs worker slots (the cluster's size is not known here)"] \
        if config.executor == "ray" else []
    if config.pack > 1:
        notes.append(f"--pack {config.pack}: trials are estimated as trained one at a time, from measured single "
                     f"trials (what packing saves depends on model, shapes and device: `make perf-pack` measures it)")
    for item in loaded:
        ds = item.dataset
        if ds.n_rows < getattr(suite.protocol, "folds", 0) and item.predefined is None and not item.task_splits:
            notes.append(f"{ds.name}: too small for the protocol ({ds.n_rows} rows): skipped records, no cost")
            continue
        labels = planned_labels(suite.protocol, item.task_splits, item.predefined)[: config.max_splits or None]
        budget = config.dataset_budget(suite, ds.n_rows)  # as bench run: inner folds only for small datasets
        for label, index, rows in _sized_units(config, suite, item, len(labels), budget.inner_folds, notes):
            size = data_size(rows, ds.n_features, ds.n_classes, ds.task_type)
            for adapter in adapters:
                b = budget.for_model(bool(adapter.search_space_for(ds.task_type)))
                device = "cuda" if gpu_slots and adapter.capabilities.gpu != "no" else "cpu"
                jobs.append(PlannedJob(ds.name, adapter.name, index, device, size, threads,
                                       JobBudget(b.trials, b.seconds, b.inner_folds, b.time_limit, config.seeds),
                                       label))
    return jobs, notes


def _sized_units(config: SweepConfig, suite, item, n_splits: int, inner_folds: int, notes: list[str]):
    """(train size label, split index, rows the job's cost scales by) per job of a dataset: its rows on each
    split without --train-sizes, else per size and split the share of the split's learning rows it takes."""
    from bench.splits import splits_or_reason
    from bench.train_sizes import cut, learning_share, parse_train_sizes

    ds = item.dataset
    if not config.train_sizes:
        return [(None, index, float(ds.n_rows)) for index in range(n_splits)]
    splits, _, reason = splits_or_reason(ds, suite.protocol, item.task_splits, predefined=item.predefined)
    if reason:
        notes.append(f"{ds.name}: {reason}: skipped records, no cost")
        return []
    units, planned = [], splits[:n_splits]
    for size in parse_train_sizes(config.train_sizes):  # (SweepConfig made them TrainSizes)
        _, reasons = cut(planned, ds.y, ds.task_type != "regression", size, suite.protocol.seed, inner_folds)
        for index, (split, why) in enumerate(zip(planned, reasons)):
            if why:
                notes.append(f"{ds.name}: {why}: skipped, no cost")
                continue
            units.append((size.label, index, ds.n_rows * learning_share(size, len(split.train) + len(split.val))))
    return units


def slots(config: SweepConfig) -> tuple[int, int]:
    """(CPU worker slots, GPU worker slots) of the executor (see the module doc)."""
    per_gpu = 1 if config.jobs_per_gpu == "auto" else int(config.jobs_per_gpu)
    return max(1, config.workers), len(config.gpu_ids()) * per_gpu


def cost_model(runs: list[Path]) -> CostModel:
    """The costs measured in these run folders (BenchError naming a folder that is not a run)."""
    costs = []
    for run in runs:
        store = ResultStore(Path(run))
        if not store.records_dir.is_dir():
            raise BenchError(f"--from {run}: no records/ folder (not a run directory of `bench run`)")
        costs += measure(store.load_all())
    if not costs:
        raise BenchError(f"--from {', '.join(map(str, runs))}: no finished job with measured trials")
    return CostModel(costs)


@dataclass
class Estimate:
    """A sweep's expected cost (see the module doc); `jobs` has one row per job (JOB_COLUMNS)."""

    jobs: pd.DataFrame
    cpu_hours: float
    gpu_hours: float
    wall_seconds: float
    unknown: list[str]  # models with no measurement: their jobs are not counted
    over_limit: dict[str, list[str]]  # model -> datasets whose defaults trial alone exceeds --time-limit
    notes: list[str] = field(default_factory=list)

    @property
    def trials(self) -> float:
        return float(self.jobs.trials.sum())

    def per_model(self) -> pd.DataFrame:
        """Per model: jobs, trials, estimated seconds (sum) and how its costs were known."""
        return (self.jobs.groupby("model")
                .agg(jobs=("dataset", "size"), trials=("trials", "sum"), seconds=("seconds", "sum"),
                     measured=("source", lambda s: int((s == "measured").sum())),
                     scaled=("source", lambda s: int((s == "scaled").sum())))
                .reset_index())


def estimate_sweep(jobs: list[PlannedJob], model: CostModel, cpu_slots: int, gpu_slots: int) -> Estimate:
    rows = []
    for job in jobs:
        parts = model.parts(job.model, job.cost_key, job.size, job.device)
        seconds = defaults = np.nan
        if parts is not None:
            seconds, defaults = job_seconds(parts, job.budget)
        rows.append({"dataset": job.dataset, "train_size": job.train_size, "model": job.model, "split": job.split,
                     "device": job.device, "threads": job.threads, "trials": _trials(job.budget, parts),
                     "seconds": seconds, "defaults_seconds": defaults, "source": parts.source if parts else None})
    frame = pd.DataFrame(rows, columns=JOB_COLUMNS)
    known = frame[frame.seconds.notna()]
    cpu = known[known.device == "cpu"]
    over: dict[str, list[str]] = {}
    limits = {(j.model, j.dataset): j.budget.time_limit for j in jobs}
    for (m, d), g in known.groupby(["model", "dataset"]):
        limit = limits[(m, d)]
        if limit is not None and (g.defaults_seconds >= limit).any():
            over.setdefault(str(m), []).append(str(d))
    notes = list(model.notes)
    planned, measured = set(frame.threads), model.threads()
    if len(frame) and planned != measured:
        notes.append(f"measured with {_listed(measured)} thread(s) per job, planned with {_listed(planned)}: "
                     f"seconds are not rescaled for threads")
    pace = model.pace()
    if pace is not None:
        notes.append(f"the measured trials ran at {pace:.2f} CPU seconds per wall second per thread (median; about 1 "
                     f"on an idle machine): the wall times assume the same pace, a machine shared more or less "
                     f"changes them in proportion")
    return Estimate(frame, float((cpu.seconds * cpu.threads).sum() / 3600),
                    float(known[known.device == "cuda"].seconds.sum() / 3600),
                    wall_seconds(known, cpu_slots, gpu_slots), sorted(set(frame.model[frame.seconds.isna()])),
                    over, notes)


def _listed(values) -> str:
    return "/".join(str(v) for v in sorted(values))


def _trials(budget: JobBudget, parts) -> float:
    """Trials a job runs: its budget's, or with `--trials none` as many as --tune-seconds fits."""
    if budget.trials is not None:
        return float(budget.trials)
    if parts is None or budget.tune_seconds is None:
        return np.nan
    return 1.0 + np.floor(budget.tune_seconds / max(parts.trial * budget.inner_folds, 1e-6))


def wall_seconds(jobs: pd.DataFrame, cpu_slots: int, gpu_slots: int) -> float:
    """The schedule replayed: jobs in order, each kind to its first free worker; when the last ends."""
    end = 0.0
    for device, slots in (("cpu", cpu_slots), ("cuda", gpu_slots)):
        seconds = jobs.seconds[jobs.device == device].to_numpy(float)
        if not len(seconds):
            continue
        free = [0.0] * max(1, slots)
        for s in seconds:
            heapq.heappush(free, heapq.heappop(free) + s)
        end = max(end, max(free))
    return end


def calibration_datasets(config: SweepConfig) -> list[str]:
    """The suite's smallest dataset, its median one and the one at the 75% quantile of size (rows x features
    x classes): a spread to fit the size exponent on, without its largest (whose cost is the question)."""
    from bench.suites import load_suite, materialize

    loaded, _ = materialize(load_suite(config.suite))
    names = [i.dataset.name for i in loaded if not config.datasets or i.dataset.name in config.datasets]
    sizes = {i.dataset.name: data_size(i.dataset.n_rows, i.dataset.n_features, i.dataset.n_classes,
                                       i.dataset.task_type) for i in loaded if i.dataset.name in names}
    ordered = sorted(names, key=lambda name: sizes[name])
    picks = [ordered[int(q * (len(ordered) - 1) + 0.5)] for q in CALIBRATION_QUANTILES] if ordered else []
    return list(dict.fromkeys(picks))


def calibrate(config: SweepConfig, out: Path, progress=None) -> list[Path]:
    """Run the defaults trial and, when the sweep tunes, CALIBRATION_TRIALS - 1 sampled trials of each
    model on one split of each calibration dataset, each dataset in its own folder under `out` (resumed when
    it exists) with its own base seed (bench.seeding.calibration_seed): a sweep draws the same configurations
    for every dataset of a split, so one seed would measure a model's tuning trials on 2 configurations; this
    way on 2 per dataset. Returns the folders, for cost_model."""
    trials = 1 if config.trials == 1 else CALIBRATION_TRIALS
    folders = []
    for index, name in enumerate(calibration_datasets(config)):
        # The sweep's tuning clock bounds the sampled trials as it will bound the sweep's (without one, a
        # sampled configuration runs to its end, as it would in the sweep).
        folder = Path(out) / name
        calib = SweepConfig(suite=config.suite, models=config.models, out=folder, datasets=[name], trials=trials,
                            tune_seconds=config.tune_seconds, max_splits=1, seed=calibration_seed(config.seed, index),
                            workers=config.workers, threads=config.threads, time_limit=config.time_limit,
                            device=config.device, gpus=config.gpus,
                            jobs_per_gpu=config.jobs_per_gpu, memory_limit_gb=config.memory_limit_gb)
        run_sweep(calib, progress)
        folders.append(folder)
    return folders


@dataclass
class Check:
    """Estimate against actual for a finished run: per job, and the run's wall clock."""

    jobs: pd.DataFrame  # JOB_COLUMNS + actual
    estimated_wall: float
    actual_wall: float | None
    notes: list[str] = field(default_factory=list)
    paces: tuple[float | None, float | None] = (None, None)  # CostModel.pace of the sources and of the run

    def pace_ratio(self) -> float | None:
        """The sources' pace / the run's: the estimate x this is what it would be at the run's own pace."""
        source, run = self.paces
        return source / run if source and run else None

    def per_model(self) -> pd.DataFrame:
        both = self.jobs.dropna(subset=["seconds", "actual"])
        out = both.groupby("model").agg(jobs=("actual", "size"), estimated=("seconds", "sum"),
                                        actual=("actual", "sum")).reset_index()
        return out.assign(ratio=out.estimated / out.actual)

    def total_ratio(self) -> float:
        both = self.jobs.dropna(subset=["seconds", "actual"])
        return float(both.seconds.sum() / both.actual.sum()) if both.actual.sum() > 0 else float("nan")


def check(run_dir: Path, model: CostModel, cpu_slots: int, gpu_slots: int = 0) -> Check:
    """The run's jobs (plan.json) estimated under its own budget (run.json) against their job_seconds."""
    store = ResultStore(Path(run_dir))
    config, plan = store.config(), store.plan()
    if not plan.get("jobs") or not config:
        raise BenchError(f"--check {run_dir}: no run.json and plan.json with jobs (not a run of `bench run`)")
    records = store.load_all()
    actual, shapes, threads, folds, sizes, stamps = _actuals(records)
    jobs, ids = [], []
    for job_id, info in plan["jobs"].items():
        if job_id not in shapes or info.get("model") == CROSS_MODEL:
            continue  # (a job with no record: nothing to check it against)
        ids.append(job_id)
        trials = config.get("trials") if len(info.get("variants") or []) > 1 else 1
        # The job's own inner folds (its record's): a suite's inner folds apply only to its small datasets.
        budget = JobBudget(trials, config.get("tune_seconds"), folds.get(job_id, int(config.get("inner_folds") or 1)),
                           config.get("time_limit"), int(config.get("seeds") or 1))
        device, n = threads.get(job_id, ("cpu", 1))
        jobs.append(PlannedJob(info["dataset"], info["model"], int(info.get("split_index") or 0), device,
                               shapes[job_id], n, budget, sizes.get(job_id)))
    est = estimate_sweep(jobs, model, cpu_slots, gpu_slots)
    frame = est.jobs.assign(job_id=ids, actual=[actual.get(i, np.nan) for i in ids])
    ran = frame[frame.seconds.notna() & frame.actual.notna()]  # the wall of the jobs that ran, in plan order
    return Check(frame, wall_seconds(ran, cpu_slots, gpu_slots), stamps, est.notes,
                 (model.pace(), CostModel(measure(records)).pace()))


def _actuals(records: list[dict]) -> tuple[dict[str, float], dict[str, float], dict[str, tuple[str, int]],
                                           dict[str, int], dict[str, str], float | None]:
    """Per job: its job_seconds, its size (costs.record_size), device and threads, inner folds and train size;
    the run's wall span (first job's start to last job's end, from finished_at and job_seconds)."""
    actual, shapes, threads, folds, sizes, starts, ends = {}, {}, {}, {}, {}, [], []
    for r in records:
        if r.get("task_type") and r.get("dataset") and r.get("job_id"):
            shapes[r["job_id"]] = record_size(r)
            if r.get("train_size"):
                sizes[r["job_id"]] = str(r["train_size"])
        if isinstance(r.get("job_seconds"), (int, float)) and r.get("variant") == Variant.DEFAULT:
            actual[r["job_id"]] = float(r["job_seconds"])
            threads[r["job_id"]] = (str(r.get("device") or "cpu"), int(r.get("threads") or 1))
            if r.get("inner_folds"):
                folds[r["job_id"]] = int(r["inner_folds"])
            end = pd.Timestamp(r["finished_at"]).timestamp() if r.get("finished_at") else None
            if end is not None:
                ends.append(end)
                starts.append(end - float(r["job_seconds"]))
    return actual, shapes, threads, folds, sizes, (max(ends) - min(starts)) if ends else None

