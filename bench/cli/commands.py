"""The CLI verbs' bodies (argument parsing lives in bench.cli)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import numpy as np
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.analysis import leaderboard, learning_curves
from bench.analysis.budget import budget_warnings, ensemble_notes
from bench.analysis.options import NormalizeMetric
from bench.cli.headline import print_headline
from bench.errors import BenchError, plural
from bench.records.integrity import check_run, require_whole
from bench.records.store import ResultStore
from bench.vocabulary import FAILURES


def _runner_options(args) -> dict:
    """SweepConfig's options for how a sweep runs (bench.cli.main._runner_options); --jobs defaults to the
    cores available (os.sched_getaffinity): with --threads 0 every job then runs on one thread, whatever the
    machine, so the numbers do not depend on its core count."""
    from bench.execution.resources import cpu_count

    workers = cpu_count() if args.jobs is None else args.jobs
    return dict(tune_seconds=args.tune_seconds, seed=args.seed, workers=workers, threads=args.threads,
                time_limit=args.time_limit, device=args.device, retry_failed=args.retry_failed, gpus=args.gpus,
                jobs_per_gpu=args.jobs_per_gpu, memory_limit_gb=args.memory_limit, storage=args.storage,
                executor=args.executor, ray_address=args.ray_address, sampler=args.sampler,
                inner_folds=args.inner_folds, pack=args.pack)


def sweep_config(args):
    """The SweepConfig of `bench run`'s options (bench.cli.main._sweep_options; `bench plan` takes the same)."""
    from bench.execution.sweep import SweepConfig

    return SweepConfig(suite=args.suite, models=args.models.split(","), out=args.out,
                       datasets=args.datasets.split(",") if args.datasets is not None else None, trials=args.trials,
                       max_splits=args.splits, seeds=args.seeds, train_sizes=args.train_sizes,
                       **_runner_options(args))


def cmd_run(args, console) -> int:
    config = sweep_config(args)
    store, summary = _sweep(config, args, console)
    # Records of earlier runs into this folder may be missing or broken: shown, not fatal, after a sweep.
    warnings = _print_leaderboard(store, console, allow_partial=True)
    if warnings and args.strict_budget:
        console.print("[red]--strict-budget: a declared budget was bent (see above)[/]")
        return 1
    return 0


def _sweep(config, args, console):
    """Prepare, print the plan, run with a progress bar or lines, print the outcome: (store, summary)."""
    from bench.execution.sweep import execute_sweep, prepare_sweep

    with console.status(f"loading suite '{config.suite}'"):
        plan = prepare_sweep(config)
    try:
        _print_plan_notes(plan, console)
    except BaseException:
        plan.close()
        raise
    jobs, store = plan.jobs, plan.store
    on_gpu = sum(j.device == "cuda" for j in jobs)
    console.print(f"suite [bold]{plan.suite.name}[/]: {plural(len(plan.loaded), 'dataset')}, "
                  f"{plural(len(jobs), 'job')} ({plural(len(config.models), 'model')}, {on_gpu} on GPU), "
                  f"trials={config.trials}, seeds={config.seeds}, "
                  f"executor={config.executor}, cpu workers={config.workers}, "
                  f"gpus={','.join(config.gpu_ids()) or 'none'}, out={plan.out}")

    if console.is_terminal or args.quiet:
        summary = _run_with_bar(plan, console, disable=args.quiet)
    else:  # logs and pipes (make, CI): one plain line per finished trial and job instead of a redrawn bar
        summary = execute_sweep(plan, _LineProgress(console, len(jobs), plan.eta()), _trial_printer(console)).summary
    console.print(f"{summary.total - summary.skipped_done} jobs run, {summary.skipped_done} already done, "
                  f"in {summary.seconds:.1f}s (worker start-up {summary.startup_seconds:.1f}s, "
                  f"first to last job {summary.steady_seconds:.1f}s); {_written(summary.statuses, store)}; "
                  f"logs: {store.run_dir / 'logs'}")
    _print_failures(summary.failures, console)
    for model, reason in summary.unavailable.items():
        console.print(f"[yellow]unavailable[/] {model}: {escape(reason)}", soft_wrap=True)
    return store, summary


def _written(statuses, store: ResultStore) -> str:
    """The records this run wrote, by status; a run that only resumed says what the folder holds."""
    if statuses:
        return "records written: " + ", ".join(f"{n} {status}" for status, n in
                                               sorted(statuses.items(), key=lambda kv: str(kv[0])))
    return f"no new records (the folder holds {plural(len(store.record_files()), 'record')} from before)"


def _trial_printer(console):
    """The heartbeat: one plain line per finished trial of a running job (bench.execution.heartbeat)."""
    def heartbeat(job, line: str) -> None:
        console.print(f"  {escape(line)}", soft_wrap=True, highlight=False)

    return heartbeat


