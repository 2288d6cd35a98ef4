"""Planning a sweep's jobs (dataset x split x [train size x] model) from its loaded data: the run folder's
copies of the data and its frozen splits (and, with --train-sizes, each size's subsampled splits,
bench.train_sizes) are written here. bench.execution.sweep.prepare_sweep calls plan_jobs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench import meta_features
from bench.datasets import read_cached_dataset, save_dataset
from bench.execution.jobs import Job
from bench.execution.resources import cpu_count
from bench.names import check_name
from bench.records.integrity import npz_problem
from bench.records.store import ResultStore
from bench.splits import planned_labels, splits_or_reason
from bench.train_sizes import TrainSize, sized_splits
from bench.tuning.budget import Budget

if TYPE_CHECKING:
    from bench.execution.sweep import SweepConfig


def plan_jobs(config: SweepConfig, suite, loaded, store: ResultStore, run_id: str | None = None,
              skipped: dict[str, str] | None = None, notes: list[str] | None = None) -> list[Job]:
    """Every job (dataset x split x model; with --train-sizes dataset x size x split x model). A dataset (or
    a size of it) too small for the protocol gets jobs that give `skipped` records with the reason (noted in
    `skipped`), so the suite goes on without it. The run folder's copies of the data and its splits are
    written (again, when missing or damaged: said in `notes`)."""
    from bench.adapters import resolve_models

    adapters = resolve_models(config.models)
    gpus = config.gpu_ids()
    gpu_models = [a.name for a in adapters if a.capabilities.gpu != "no"] if gpus else []
    gpu_slots = sum(config.gpu_workers(gpu_models, store).values()) if gpu_models else 0
    # GPU workers feed their device from the CPU too, so they get their share of the cores.
    threads = config.threads or max(1, cpu_count() // max(1, config.workers + gpu_slots))
    run_id = store.config().get("run_id", "") if run_id is None else run_id
    skipped = {} if skipped is None else skipped
    notes = [] if notes is None else notes
    split_dir = store.run_dir / "splits"
    damaged = {p: why for p in sorted(split_dir.glob("*.npz")) if (why := npz_problem(p))}
    jobs = []
    for item in loaded:
        ds = item.dataset
        data_dir = _write_data(ds, store, notes)
        given = getattr(item, "predefined", None)  # the dataset's own split (protocol splits = "predefined")
        splits, split_file, reason = splits_or_reason(ds, suite.protocol, item.task_splits, split_dir,
                                                      root=store.run_dir, predefined=given)
        if split_file in damaged:
            notes.append(f"splits/{split_file.name}: {damaged[split_file]}; written again from the data and the "
                         f"protocol")
        labels = [(s.repeat, s.fold, s.hash) for s in splits] or \
            [(r, f, "") for r, f in planned_labels(suite.protocol, item.task_splits, given)]
        origin = splits[0].origin if splits else ""
        if config.max_splits:
            labels = labels[: config.max_splits]
        if reason:
            skipped[ds.name] = reason
        budget = config.dataset_budget(suite, ds.n_rows)
        for size, units in _sized(config, suite, ds, splits, split_file, labels, reason, budget, store, skipped):
            for index, (repeat, fold, split_hash, file, why) in enumerate(units):
                for adapter in adapters:
                    device = "cuda" if gpus and adapter.capabilities.gpu != "no" else "cpu"
                    jobs.append(Job(
                        run_dir=str(store.run_dir), suite=suite.name, dataset=ds.name, dataset_dir=str(data_dir),
                        dataset_hash=ds.content_hash, split_file=str(file or ""), split_index=index,
                        repeat=repeat, fold=fold, split_hash=split_hash, model=adapter.name,
                        budget=budget, seed=config.seed, seeds=config.seeds,
                        threads=threads, device=device, tunable=bool(adapter.search_space_for(ds.task_type)),
                        storage=config.storage, run_id=run_id, split_origin=origin,
                        meta={**ds.summary(), "family": adapter.family}, skip_reason=why or "", train_size=size,
                    ))
    return jobs


def _write_data(ds, store: ResultStore, notes: list[str]) -> Path:
    """The run folder's copy of the dataset (written again when missing, damaged or changed) and its
    meta-features; returns its folder."""
    data_dir = store.run_dir / "data" / check_name("dataset", ds.name)
    cached, problem = read_cached_dataset(data_dir)
    if problem:
        notes.append(f"data/{ds.name}: {problem}; written again from the suite's data")
    if cached is None or cached.content_hash != ds.content_hash:
        save_dataset(ds, data_dir, root=store.run_dir)
    meta_features.write(ds, data_dir, root=store.run_dir)  # once per dataset: kept while the data is the same
    return data_dir


def _sized(config: SweepConfig, suite, ds, splits, split_file, labels, reason, budget: Budget, store: ResultStore,
           skipped: dict[str, str]):
    """[(train size, [(repeat, fold, split hash, split file, skip reason) per split])]: one entry with size
    None (the whole splits) without --train-sizes, else one per size, its splits cut by bench.train_sizes
    (a size too small for the protocol on a split gives that split's jobs the reason, noted in `skipped`)."""
    if not isinstance(config.train_sizes, list):  # (SweepConfig made it a list, or None)
        return [(None, [(r, f, h, split_file, reason) for r, f, h in labels])]
    out: list[tuple[TrainSize, list[tuple]]] = []
    for size in config.train_sizes:
        if reason:  # the dataset itself is too small: no split to cut
            out.append((size, [(r, f, h, None, reason) for r, f, h in labels]))
            continue
        cut = sized_splits(splits, split_file, ds.y, ds.task_type != "regression", size, suite.protocol.seed,
                           budget.inner_folds, store.run_dir)
        units = [(r, f, cut.splits[i].hash, cut.file, cut.reasons[i]) for i, (r, f, _) in enumerate(labels)]
        why = next((u[4] for u in units if u[4]), None)
        if why:
            skipped[f"{ds.name} at train size {size.label}"] = why
        out.append((size, units))
    return out
