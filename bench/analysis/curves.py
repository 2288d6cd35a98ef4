"""Tuning curves: how good is the configuration chosen on validation after n trials?

For one job (dataset x split x model) the records keep every trial's state, validation value and test
score (the test score is computed for reporting only, see bench.tuning). Like Grinsztajn et al. 2022
(github.com/LeoGrin/tabular-benchmark, analyses/random_search_utils.R `random_search_no_variable`,
`default_first = T`): the defaults trial comes first, the other trials are shuffled (many seeded
permutations), and after n trials the curve takes the test score of the best trial so far by
validation (ties: the lower trial number, as the tuner breaks them), averaged over permutations.

The curves aggregate exactly like the leaderboard (bench.analysis.stats): per dataset the raw test
scores are averaged over splits first, then the dataset's normalization (with its truncation) maps the
mean, then the normalized values are averaged over datasets. For a trial a record chose (the defaults
trial of the default record, the best trial of the tuned record) the record's own test score is used,
the mean over model seeds the table shows; so the curve at n = 1 is the default entry's score and the
curve at the full budget is the tuned entry's (where every job ran it).

Failures count as in the table (bench.analysis.stats): a split where the model's tuned job failed
contributes its floor (the worst test score finished on that split) at every n, so the curve at n = 1
and at the full budget still equal the default and tuned entries' scores; a dataset where every tuned
job of the model failed contributes the table's failure value (the dataset's lowest normalized score,
at most 0). Curves are always on the objective (trials keep only its test score), whatever metric the
table's normalized scores use.

Only models with a tuned variant have curves. A job that stopped early (the tuning clock, or a single
finished trial: the defaults) keeps its last best-so-far value up to the longest job of its model
(flat, no extrapolation: those are the trials it got), and the legend says so (`curve_jobs`). With
Optuna's TPE the trial order is not exchangeable the way random search is, so the shuffled curve is an
estimate of "n trials of this search", not a replay.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bench.analysis.stats import METHODS, apply_scale, dataset_scales, dataset_scores, normalize, split_scores
from bench.vocabulary import Status, Variant

COMPLETE = "COMPLETE"  # Optuna's state name of a trial that returned a value


def job_trials(records: list[dict]) -> pd.DataFrame:
    """One row per trial of every tuned job whose trials carry test scores; `test_score` is the
    record's own (seed-mean) test score for the trials a record chose."""
    jobs: dict[tuple, list[dict]] = {}
    for r in records:
        jobs.setdefault((r["dataset"], r["model"], r["job_id"]), []).append(r)
    rows = []
    for (dataset, model, job_id), recs in sorted(jobs.items()):
        by_variant = {r.get("variant"): r for r in recs}
        if Variant.TUNED not in by_variant:
            continue  # a model that was not tuned has no curve
        ok = [by_variant[v] for v in (Variant.TUNED, Variant.DEFAULT)
              if by_variant.get(v, {}).get("status") == Status.OK and by_variant[v].get("trials")]
        if not ok or not any("test_score" in t for t in ok[0]["trials"]):
            continue  # nothing finished, or written before per-trial test scores existed
        chosen = {r.get("trial_number"): r.get("test_score") for r in ok}
        split = (ok[0].get("split") or {}).get("index")
        for t in ok[0]["trials"]:
            rows.append({"dataset": dataset, "model": model, "job_id": job_id, "split": split,
                         "direction": ok[0]["direction"],
                         "number": t["number"], "state": t["state"], "value": t.get("value"),
                         "test_score": chosen.get(t["number"], t.get("test_score")),
                         "is_default": bool(t.get("is_default"))})
    return pd.DataFrame(rows)


def best_so_far(order_values: np.ndarray, order_tests: np.ndarray, maximize: bool,
                order_numbers: np.ndarray | None = None) -> np.ndarray:
    """For each prefix of a trial order: the test score of the best validation value so far (NaN
    until a trial completes). Values are NaN for pruned / failed trials. A tie goes to the lower trial
    number, as the tuner breaks it (bench.tuning), so the full order ends on the tuned record's trial."""
    numbers = np.arange(len(order_values)) if order_numbers is None else order_numbers
    out = np.full(len(order_values), np.nan)
    best_val, best_number, best_test = None, None, np.nan
    for n, (v, t, k) in enumerate(zip(order_values, order_tests, numbers)):
        better = best_val is None or (v > best_val if maximize else v < best_val)
        if not np.isnan(v) and (better or (v == best_val and k < best_number)):
            best_val, best_number, best_test = v, k, t
        out[n] = best_test
    return out


