"""Does inner cross-validation make tuning pay off more often? Holdout (inner_folds = 1) against inner
K-fold CV at an equal number of trials: how often the tuned variant beats the default on test.

    python scripts/inner_cv_study.py [--suite ../shared/data/suites/offline-20] [--datasets a,b]
        [--model xgboost] [--trials 10] [--splits 1] [--folds 5] [--jobs 1] [--out results/inner-cv]

Each protocol is a normal sweep (bench.execution.sweep.run_sweep) into its own run directory (they
resume); the comparison reads the records. Default datasets: the six smallest binary ones of offline-20.
A measurement, not a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The imports below need the repository root on sys.path (the script runs without an installed package).
from bench.execution.sweep import SweepConfig, run_sweep  # noqa: E402
from bench.records.schema import Status  # noqa: E402
from bench.records.store import ResultStore  # noqa: E402

SMALLEST_BINARY = "diabetes,credit-g,kr-vs-kp,churn,phoneme,mushroom"


def outcomes(store: ResultStore) -> dict[tuple[str, int], dict]:
    """(dataset, split) -> default / tuned test and validation scores, and the objective's direction."""
    out: dict[tuple[str, int], dict] = {}
    for r in store.load_all():
        if r["status"] != Status.OK:
            continue
        row = out.setdefault((r["dataset"], r["split"]["index"]), {"direction": r["direction"]})
        row[r["variant"]] = (r["test_score"], r["val_score"], r.get("trial_number"))
    return {k: v for k, v in out.items() if "default" in v and "tuned" in v}


def verdict(row: dict) -> str:
    (d_test, _, _), (t_test, _, t_trial) = row["default"], row["tuned"]
    if t_trial == 0 or t_test == d_test:
        return "tie"  # tuning kept the defaults
    better = t_test > d_test if row["direction"] == "maximize" else t_test < d_test
    return "tuned" if better else "default"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default=str(ROOT.parent / "shared" / "data" / "suites" / "offline-20"))
    p.add_argument("--datasets", default=SMALLEST_BINARY)
    p.add_argument("--model", default="xgboost")
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--splits", type=int, default=1)
    p.add_argument("--folds", type=int, default=5, help="K of the inner cross-validation protocol")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "inner-cv")
    args = p.parse_args()
    results = {}
    for k in (1, args.folds):
        config = SweepConfig(suite=args.suite, models=[args.model], datasets=args.datasets.split(","),
                             trials=args.trials, max_splits=args.splits, inner_folds=k, workers=args.jobs,
                             threads=args.threads, device="cpu", out=args.out / f"inner-{k}")
        result = run_sweep(config)
        print(f"inner_folds = {k}: {dict(result.summary.statuses)} in {result.summary.seconds:.0f} s", flush=True)
        results[k] = outcomes(result.store)
    keys = sorted(set(results[1]) & set(results[args.folds]))
    print(f"\n{args.model}, {args.trials} trials, test objective (default -> tuned), winner")
    print(f"{'dataset':<14} {'split':>5}  {'holdout (inner_folds = 1)':<34} {f'inner_folds = {args.folds}':<34}")
    counts = {k: {"tuned": 0, "default": 0, "tie": 0} for k in results}
    for key in keys:
        cells = []
        for k in (1, args.folds):
            row = results[k][key]
            v = verdict(row)
            counts[k][v] += 1
            cells.append(f"{row['default'][0]:.4f} -> {row['tuned'][0]:.4f} {v:<8}")
        print(f"{key[0]:<14} {key[1]:>5}  {cells[0]:<34} {cells[1]:<34}")
    for k in (1, args.folds):
        c = counts[k]
        print(f"inner_folds = {k}: tuned beats default on test in {c['tuned']} of {len(keys)}, "
              f"default beats tuned in {c['default']}, ties (tuning kept the defaults) {c['tie']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
