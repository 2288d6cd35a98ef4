"""`bench plan`: prints what bench.workflows.plan estimates (argument parsing lives in bench.cli.main)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from rich import box
from rich.markup import escape
from rich.table import Table

from bench.cli.commands import sweep_config
from bench.errors import BenchError


def cmd_plan(args, console) -> int:
    from bench.workflows import plan

    if bool(args.from_runs) == bool(args.calibrate):
        raise BenchError("bench plan needs the costs from one place: --from RUN [RUN ...] (measured runs) or "
                         "--calibrate (a short calibration run first)")
    config = sweep_config(args)
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as scratch:
        runs = list(args.from_runs or [])
        if args.calibrate:
            names = plan.calibration_datasets(config)
            what = "the defaults trial" if config.trials == 1 else f"{plan.CALIBRATION_TRIALS} trials (defaults first)"
            console.print(f"calibrating: {what} of {', '.join(config.models)} on one split of "
                          f"{', '.join(names)}", soft_wrap=True)
            with console.status("calibration run"):
                runs = plan.calibrate(config, Path(scratch) / "calibration")
        model = plan.cost_model(runs)
        cpu_slots, gpu_slots = plan.slots(config)
        if args.check is not None:
            _print_check(plan.check(args.check, model, cpu_slots, gpu_slots), args.check, console)
            return 0
        jobs, notes = plan.planned_jobs(config)
        _print_estimate(plan.estimate_sweep(jobs, model, cpu_slots, gpu_slots), model, notes, cpu_slots, gpu_slots,
                        console)
    return 0


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
    return table


def _hours(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 \
        else f"{seconds:.0f} s"


def _print_estimate(est, model, notes, cpu_slots: int, gpu_slots: int, console) -> None:
    table = _table("Plan: per model", ["model", "jobs", "trials", "job seconds", "costs from", "size exponent"])
    for r in est.per_model().itertuples():
        b = model.exponent(r.model)
        table.add_row(r.model, str(r.jobs), f"{r.trials:.0f}" if math.isfinite(r.trials) else "–",
                      _hours(r.seconds) if r.model not in est.unknown else "unknown",
                      f"{r.measured} measured, {r.scaled} scaled", f"{b:.2f}" if b is not None else "–")
    console.print(table)
    known = est.jobs.seconds.notna()
    console.print(f"[bold]{len(est.jobs)} jobs, {est.trials:.0f} trials[/]; estimated {est.cpu_hours:.2f} CPU-hours "
                  f"(core-hours held), {est.gpu_hours:.2f} GPU-hours, wall time {_hours(est.wall_seconds)} on "
                  f"{cpu_slots} CPU worker(s) and {gpu_slots} GPU worker(s) ({int(known.sum())} jobs with a cost)",
                  soft_wrap=True)
    sized = est.jobs.dropna(subset=["train_size"])
    if len(sized):
        per_size = sized.groupby("train_size", sort=False).agg(jobs=("model", "size"), seconds=("seconds", "sum"))
        console.print("per training-set size (--train-sizes): " + "; ".join(
            f"{size}: {int(r.jobs)} jobs, {_hours(r.seconds)}" for size, r in per_size.iterrows()), soft_wrap=True)
    for name, datasets in sorted(est.over_limit.items()):
        console.print(f"[yellow]over --time-limit[/] {name}: the defaults trial alone is expected to exceed it on "
                      f"{', '.join(datasets)}", soft_wrap=True)
    if est.unknown:
        console.print(f"[yellow]no measurement[/] for {', '.join(est.unknown)}: not counted (add a run that has them "
                      f"to --from, or use --calibrate)", soft_wrap=True)
    for note in [*notes, *est.notes]:
        console.print(f"[dim]{escape(note)}[/]", soft_wrap=True)


def _print_check(result, run_dir: Path, console) -> None:
    table = _table(f"Estimate against actual: {run_dir}", ["model", "jobs", "estimated", "actual", "ratio"])
    for r in result.per_model().itertuples():
        table.add_row(r.model, str(r.jobs), _hours(r.estimated), _hours(r.actual), f"{r.ratio:.2f}")
    console.print(table)
    wall = f"{_hours(result.actual_wall)}" if result.actual_wall is not None else "not recorded"
    ratio = (f" (ratio {result.estimated_wall / result.actual_wall:.2f})"
             if result.actual_wall else "")
    console.print(f"job seconds summed: estimate / actual = {result.total_ratio():.2f}; wall time: estimated "
                  f"{_hours(result.estimated_wall)}, actual {wall}{ratio} (first job start to last job end; "
                  f"worker start-up not estimated)", soft_wrap=True)
    pace = result.pace_ratio()
    if pace is not None:
        console.print(f"at the run's own pace ({result.paces[1]:.2f} against the sources' {result.paces[0]:.2f} CPU "
                      f"seconds per wall second per thread): estimate / actual = {result.total_ratio() * pace:.2f}",
                      soft_wrap=True)
    missing = result.jobs.seconds.isna() | result.jobs.actual.isna()
    if missing.any():
        console.print(f"[dim]{int(missing.sum())} jobs left out (no estimate, or no finished record)[/]")
    for note in result.notes:
        console.print(f"[dim]{escape(note)}[/]", soft_wrap=True)
