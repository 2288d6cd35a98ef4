"""Tuning curves: how good is the configuration chosen on validation after n trials?

For one job (dataset x split x model) the records keep every trial's state, validation value and test
score (the test score is computed for reporting only, see bench.tuning). Like Grinsztajn et al. 2022
(github.com/LeoGrin/tabular-benchmark, analyses/random_search_utils.R `random_search_no_variable`,
`default_first = T`): the defaults trial comes first, the other trials are shuffled (many seeded
permutations), and after n trials the curve takes the test score of the best trial so far by
validation (ties: the earlier one). Curves are averaged over permutations, then normalized with the
dataset's leaderboard normalization (bench.analysis.stats, so 1 = the best entry's test score), averaged over
splits and then over datasets. A model's curve stops at the smallest trial count any of its jobs
reached (no extrapolation). With Optuna's TPE the trial order is not exchangeable the way random
search is, so the shuffled curve is an estimate of "n trials of this search", not a replay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.stats import apply_scale, dataset_scales, dataset_scores


def job_trials(records: list[dict]) -> pd.DataFrame:
    """One row per trial of every job whose trials carry test scores."""
    rows, seen = [], set()
    for r in sorted(records, key=lambda r: r.get("variant") != "tuned"):  # tuned first, same trials
        key = (r["dataset"], r["model"], r["job_id"])
        trials = r.get("trials") or []
        if r.get("status") != "ok" or key in seen or len(trials) < 2:
            continue
        if not any("test_score" in t for t in trials):
            continue  # written before per-trial test scores existed
        seen.add(key)
        for t in trials:
            rows.append({"dataset": r["dataset"], "model": r["model"], "job_id": r["job_id"],
                         "direction": r["direction"], "number": t["number"], "state": t["state"],
                         "value": t.get("value"), "test_score": t.get("test_score"),
                         "is_default": bool(t.get("is_default"))})
    return pd.DataFrame(rows)


def best_so_far(order_values: np.ndarray, order_tests: np.ndarray, maximize: bool) -> np.ndarray:
    """For each prefix of a trial order: the test score of the best validation value so far (NaN
    until a trial completes). Values are NaN for pruned / failed trials."""
    out = np.full(len(order_values), np.nan)
    best_val, best_test = None, np.nan
    for n, (v, t) in enumerate(zip(order_values, order_tests)):
        if not np.isnan(v) and (best_val is None or (v > best_val if maximize else v < best_val)):
            best_val, best_test = v, t
        out[n] = best_test
    return out


def job_curve(trials: pd.DataFrame, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    trials = trials.sort_values("number")
    values = pd.to_numeric(trials.value, errors="coerce").where(trials.state == "COMPLETE").to_numpy(float)
    tests = pd.to_numeric(trials.test_score, errors="coerce").to_numpy(float)
    maximize = trials.direction.iloc[0] == "maximize"
    first = np.flatnonzero(trials.is_default.to_numpy())
    rest = np.setdiff1d(np.arange(len(trials)), first)
    curves = []
    for _ in range(n_permutations):
        order = np.concatenate([first, rng.permutation(rest)])
        curves.append(best_so_far(values[order], tests[order], maximize))
    with np.errstate(all="ignore"):
        return np.nanmean(np.array(curves), axis=0)


def tuning_curves(frame: pd.DataFrame, records: list[dict], n_permutations: int = 100, seed: int = 0,
                  method: str = "quantile") -> pd.DataFrame:
    """Long table: model, n_trials, norm_score (mean over datasets), datasets."""
    trials = job_trials(records)
    if trials.empty:
        return pd.DataFrame(columns=["model", "n_trials", "norm_score", "datasets"])
    scales = dataset_scales(dataset_scores(frame), method)
    rng = np.random.default_rng(seed)
    rows = []
    for (dataset, model, job_id), t in trials.groupby(["dataset", "model", "job_id"], sort=True):
        if dataset not in scales.index:
            continue
        curve = job_curve(t, n_permutations, rng)
        low, span, truncate = scales.loc[dataset, ["low", "span", "truncate"]]
        signed = curve if t.direction.iloc[0] == "maximize" else -curve
        norm = apply_scale(signed, low, span, bool(truncate))
        rows += [{"dataset": dataset, "model": model, "job_id": job_id, "n_trials": n + 1, "norm": v}
                 for n, v in enumerate(norm)]
    long = pd.DataFrame(rows)
    reached = long.groupby(["model", "job_id"]).n_trials.max().groupby("model").min()
    long = long[long.n_trials <= long.model.map(reached)]
    per_dataset = long.groupby(["model", "dataset", "n_trials"]).norm.mean().reset_index()
    return (per_dataset.groupby(["model", "n_trials"])
            .agg(norm_score=("norm", "mean"), datasets=("dataset", "nunique")).reset_index())