def _eta_text(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.0f}s"


def _run_with_bar(plan, console, disable: bool):
    from bench.execution.sweep import execute_sweep

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[bad]} failed[/]"),
               TimeElapsedColumn(), TextColumn("eta {task.fields[eta]}")]
    with Progress(*columns, console=console, disable=disable) as bar:
        eta = plan.eta()
        task = bar.add_task("jobs", total=len(plan.jobs), ok=0, bad=0, eta="?")
        bar.update(task, completed=len(plan.jobs) - eta.pending())
        counts = {"ok": 0, "bad": 0}

        def progress(job, records):
            bad = [r["status"] for r in records if r["status"] in FAILURES]
            counts["bad" if bad else "ok"] += 1
            eta.done(job.model, records)
            bar.update(task, advance=1, description=f"{job.job_id}" + (f" [red]{bad[0]}[/]" if bad else ""),
                       eta=_eta_text(eta.seconds()), **counts)

        return execute_sweep(plan, progress, None if disable else _trial_printer(bar.console)).summary


class _LineProgress:
    """`[done/total] job statuses (ok, failed, elapsed, eta)`, one line per finished job; the ETA from
    per-model median job times (bench.execution.heartbeat.Eta)."""

    def __init__(self, console, total: int, eta):
        self.console, self.total, self.eta = console, total, eta
        self.done = total - eta.pending()
        self.ok = self.bad = 0
        self.started = time.monotonic()

    def __call__(self, job, records) -> None:
        statuses = sorted({str(r["status"]) for r in records})
        self.bad += any(r["status"] in FAILURES for r in records)
        self.ok += not any(r["status"] in FAILURES for r in records)
        self.done += 1
        self.eta.done(job.model, records)
        elapsed = time.monotonic() - self.started
        self.console.print(f"[{self.done}/{self.total}] {escape(job.job_id)} {'/'.join(statuses)} "
                           f"({self.ok} ok, {self.bad} failed; {elapsed:.0f}s, eta {_eta_text(self.eta.seconds())})",
                           soft_wrap=True, highlight=False)


def _print_plan_notes(plan, console) -> None:
    """What the user should know before the jobs run: filters, changed data, data warnings, skips."""
    for ex in plan.excluded:
        console.print(f"[dim]excluded {ex.name}: {ex.reason}[/]")
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    for name, warnings in plan.data_notes.items():
        console.print(f"[yellow]data {name}:[/] {escape('; '.join(warnings))}", soft_wrap=True)
    for name, reason in plan.skipped.items():
        console.print(f"[yellow]skipped {name}:[/] {escape(reason)}", soft_wrap=True)


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


def _run_store(run_dir: Path) -> ResultStore:
    store = ResultStore(run_dir)
    if not store.records_dir.is_dir():
        raise BenchError(f"{run_dir} has no records/ folder: is it a run directory of `bench run`?")
    store.config()  # a broken run.json is named here (BenchError), not met as a traceback later
    return store


def _checked(store: ResultStore, console, allow_partial: bool) -> None:
    """Refuse a run whose records are not whole (bench.records.integrity), or warn with --allow-partial."""
    check = require_whole(store, allow_partial)
    if not check.ok:
        console.print(f"[yellow]warning:[/] {store.run_dir} is not whole ({check.counts()}); using the "
                      f"{len(check.usable)} records that pass (`bench verify {store.run_dir}` lists the problems)",
                      soft_wrap=True)


def cmd_verify(args, console) -> int:
    store = _run_store(args.run_dir)
    check = check_run(store)
    for line in check.lines():
        console.print(escape(line), soft_wrap=True)
    verdict = "[red]not whole[/]" if not check.ok else "[yellow]partial check[/]" if check.partial else "[green]ok[/]"
    console.print(f"{verdict}: {check.found} record files, {check.planned} planned records, "
                  f"{len(check.usable)} usable; {check.counts()}")
    if check.partial:
        console.print(f"[yellow]{store.run_dir} has no plan.json (a run from an older version): the check is "
                      f"partial: records were checked against the schema and their own numbers only, and records "
                      f"missing from the run cannot be found (exit 1: wholeness is not confirmed)[/]", soft_wrap=True)
    return 0 if check.ok and not check.partial else 1


def cmd_leaderboard(args, console) -> int:
    _print_leaderboard(_run_store(args.run_dir), console, args.allow_partial, wide=args.wide,
                       metric=args.normalize_metric, train_size=args.train_size)
    return 0


