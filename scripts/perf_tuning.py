"""TPE + median pruning against random search (no pruning), the sampler of Grinsztajn et al. 2022 and
TabArena: the wall time each needs to reach random search's best validation score after N trials.

For every model x dataset both samplers tune the same split with the same seed and N trials each
(`bench.tuning.tune`, defaults first, as in a real job). Random search's best validation value after
N trials is the target; its time is when it got there, TPE's time is when its best-so-far first
matched it (within its own N trials; otherwise "not reached", counted as an infinite ratio in the
median). Printed per model x dataset: target, both times, the ratio TPE / random, and TPE's pruned
trials; then the median ratio. Goal: TPE + pruning <= 0.5x random search's time.

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

import optuna  # noqa: E402

from bench.adapters import get_adapter  # noqa: E402
from bench.adapters.base import TaskInfo  # noqa: E402
from bench.seeding import job_seed  # noqa: E402
from bench.splits import make_splits  # noqa: E402
from bench.suites import load_suite, materialize  # noqa: E402
from bench.tuning import Budget, Parts, tune  # noqa: E402

DEFAULT_DATASETS = "titanic,penguins,diabetes"  # binary, multiclass, regression of the embedded demo suite


def load_parts(suite_name: str, names: list[str]) -> dict[str, tuple[TaskInfo, Parts]]:
    suite = load_suite(suite_name)
    loaded, _ = materialize(suite)
    out = {}
    for item in loaded:
        ds = item.dataset
        if ds.name not in names:
            continue
        split = make_splits(ds, suite.protocol, item.task_splits)[0][0]
        take = lambda rows: ds.X.iloc[rows].reset_index(drop=True)  # noqa: E731
        out[ds.name] = (TaskInfo(ds.task_type, ds.n_classes),
                        Parts(take(split.train), ds.y[split.train], take(split.val), ds.y[split.val],
                              take(split.test), ds.y[split.test]))
    missing = [n for n in names if n not in out]
    if missing:
        sys.exit(f"suite {suite_name} has no dataset(s) {', '.join(missing)}")
    return {n: out[n] for n in names}


def trajectory(model: str, task: TaskInfo, parts: Parts, sampler: str, trials: int, seed: int, threads: int,
               folder: Path) -> tuple[list[tuple[float, float]], int, float]:
    """[(seconds since the study started, best validation value so far)] at each completed trial,
    the number of pruned trials, and the study's total seconds."""
    storage = f"sqlite:///{folder / f'{model}-{sampler}.db'}"
    tune(get_adapter(model), task, parts, Budget(trials), seed=seed, threads=threads, device="cpu",
         storage=storage, study_name="perf", sampler=sampler)
    study = optuna.load_study(study_name="perf", storage=storage)
    start = min(t.datetime_start for t in study.trials if t.datetime_start)
    sign = 1.0 if task.objective.direction == "maximize" else -1.0
    points, best = [], -math.inf
    for t in sorted((t for t in study.trials if t.datetime_complete), key=lambda t: t.datetime_complete):
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
            best = max(best, sign * t.value)
        points.append(((t.datetime_complete - start).total_seconds(), sign * best))
    end = max(t.datetime_complete for t in study.trials if t.datetime_complete)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return points, pruned, (end - start).total_seconds()


def time_to_reach(points, target: float, direction: str) -> float | None:
    sign = 1.0 if direction == "maximize" else -1.0
    for seconds, best in points:
        if math.isfinite(best) and sign * best >= sign * target - 1e-12:
            return seconds
    return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=20, help="N: trials per study, incl. the defaults trial")
    p.add_argument("--models", default="xgboost,lightgbm,mlp")
    p.add_argument("--suite", default="demo")
    p.add_argument("--datasets", default=DEFAULT_DATASETS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    data = load_parts(args.suite, args.datasets.split(","))
    seed = job_seed(args.seed, 0)
    rows, ratios, started = [], [], time.perf_counter()
    print(f"TPE + median pruning vs random search (no pruning), N = {args.trials} trials each, seed {args.seed}, "
          f"{args.threads} threads", flush=True)
    header = (f"{'model':<10} {'dataset':<10} {'objective':<9} {'random best':>12} {'random s':>9} "
              f"{'TPE s':>9} {'ratio':>7} {'TPE pruned':>10} {'TPE total s':>11} {'random total s':>14}")
    print(header, flush=True)
    for model in args.models.split(","):
        for name, (task, parts) in data.items():
            with tempfile.TemporaryDirectory() as tmp:
                rand, _, rand_total = trajectory(model, task, parts, "random", args.trials, seed, args.threads, Path(tmp))
                tpe, pruned, tpe_total = trajectory(model, task, parts, "tpe", args.trials, seed, args.threads, Path(tmp))
            target = rand[-1][1]
            t_rand = time_to_reach(rand, target, task.objective.direction)
            t_tpe = time_to_reach(tpe, target, task.objective.direction)
            ratio = t_tpe / t_rand if t_tpe is not None and t_rand else math.inf
            ratios.append(ratio)
            shown = f"{ratio:7.2f}" if math.isfinite(ratio) else "    n/r"
            tpe_s = f"{t_tpe:9.1f}" if t_tpe is not None else f">{tpe_total:8.1f}"
            row = (f"{model:<10} {name:<10} {task.objective.metric:<9} {target:12.5f} {t_rand:9.1f} {tpe_s} {shown} "
                   f"{pruned:>10} {tpe_total:11.1f} {rand_total:14.1f}")
            rows.append(row)
            print(row, flush=True)
    median = statistics.median(ratios)
    print(f"median ratio TPE/random: {median:.2f} (goal <= 0.50; n/r = TPE did not reach random's best "
          f"within N trials, counted as infinite) -- {time.perf_counter() - started:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
