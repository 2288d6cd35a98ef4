"""TPE + median pruning against random search (no pruning), the sampler of Grinsztajn et al. 2022 and
TabArena: the wall time each needs to reach random search's best validation score after N trials.

For every model x dataset both samplers tune the same split with the same seed and N trials each
(`bench.tuning.tune`, defaults first, as in a real job). Random search's best validation value after
N trials is the target; its time is when it got there, TPE's time is when its best-so-far first
matched it (within its own N trials; otherwise "not reached", counted as an infinite ratio in the
median). Printed per model x dataset: the target and the trial that reached it, both times and the
ratio TPE / random, in wall seconds and in the trials' process CPU seconds (robust to other load on
the machine), TPE's trial that matched it and its pruned trials; then the median ratios.
Goal: TPE + pruning <= 0.5x random search's time. TPE's first 10 trials are random search's own
draws (bench.tuning.samplers), so for N <= 10 this measures pruning alone.

    python scripts/perf_tuning.py [--trials N] [--models ...] [--suite demo --datasets ...]

A benchmark, not a test: the numbers depend on the machine and its load (run it niced on a quiet machine).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna
from perf_data import first_split_parts  # (scripts/: the running script's folder is on sys.path)

from bench.adapters import TaskInfo, get_adapter
from bench.seeding import job_seed
from bench.tuning import Budget, Parts, tune

DEFAULT_DATASETS = "titanic,penguins,diabetes"  # binary, multiclass, regression of the embedded demo suite


def trajectory(model: str, task: TaskInfo, parts: Parts, sampler: str, trials: int, seed: int, threads: int,
               folder: Path) -> tuple[list[tuple[float, float, float, int]], int, float, float]:
    """[(wall seconds since the study started, CPU seconds of the trials so far, best validation value
    so far, trial number)] at each finished trial; the pruned trials; total wall and CPU seconds."""
    storage = f"sqlite:///{folder / f'{model}-{sampler}.db'}"
    tune(get_adapter(model), task, parts, Budget(trials, sampler=sampler), seed=seed, threads=threads, device="cpu",
         storage=storage, study_name="perf")
    study = optuna.load_study(study_name="perf", storage=storage)
    start = min(t.datetime_start for t in study.trials if t.datetime_start)
    sign = 1.0 if task.objective.direction == "maximize" else -1.0
    points, best, cpu = [], -math.inf, 0.0
    for t in sorted((t for t in study.trials if t.datetime_complete), key=lambda t: t.datetime_complete):
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
            best = max(best, sign * t.value)
        cpu += t.user_attrs.get("cpu_seconds") or 0.0
        points.append(((t.datetime_complete - start).total_seconds(), cpu, sign * best, t.number))
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return points, pruned, points[-1][0], points[-1][1]


def time_to_reach(points, target: float, direction: str) -> tuple[float, float, int] | None:
    """(wall seconds, CPU seconds, trial number) when the best-so-far first matched target; None if never."""
    sign = 1.0 if direction == "maximize" else -1.0
    for wall, cpu, best, number in points:
        if math.isfinite(best) and sign * best >= sign * target - 1e-12:
            return wall, cpu, number
    return None


def _ratio(tpe: float | None, rand: float) -> float:
    return tpe / rand if tpe is not None and rand > 0 else math.inf


def _fmt(value: float | None, total: float, width: int = 8) -> str:
    return f"{value:{width}.1f}" if value is not None else f">{total:{width - 1}.1f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=15, help="N: trials per study, incl. the defaults trial")
    p.add_argument("--models", default="xgboost,lightgbm,mlp")
    p.add_argument("--suite", default="demo")
    p.add_argument("--datasets", default=DEFAULT_DATASETS)
    p.add_argument("--seed", type=int, default=0)
    # One thread: OpenMP workers spin while they wait, so on a busy machine multi-threaded CPU time
    # measures the contention more than the work.
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    data = first_split_parts(args.suite, args.datasets.split(","))
    seed = job_seed(args.seed, 0)
    wall_ratios, cpu_ratios, started = [], [], time.perf_counter()
    print(f"TPE + median pruning vs random search (no pruning), N = {args.trials} trials each, seed {args.seed}, "
          f"{args.threads} threads. Time to reach random search's best validation value after N trials "
          f"(wall: since the study began; CPU: the trials' process CPU seconds, robust to machine load).",
          flush=True)
    print(f"{'model':<9} {'dataset':<9} {'objective':<9} {'random best':>11} {'trial':>5} | {'random':>8} "
          f"{'TPE':>8} {'ratio':>6} | {'rnd CPU':>8} {'TPE CPU':>8} {'ratio':>6} | {'TPE trial':>9} "
          f"{'pruned':>6} | {'total rnd':>9} {'total TPE':>9}", flush=True)
    for model in args.models.split(","):
        for name, (task, parts) in data.items():
            # Warm-up (not timed): the library import and first fit would otherwise be charged to
            # whichever sampler runs first.
            tune(get_adapter(model), task, parts, Budget(1), seed=seed, threads=args.threads, device="cpu",
                 storage=None, study_name="warm-up")
            with tempfile.TemporaryDirectory() as tmp:
                rand, _, rand_wall, _ = trajectory(model, task, parts, "random", args.trials, seed, args.threads,
                                                   Path(tmp))
                tpe, pruned, tpe_wall, tpe_cpu = trajectory(model, task, parts, "tpe", args.trials, seed,
                                                            args.threads, Path(tmp))
            target = rand[-1][2]  # random search's best after N trials
            r_wall, r_cpu, r_trial = time_to_reach(rand, target, task.objective.direction)
            reached = time_to_reach(tpe, target, task.objective.direction)
            t_wall, t_cpu, t_trial = reached or (None, None, "-")
            wall_ratios.append(_ratio(t_wall, r_wall))
            cpu_ratios.append(_ratio(t_cpu, r_cpu))
            shown = [f"{r:6.2f}" if math.isfinite(r) else "   n/r" for r in (wall_ratios[-1], cpu_ratios[-1])]
            print(f"{model:<9} {name:<9} {task.objective.metric:<9} {target:11.5f} {r_trial:>5} | {r_wall:8.1f} "
                  f"{_fmt(t_wall, tpe_wall)} {shown[0]} | {r_cpu:8.1f} {_fmt(t_cpu, tpe_cpu)} {shown[1]} | "
                  f"{t_trial:>9} {pruned:>6} | {rand_wall:9.1f} {tpe_wall:9.1f}", flush=True)
    print(f"median ratio TPE/random: wall {statistics.median(wall_ratios):.2f}, "
          f"CPU {statistics.median(cpu_ratios):.2f} "
          f"(goal <= 0.50; n/r = TPE did not reach random's best within N trials, counted as infinite) -- "
          f"{time.perf_counter() - started:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
