"""The CLI verbs' bodies (argument parsing lives in bench.cli)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.markup import escape
from rich.table import Table

from bench.analysis import leaderboard
from bench.errors import BenchError
from bench.records.schema import FAILURES
from bench.records.store import ResultStore


def cmd_run(args, console) -> int:
    from bench.execution.sweep import SweepConfig, execute_sweep, prepare_sweep

    config = SweepConfig(suite=args.suite, models=args.models.split(","), out=args.out,
                         datasets=args.datasets.split(",") if args.datasets else None, trials=args.trials,
                         tune_seconds=args.tune_seconds, seed=args.seed, workers=args.jobs,
                         threads=args.threads, time_limit=args.time_limit, max_splits=args.splits,
                         device=args.device, retry_failed=args.retry_failed, seeds=args.seeds, gpus=args.gpus,
                         jobs_per_gpu=args.jobs_per_gpu, memory_limit_gb=args.memory_limit,
                         storage=args.storage, executor=args.executor, ray_address=args.ray_address,
                         sampler=args.sampler, inner_folds=args.inner_folds)
    with console.status(f"loading suite '{args.suite}'"):
        plan = prepare_sweep(config)
    for ex in plan.excluded:
        console.print(f"[dim]excluded {ex.name}: {ex.reason}[/]")
    jobs, store = plan.jobs, plan.store
    on_gpu = sum(j.device == "cuda" for j in jobs)
    console.print(f"suite [bold]{plan.suite.name}[/]: {len(plan.loaded)} datasets, {len(jobs)} jobs "
                  f"({len(config.models)} models, {on_gpu} on GPU), trials={config.trials}, seeds={config.seeds}, "
                  f"executor={config.executor}, cpu workers={config.workers}, "
                  f"gpus={','.join(config.gpu_ids()) or 'none'}, out={plan.out}")

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[bad]} failed[/]"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=args.quiet) as bar:
        task = bar.add_task("jobs", total=len(jobs), ok=0, bad=0)
        bar.update(task, completed=plan.done_count())
        counts = {"ok": 0, "bad": 0}

        def progress(job, records):
            bad = [r["status"] for r in records if r["status"] in FAILURES]
            counts["bad" if bad else "ok"] += 1
            bar.update(task, advance=1, description=f"{job.job_id}" + (f" [red]{bad[0]}[/]" if bad else ""),
                       **counts)

        summary = execute_sweep(plan, progress).summary
    console.print(f"{summary.total - summary.skipped_done} jobs run, {summary.skipped_done} already done, "
                  f"in {summary.seconds:.1f}s (worker start-up {summary.startup_seconds:.1f}s, "
                  f"first to last job {summary.steady_seconds:.1f}s); records: {dict(summary.statuses)}; "
                  f"logs: {store.run_dir / 'logs'}")
    _print_failures(summary.failures, console)
    for model, reason in summary.unavailable.items():
        console.print(f"[yellow]unavailable[/] {model}: {escape(reason)}", soft_wrap=True)
    return _print_leaderboard(store, console)


def _print_failures(failures, console, limit: int = 30) -> None:
    if not failures:
        return
    table = Table(title=f"Failures ({len(failures)} records)", title_justify="left")
    for col in ("job", "status", "reason", "log"):
        table.add_column(col, overflow="fold")
    for job_id, status, message, log in failures[:limit]:
        table.add_row(job_id, status, message.splitlines()[0] if message else "", log)
    console.print(table)
    if len(failures) > limit:
        console.print(f"... and {len(failures) - limit} more failures (see the records)")


def cmd_leaderboard(args, console) -> int:
    store = ResultStore(args.run_dir)
    if not store.records_dir.exists():
        raise BenchError(f"{args.run_dir} has no records/ folder: is it a run directory of `bench run`?")
    return _print_leaderboard(store, console)


def _print_leaderboard(store: ResultStore, console) -> int:
    frame = store.frame()
    if frame.empty:
        raise BenchError(f"no records in {store.records_dir}")
    store.write_table()
    tables = leaderboard.all_tables(frame)
    title = f"Leaderboard: {store.config().get('suite', store.run_dir.name)}"
    for name, table in tables.items():
        console.print(_rich_table(table, f"{title} — {name}"))
    paths = leaderboard.write(tables, store.run_dir, title)
    console.print("written: " + ", ".join(str(p) for p in paths))
    return 0


HEADERS = {"norm_quantile": "norm. score (q)", "seed_std": "± seed std", "mean_norm_score": "norm. (min-max)", "mean_rank": "mean rank", "median_fit_s": "fit s (median)",
           "median_predict_s": "predict s (median)"}


def _rich_table(table: pd.DataFrame, title: str) -> Table:
    out = Table(title=title, title_justify="left")
    for col in table.columns:
        out.add_column(HEADERS.get(col, col), justify="left" if col in ("model", "variant", "family") else "right",
                       no_wrap=True)
    for row in table.itertuples(index=False):
        out.add_row(*[(f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row])
    return out


def cmd_suites(args, console) -> int:
    from bench.suites import list_suites, load_suite, materialize

    if args.action == "list":
        t = Table(title="Suites")
        for col in ("name", "datasets", "protocol", "description"):
            t.add_column(col)
        for s in list_suites():
            n = f"OpenML suite {s.openml_suite_id}" if s.openml_suite_id else str(len(s.entries))
            p = s.protocol
            t.add_row(s.name, n, "OpenML task splits" if p.use_task_splits and s.openml_suite_id
                      else f"{p.folds}-fold x{p.repeats}", s.description or "")
        console.print(t)
        return 0
    suite = load_suite(args.name)
    console.print(f"[bold]{suite.name}[/] ({suite.path})\n{suite.description or ''}")
    console.print(f"protocol: {suite.protocol}\nfilters: {suite.filters}")
    if not args.load:
        for e in suite.entries:
            console.print(f"  - {e.describe()}")
        return 0
    loaded, excluded = materialize(suite)
    t = Table()
    for col in ("dataset", "task", "rows", "features", "categorical", "classes", "hash", "openml"):
        t.add_column(col)
    for item in loaded:
        d = item.dataset
        ids = ", ".join(f"{k.removeprefix('openml_')}={v}" for k, v in d.source.items()
                        if k.startswith("openml_") and v is not None)
        t.add_row(d.name, d.task_type, str(d.n_rows), str(d.n_features), str(len(d.categorical)),
                  str(d.n_classes or ""), d.content_hash, ids)
    console.print(t)
    for ex in excluded:
        console.print(f"excluded {ex.name}: {ex.reason}")
    return 0


def cmd_models(args, console) -> int:
    from bench.adapters import get_adapter, load_adapters
    from bench.adapters.space import describe

    if args.action == "list":
        t = Table(title="Models")
        for col in ("name", "family", "task types", "gpu", "tuned params", "libraries", "available"):
            t.add_column(col)
        missing = {}
        for name, cls in sorted(load_adapters().items()):
            caps = cls.capabilities
            missing[name] = cls.unavailable_reason()
            t.add_row(name, cls.family, ", ".join(caps.task_types), caps.gpu, str(len(cls.search_space)),
                      ", ".join(cls.libraries), "no" if missing[name] else "yes")
        console.print(t)
        for name, reason in missing.items():
            if reason:
                console.print(f"[yellow]{name}[/] unavailable: {escape(reason)}", soft_wrap=True)
        return 0
    cls = get_adapter(args.name)
    console.print(f"[bold]{cls.name}[/] ({cls.family}) from {cls.__module__}")
    console.print(f"capabilities: {cls.capabilities}")
    reason = cls.unavailable_reason()
    console.print(f"unavailable here: {escape(reason)}" if reason else "available: yes", soft_wrap=True)
    console.print("defaults:", cls.defaults)
    for task_type in cls.capabilities.task_types:
        differ = {k: v for k, v in cls.defaults_for(task_type).items() if cls.defaults.get(k, object()) != v}
        if differ:
            console.print(f"defaults for {task_type} differ in:", differ)
    for name, text in describe(cls.search_space).items():
        console.print(f"  {name}: {text}")
    return 0


def cmd_fetch(args, console) -> int:
    from bench.suites import load_suite, materialize

    suite = load_suite(args.suite)
    with console.status(f"fetching suite '{suite.name}'"):
        loaded, excluded = materialize(suite, refresh=args.refresh)
    console.print(f"{len(loaded)} datasets cached, {len(excluded)} excluded by filters")
    return 0


def cmd_report(args, console) -> int:
    from bench.analysis.analyze import analyze
    from bench.analysis.report import write_report

    store = ResultStore(args.run_dir)
    if not store.records_dir.exists():
        raise BenchError(f"{args.run_dir} has no records/ folder: is it a run directory of `bench run`?")
    with console.status("computing statistics"):
        analysis = analyze(store, n_boot=args.bootstrap, seed=args.seed, anchor=args.anchor)
        store.write_table()  # the report links records.parquet
        paths = write_report(analysis, store.run_dir, args.out or store.run_dir)
    console.print(_rich_table(analysis.summary[["entry", "norm_score", "norm_ci_low", "norm_ci_high", "norm_minmax",
                                                "seed_std", "mean_rank", "elo", "wins", "datasets"]],
                              f"Report: {analysis.config.get('suite', store.run_dir.name)}"))
    console.print("written: " + ", ".join(str(p) for p in paths[:2]) + f" and {len(paths) - 2} plots")
    return 0


def cmd_regress(args, console) -> int:
    from bench.analysis import regress

    if args.update:
        data = regress.update(args.baseline, args.keep, progress=console.print)
        console.print(f"baseline written: {args.baseline} ({len(data['numbers'])} numbers, "
                      f"tolerance = max({data['k']:g} x seed std, floor))")
        return 0
    baseline, drifts, now = regress.regress(args.baseline, args.keep)
    if not drifts:
        console.print(f"[green]regress: all {len(baseline['numbers'])} numbers within tolerance[/] of {args.baseline}")
        return 0
    table = Table(title=f"{len(drifts)} of {len(baseline['numbers'])} numbers moved (baseline {args.baseline})",
                  title_justify="left")
    for col in ("what", "baseline", "now", "delta", "tolerance", "delta / tolerance"):
        table.add_column(col, justify="left" if col == "what" else "right", no_wrap=col == "what")
    for d in sorted(drifts, key=lambda d: -abs(d.delta or np.inf) / max(d.tolerance, 1e-300)):
        ratio = f"{abs(d.delta) / d.tolerance:.1f}" if d.delta is not None and d.tolerance > 0 else "–"
        table.add_row(d.key, _num(d.baseline), _num(d.now), _num(d.delta), _num(d.tolerance), ratio)
    console.print(table)
    changed = regress.version_changes(baseline)
    if changed:
        console.print("library versions differ from the baseline's: " +
                      ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
    console.print("[red]regress failed[/]: if the change is intended, run `make regress-baseline` and commit "
                  "results/baseline/")
    return 1


def _num(v) -> str:
    return "missing" if v is None else f"{v:.6g}"