def job_curve(trials: pd.DataFrame, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """The job's raw test score after 1..len(trials) trials, mean over shuffled orders."""
    trials = trials.sort_values("number")
    values = pd.to_numeric(trials.value, errors="coerce").where(trials.state == COMPLETE).to_numpy(float)
    tests = pd.to_numeric(trials.test_score, errors="coerce").to_numpy(float)
    numbers = trials.number.to_numpy()
    maximize = trials.direction.iloc[0] == "maximize"
    first = np.flatnonzero(trials.is_default.to_numpy())
    rest = np.setdiff1d(np.arange(len(trials)), first)
    if len(rest) < 2:  # nothing to shuffle: one order
        n_permutations = 1
    curves = []
    for _ in range(n_permutations):
        order = np.concatenate([first, rng.permutation(rest)])
        curves.append(best_so_far(values[order], tests[order], maximize, numbers[order]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a prefix where no order has completed a trial
        return np.nanmean(np.array(curves), axis=0)


def _extend_flat(curve: np.ndarray, length: int) -> np.ndarray:
    return np.concatenate([curve, np.full(length - len(curve), curve[-1])]) if len(curve) < length else curve


def tuning_curves(frame: pd.DataFrame, records: list[dict], n_permutations: int = 100, seed: int = 0,
                  method: str = "quantile") -> pd.DataFrame:
    """Long table: model, n_trials, norm_score (mean over datasets), datasets."""
    trials = job_trials(records)
    if trials.empty:
        return pd.DataFrame(columns=["model", "n_trials", "norm_score", "datasets"])
    scores = dataset_scores(frame)
    scales = dataset_scales(scores, method)
    rng = np.random.default_rng(seed)
    jobs = []
    for (dataset, model, job_id), t in trials.groupby(["dataset", "model", "job_id"], sort=True):
        if dataset in scales.index:
            jobs.append((dataset, model, t.direction.iloc[0], job_curve(t, n_permutations, rng)))
    jobs += _failed_jobs(frame, trials)
    longest: dict[str, int] = {}
    for _, model, _, curve in jobs:
        longest[model] = max(longest.get(model, 0), len(curve))
    rows = [{"dataset": dataset, "model": model, "direction": direction, "n_trials": n + 1, "score": v}
            for dataset, model, direction, curve in jobs
            for n, v in enumerate(_extend_flat(curve, longest[model]))]
    if not rows:
        return pd.DataFrame(columns=["model", "n_trials", "norm_score", "datasets"])
    # As the table: the mean over splits first, then the dataset's normalization (and truncation).
    per_dataset = (pd.DataFrame(rows).groupby(["model", "dataset", "direction", "n_trials"]).score.mean()
                   .reset_index())
    signed = np.where(per_dataset.direction == "maximize", per_dataset.score, -per_dataset.score)
    maps = scales.loc[per_dataset.dataset]
    per_dataset["norm"] = [apply_scale(s, low, span, bool(trunc)).item() for s, low, span, trunc
                           in zip(signed, maps["low"], maps["span"], maps["truncate"])]
    failed = _failed_datasets(scores, method, longest)
    covered = set(zip(per_dataset.model, per_dataset.dataset))
    failed = failed[[(m, d) not in covered for m, d in zip(failed.model, failed.dataset)]]
    per_dataset = pd.concat([per_dataset.dropna(subset=["norm"]), failed])
    return (per_dataset.groupby(["model", "n_trials"])
            .agg(norm_score=("norm", "mean"), datasets=("dataset", "nunique")).reset_index())


def _failed_jobs(frame: pd.DataFrame, trials: pd.DataFrame) -> list[tuple[str, str, str, np.ndarray]]:
    """A flat one-trial curve at the split's floor for each failed tuned job of a model with curves, on
    a dataset where the model finished some other split (as the table charges that split)."""
    splits = split_scores(frame)
    failed = splits[(splits.variant == Variant.TUNED) & (splits.state == Status.FAILED)
                    & splits.model.isin(set(trials.model)) & splits.filled.notna()]
    finished = splits[(splits.variant == Variant.TUNED) & (splits.state == Status.OK)]
    somewhere = set(zip(finished.dataset, finished.model))
    have = set(zip(trials.dataset, trials.model, trials.split))
    out = []
    for row in failed.itertuples():
        if (row.dataset, row.model) in somewhere and (row.dataset, row.model, row.split) not in have:
            score = row.filled if row.direction == "maximize" else -row.filled
            out.append((row.dataset, row.model, row.direction, np.array([score])))
    return out


def _failed_datasets(scores: pd.DataFrame, method: str, longest: dict[str, int]) -> pd.DataFrame:
    """The table's failure value at every n for each (model with curves, dataset) where every tuned job
    of the model failed (used where no job of the model there has trials to draw a curve from)."""
    normed = normalize(scores, method)
    failed = normed[(normed.variant == Variant.TUNED) & (normed.state == Status.FAILED)
                    & normed.model.isin(set(longest))]
    rows = [{"model": r.model, "dataset": r.dataset, "n_trials": n, "norm": r[METHODS[method]]}
            for _, r in failed.iterrows() for n in range(1, longest[r.model] + 1)]
    return pd.DataFrame(rows, columns=["model", "dataset", "n_trials", "norm"])


def curve_jobs(records: list[dict]) -> pd.DataFrame:
    """Per model with curves: jobs, the fewest and most trials a job completed, and how many jobs
    completed only the defaults trial (their curve is flat at the defaults value)."""
    trials = job_trials(records)
    if trials.empty:
        return pd.DataFrame(columns=["model", "jobs", "trials_min", "trials_max", "defaults_only"])
    done = trials.assign(completed=trials.state == COMPLETE).groupby(["model", "job_id"]).completed.sum()
    per_model = done.groupby("model")
    return pd.DataFrame({"jobs": per_model.size(), "trials_min": per_model.min(), "trials_max": per_model.max(),
                         "defaults_only": per_model.agg(lambda c: int((c <= 1).sum()))}).reset_index()
