"""`bench regress`: re-run a pinned, small, real sweep and compare every leaderboard number with a
committed baseline, within tolerances measured from seed variance.

The baseline file (results/baseline/smoke.json) holds the sweep's settings, and for every number
(per dataset x entry test score; per entry normalized scores, mean rank and Elo) its baseline value,
the std of that number over sweeps run with other base seeds, and the tolerance
    tolerance = max(K * std, FLOOR_ABS + FLOOR_REL * |value|).
Same code, same seed, same machine type -> the numbers are identical (tests/test_determinism.py);
the tolerance exists for what legitimately differs between machines and library patch releases
(floating-point summation order, BLAS kernels), which moves numbers by at most seed-noise size.
K = 4: with a handful of variance runs the std estimate is rough, and 4 std keeps the chance of a
false alarm over ~100 numbers small while a real change (a bug in a model, a leak, a new default)
moves numbers by far more. The floors let numbers that do not depend on the seed at all (dummy,
linear models) move by round-off only.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError

K = 4.0
FLOOR_ABS = 1e-9
FLOOR_REL = 1e-6
BASELINE = Path(__file__).resolve().parents[2] / "results" / "baseline" / "smoke.json"
# The pinned sweep (used by --update; `bench regress` re-runs what the baseline file says). Every setting
# that decides its numbers is spelled out here (a baseline file without the last three used these values),
# so a change of `bench run`'s or the demo suite's defaults never reaches it.
SMOKE_SWEEP: dict[str, Any] = {
    "suite": "smoke-suite.toml",  # relative to the baseline file
    "models": ["dummy", "linear", "random_forest", "xgboost", "lightgbm"],
    "trials": 3, "seeds": 2, "splits": 2, "seed": 0, "jobs": 2, "threads": 1,
    "tune_seconds": None, "sampler": "tpe", "inner_folds": 1,
}
VARIANCE_SEEDS = 3  # extra sweeps with base seeds seed+1 .. seed+3 measure the seed variance


@dataclass
class Drift:
    key: str
    baseline: float | None
    now: float | None
    tolerance: float

    @property
    def delta(self) -> float | None:
        return None if self.baseline is None or self.now is None else self.now - self.baseline


def run_pinned_sweep(sweep: dict, suite_path: Path, seed: int, out_dir: Path) -> dict[str, float]:
    """Run the pinned sweep with this base seed into out_dir (must not hold records) -> numbers."""
    from bench.analysis.analyze import analyze, numbers
    from bench.execution.sweep import SweepConfig, run_sweep

    if (out_dir / "records").exists():
        raise BenchError(f"{out_dir} already holds records; a regression run needs a fresh directory")
    pinned = {k: sweep.get(k, SMOKE_SWEEP[k]) for k in ("tune_seconds", "sampler", "inner_folds")}
    config = SweepConfig(suite=str(suite_path), models=list(sweep["models"]), trials=sweep["trials"],
                         seeds=sweep["seeds"], max_splits=sweep["splits"], seed=seed, workers=sweep["jobs"],
                         threads=sweep["threads"], device="cpu", out=out_dir, time_limit=3600.0, **pinned)
    result = run_sweep(config)
    return numbers(analyze(result.store, n_boot=20))


def compare(baseline: dict, now: dict[str, float]) -> list[Drift]:
    """Every baseline number that moved past its tolerance, appeared or disappeared."""
    drifts = []
    for key, entry in baseline["numbers"].items():
        value, tol = entry["value"], entry["tolerance"]
        if key not in now:
            drifts.append(Drift(key, value, None, tol))
        elif not abs(now[key] - value) <= tol:
            drifts.append(Drift(key, value, now[key], tol))
    drifts += [Drift(key, None, now[key], 0.0) for key in sorted(set(now) - set(baseline["numbers"]))]
    return drifts


def make_baseline(runs: list[dict[str, float]], sweep: dict, seeds: list[int]) -> dict:
    """runs[0] is the pinned seed's sweep (the baseline values); all runs give the std."""
    from bench.records.record import CORE_LIBRARIES, library_versions

    keys = sorted(runs[0])
    out = {}
    for key in keys:
        values = [r[key] for r in runs if key in r]
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        value = runs[0][key]
        out[key] = {"value": value, "std": std,
                    "tolerance": max(K * std, FLOOR_ABS + FLOOR_REL * abs(value))}
    return {"sweep": sweep, "k": K, "floor_abs": FLOOR_ABS, "floor_rel": FLOOR_REL, "variance_seeds": seeds,
            "versions": library_versions(CORE_LIBRARIES + ("xgboost", "lightgbm")),
            "created": time.strftime("%Y-%m-%d"), "numbers": out}


def version_changes(baseline: dict) -> dict[str, tuple[str, str]]:
    """Libraries whose installed version differs from the baseline's: the usual innocent cause of
    moved numbers that do not depend on the seed (their tolerance is round-off only)."""
    from bench.records.record import library_versions

    old = baseline.get("versions", {})
    now = library_versions([k for k in old if k not in ("python", "bench")])
    return {k: (old[k], now[k]) for k in old if k in now and now[k] != old[k]}


def load_baseline(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"no regression baseline at {path}; create it with `bench regress --update`") from None
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path} is not valid JSON: {exc}") from None
    for fld in ("sweep", "numbers"):
        if fld not in data:
            raise BenchError(f"{path}: the baseline has no '{fld}' field; recreate it with `bench regress --update`")
    return data


def regress(baseline_path: Path, out_dir: Path | None = None) -> tuple[dict, list[Drift], dict[str, float]]:
    baseline = load_baseline(baseline_path)
    sweep = baseline["sweep"]
    suite = baseline_path.parent / sweep["suite"]
    with _workdir(out_dir) as work:
        now = run_pinned_sweep(sweep, suite, sweep["seed"], work / "run")
    return baseline, compare(baseline, now), now


def update(baseline_path: Path, out_dir: Path | None = None, variance_seeds: int = VARIANCE_SEEDS,
           progress=print) -> dict:
    old = load_baseline(baseline_path) if baseline_path.exists() else None
    sweep = old["sweep"] if old else dict(SMOKE_SWEEP)
    suite = baseline_path.parent / sweep["suite"]
    seeds = [sweep["seed"] + i for i in range(variance_seeds + 1)]
    runs = []
    with _workdir(out_dir) as work:
        for seed in seeds:
            started = time.perf_counter()
            runs.append(run_pinned_sweep(sweep, suite, seed, work / f"seed-{seed}"))
            progress(f"sweep with base seed {seed}: {len(runs[-1])} numbers in {time.perf_counter() - started:.0f}s")
    data = make_baseline(runs, sweep, seeds)
    baseline_path.parent.mkdir(parents=True, exist_ok=True)
    baseline_path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    return data


@contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    """A fresh temporary directory (removed afterwards), or the given one (kept for inspection)."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-regress-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