def _print_leaderboard(store: ResultStore, console, allow_partial: bool = False, wide: bool = False,
                       metric: NormalizeMetric = NormalizeMetric.OBJECTIVE, train_size: str | None = None) -> list[str]:
    """Prints and writes the leaderboards (of one training-set size when the run has --train-sizes:
    `train_size`, else the largest; bench.analysis.learning_curves); returns the budget warnings."""
    _checked(store, console, allow_partial)
    records = store.load_all()
    every = store.frame(records)
    if every.empty:
        raise BenchError(f"no records in {store.records_dir}")
    frame, size, present = learning_curves.choose(every, train_size)
    if size is not None:
        console.print(escape(learning_curves.note(size, present)), soft_wrap=True)
    try:
        tables = leaderboard.all_tables(frame, metric)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    try:
        headline_paths, headline_md = print_headline(frame, store.run_dir, console)  # the answer first
    except OSError as exc:
        raise BenchError(f"cannot write the GBDT-vs-neural files into {store.run_dir}: {exc}") from None
    title = f"Leaderboard: {store.config().get('suite', store.run_dir.name)}" + \
        (f" (train size {size})" if size is not None else "")
    for name, table in tables.items():
        shown, rows = leaderboard.console_view(table, wide)
        console.print(_rich_table(shown, rows, f"{title} — {name}"))
    for line in textwrap.wrap(leaderboard.legend(shown, wide, metric), width=min(console.width, 100)):
        console.print(f"[dim]{escape(line)}[/]")
    left_out = ensemble_notes(learning_curves.records_at(records, size))
    for line in leaderboard.left_out_notes(left_out):
        console.print(escape(line), soft_wrap=True)
    try:
        store.write_table(every)
        paths = leaderboard.write(tables, store.run_dir, title, left_out, first=headline_md)
        paths += learning_curves.write_files(every, records, store.run_dir, metric)
    except OSError as exc:
        raise BenchError(f"cannot write the leaderboard files into {store.run_dir}: {exc}") from None
    console.print("written: " + ", ".join(str(p) for p in [*headline_paths, *paths]))
    warnings = budget_warnings(frame)
    if warnings:
        console.print("[yellow]Budget bent[/] (the tuned variant got less than the declared budget):")
        for line in warnings:
            console.print(f"  [yellow]![/] {escape(line)}", soft_wrap=True)
    return warnings


def _rich_table(columns: list[tuple[str, str]], rows: list[list[str]], title: str) -> Table:
    # No vertical rules and one space between columns: the default view fits 100 columns.
    out = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col, header in columns:
        out.add_column(header, justify="left" if col in ("entry", "model", "variant", "family") else "right",
                       no_wrap=True)
    for row in rows:
        out.add_row(*row)
    return out


def cmd_report(args, console) -> int:
    from bench.analysis.analyze import analyze
    from bench.analysis.report import write_report
    from bench.execution.lock import open_run_dir

    store = _run_store(args.run_dir)
    _checked(store, console, args.allow_partial)
    if args.out:
        open_run_dir(args.out)
    with console.status("computing statistics"):
        analysis = analyze(store, n_boot=args.bootstrap, seed=args.seed, anchor=args.anchor,
                           normalize_metric=args.normalize_metric, elo_weighting=args.elo_weighting,
                           train_size=args.train_size)
        store.write_table()  # the report links records.parquet
        paths = write_report(analysis, store.run_dir, args.out or store.run_dir, args.time_axis)
    shown = [("entry", "entry"), ("norm_score", "score"), ("norm_ci_low", "ci low"), ("norm_ci_high", "ci high"),
             ("norm_minmax", "minmax"), *([("seed_std", "±sd")] if analysis.seed_spread else []),
             ("mean_rank", "rank"), ("elo", "Elo"), ("wins", "wins"), ("datasets", "ds")]
    rows = [[leaderboard.cell(c, r[c]) for c, _ in shown] for _, r in analysis.summary.iterrows()]
    size = f" (train size {analysis.train_size})" if analysis.train_size is not None else ""
    console.print(_rich_table(shown, rows, f"Report: {analysis.config.get('suite', store.run_dir.name)}{size}"))
    console.print(f"[dim]score: normalized on the {escape(analysis.normalize_metric.label)}; "
                  f"Elo: {escape(analysis.elo_weighting.label)}; {escape(analysis.anchor_note)}[/]", soft_wrap=True)
    console.print("written: " + ", ".join(str(p) for p in paths[:2]) + f" and {len(paths) - 2} plots")
    return 0


def cmd_regress(args, console) -> int:
    from bench.workflows import regress

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
    if args.keep is None:  # the sweep ran in a temporary folder that is gone now
        console.print("the sweep's records are not kept: `bench regress --keep DIR` keeps them for inspection")
    console.print("[red]regress failed[/]: if the change is intended, run `make regress-baseline` and commit "
                  "results/baseline/")
    return 1


def _num(v) -> str:
    return "missing" if v is None else f"{v:.6g}"
