"""Per-dataset normalization, ranks, bootstrap intervals and slices of a run's results frame.

Everything here is a pure function of the frame `ResultStore.frame()` returns (one row per record).
An *entry* is one model and variant ("xgboost/tuned"). Per dataset, an entry's score is its mean test
objective over the splits it finished (each split's value is already the mean over model seeds).

Normalizations (per dataset, on the direction-aware score s, higher = better):
  min-max   (s - min) / (max - min) over the entries that finished; 1 = best, 0 = worst. Sensitive to
            the worst entry: a weak baseline (`dummy`) squeezes every useful model toward 1.
  quantile  Grinsztajn et al. 2022 ("Why do tree-based models still outperform deep learning on
            tabular data?", NeurIPS Datasets and Benchmarks), as in their code
            (github.com/LeoGrin/tabular-benchmark, analyses/random_search_utils.R `normalize_no_variable`
            and analyses/benchmark_plots_numerical.R): (s - q) / (max - q) where q is the 10% quantile
            of all scores on the dataset for classification and the 50% quantile (median) for
            regression, and regression values below 0 are truncated to 0 (`truncate_scores = T` for
            regression only). They take the quantile over every random-search iteration of every
            model; here it is over the leaderboard's entries. numpy's default (linear) quantile is
            R's default (type 7).
An entry that FAILED on a dataset counts there as the worst entry (its normalized score is the lowest
of that dataset, and at most 0); an entry SKIPPED for a declared capability limit is left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.leaderboard import per_dataset_scores

QUANTILE_FOR_TASK = {"binary": 0.1, "multiclass": 0.1, "regression": 0.5}
TRUNCATE_FOR_TASK = {"binary": False, "multiclass": False, "regression": True}
SIZE_BINS = [0, 1_000, 10_000, np.inf]
SIZE_LABELS = ["< 1k rows", "1k-10k rows", ">= 10k rows"]
CATEGORICAL_BINS = [-np.inf, 0.0, 0.5, np.inf]
CATEGORICAL_LABELS = ["no categorical", "<= 50% categorical", "> 50% categorical"]


def entry_label(model: str, variant: str) -> str:
    return f"{model}/{variant}"


def dataset_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, entry) that was not skipped: score, direction-aware `signed` score
    (-inf for failures), seed std, and the dataset's size / categorical share for slicing."""
    scores = per_dataset_scores(frame)
    scores = scores[scores.state != "skipped"].copy()
    ok = frame[frame.status == "ok"]
    if "test_score_std" not in ok:  # records written before multi-seed runs
        ok = ok.assign(test_score_std=np.nan)
    seed_std = (ok.groupby(["dataset", "model", "variant"])["test_score_std"]
                .agg(lambda s: pd.to_numeric(s, errors="coerce").mean()).rename("seed_std").reset_index())
    scores = scores.merge(seed_std, on=["dataset", "model", "variant"], how="left")
    present = [c for c in ("n_rows", "n_features", "n_categorical") if c in frame]
    meta = frame.groupby("dataset")[present].max() if present else pd.DataFrame(index=pd.Index([], name="dataset"))
    scores = scores.merge(meta.reset_index(), on="dataset", how="left")
    higher = scores.direction == "maximize"
    scores["signed"] = np.where(scores.state == "ok", np.where(higher, scores.score, -scores.score), -np.inf)
    scores["entry"] = [entry_label(m, v) for m, v in zip(scores.model, scores.variant)]
    # A dataset where nothing finished has no scale to normalize on.
    finished = scores.groupby("dataset")["state"].transform(lambda s: (s == "ok").any())
    return scores[finished].reset_index(drop=True)


def scale(ok_signed: np.ndarray, task_type: str, method: str) -> tuple[float, float, bool]:
    """The dataset's affine map norm = (signed - low) / span, and whether to truncate below 0."""
    if method not in ("minmax", "quantile"):
        raise ValueError(f"unknown normalization {method!r} (minmax or quantile)")
    best = float(np.max(ok_signed))
    low = float(np.min(ok_signed)) if method == "minmax" else float(np.quantile(ok_signed, QUANTILE_FOR_TASK[task_type]))
    return low, best - low, method == "quantile" and TRUNCATE_FOR_TASK[task_type]


def apply_scale(signed, low: float, span: float, truncate: bool) -> np.ndarray:
    signed = np.asarray(signed, dtype=float)
    if span > 0:
        norm = (signed - low) / span
    else:  # every finished entry (or the top share above the quantile) ties: best is 1, below is 0
        norm = np.where(np.isnan(signed), np.nan, np.where(signed >= low, 1.0, 0.0))
    return np.clip(norm, 0.0, None) if truncate else norm


def dataset_scales(scores: pd.DataFrame, method: str = "quantile") -> pd.DataFrame:
    """Per dataset: low, span, truncate (see `scale`)."""
    rows = {}
    for dataset, d in scores.groupby("dataset", sort=False):
        rows[dataset] = dict(zip(("low", "span", "truncate"),
                                 scale(d.signed[d.state == "ok"].to_numpy(float), d.task_type.iloc[0], method)))
    return pd.DataFrame.from_dict(rows, orient="index")


def normalize(scores: pd.DataFrame, method: str = "quantile") -> pd.DataFrame:
    """Adds `norm` (and `norm_seed_std`, the seed std on the same scale) per dataset."""
    parts = []
    for _, d in scores.groupby("dataset", sort=False):
        d = d.copy()
        low, span, truncate = scale(d.signed[d.state == "ok"].to_numpy(float), d.task_type.iloc[0], method)
        ok = (d.state == "ok").to_numpy()
        norm = apply_scale(np.where(ok, d.signed, np.nan), low, span, truncate)
        d["norm"] = np.where(ok, norm, min(0.0, float(np.nanmin(norm))))
        d["norm_seed_std"] = d.seed_std / span if span > 0 else 0.0
        parts.append(d)
    return pd.concat(parts, ignore_index=True) if parts else scores.assign(norm=[], norm_seed_std=[])


def add_ranks(scores: pd.DataFrame) -> pd.DataFrame:
    """Rank per dataset (1 = best, ties share the average rank; failures last) and wins."""
    out = scores.copy()
    by = out.groupby("dataset")["signed"]
    out["rank"] = by.rank(ascending=False, method="average")
    out["win"] = by.rank(ascending=False, method="min") == 1
    return out


def pivot(scores: pd.DataFrame, value: str) -> pd.DataFrame:
    """datasets x entries matrix of one column (NaN where an entry was skipped)."""
    return scores.pivot(index="dataset", columns="entry", values=value)


def bootstrap_mean_ci(matrix: pd.DataFrame, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> pd.DataFrame:
    """Per column: mean over datasets (rows) and a percentile CI from resampling datasets."""
    rng = np.random.default_rng(seed)
    values = matrix.to_numpy(dtype=float)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    with np.errstate(invalid="ignore"):
        means = np.nanmean(values[idx], axis=1) if len(values) else np.empty((n_boot, values.shape[1]))
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return pd.DataFrame({"mean": np.nanmean(values, axis=0) if len(values) else np.nan,
                         "ci_low": np.nanquantile(means, lo, axis=0),
                         "ci_high": np.nanquantile(means, hi, axis=0)}, index=matrix.columns)


def entry_summary(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per entry: quantile- and min-max-normalized means (with bootstrap CIs over datasets for the
    quantile one), normalized seed std, mean rank, wins, datasets, failures and median times."""
    base = add_ranks(dataset_scores(frame))
    quant, minmax = normalize(base, "quantile"), normalize(base, "minmax")
    ci = bootstrap_mean_ci(pivot(quant, "norm"), n_boot=n_boot, seed=seed)
    ok = frame[frame.status == "ok"].assign(total_seconds=lambda f: f.fit_seconds + f.predict_seconds)
    rows = []
    for entry, g in base.groupby("entry"):
        model, variant = g.model.iloc[0], g.variant.iloc[0]
        recs = ok[(ok.model == model) & (ok.variant == variant)]
        failed = frame[(frame.model == model) & (frame.variant == variant) & ~frame.status.isin(["ok", "skipped"])]
        rows.append({
            "entry": entry, "model": model, "variant": variant,
            "norm_score": ci.loc[entry, "mean"], "norm_ci_low": ci.loc[entry, "ci_low"],
            "norm_ci_high": ci.loc[entry, "ci_high"],
            "norm_minmax": _mean_norm(minmax, entry),
            "seed_std": quant[quant.entry == entry].norm_seed_std.mean(),
            "mean_rank": g["rank"].mean(), "wins": int(g.win.sum()),
            "datasets": int((g.state == "ok").sum()), "failed_datasets": int((g.state == "failed").sum()),
            "failed_records": len(failed),
            "median_seconds": recs.total_seconds.median() if len(recs) else np.nan,
        })
    return pd.DataFrame(rows).sort_values(["norm_score", "mean_rank"], ascending=[False, True],
                                          ignore_index=True)


def _mean_norm(normalized: pd.DataFrame, entry: str) -> float:
    return float(normalized[normalized.entry == entry].norm.mean())


def add_slices(scores: pd.DataFrame) -> pd.DataFrame:
    """Slice columns per dataset: task type, size bin (rows), categorical-feature share bin."""
    out = scores.copy()
    out["size"] = pd.cut(out.n_rows.astype(float), SIZE_BINS, labels=SIZE_LABELS, right=False).astype(str)
    share = (out.n_categorical.astype(float) / out.n_features.astype(float)
             if "n_categorical" in out else pd.Series(np.nan, index=out.index))
    out["categorical_share"] = pd.cut(share, CATEGORICAL_BINS, labels=CATEGORICAL_LABELS).astype(str)
    return out


def slice_table(frame: pd.DataFrame, by: str, method: str = "quantile") -> pd.DataFrame:
    """entries x slices: mean normalized score over the datasets in each slice (normalized over all
    entries of a dataset, as in the leaderboard); the column names carry the dataset count."""
    scores = add_slices(normalize(dataset_scores(frame), method))
    if by not in ("task_type", "size", "categorical_share"):
        raise ValueError(f"unknown slice {by!r} (task_type, size, categorical_share)")
    counts = scores.groupby(by).dataset.nunique()
    table = scores.groupby(["entry", by]).norm.mean().unstack(by)
    table.columns = [f"{c} (n={counts[c]})" for c in table.columns]
    return table


def time_vs_score(frame: pd.DataFrame, method: str = "quantile") -> pd.DataFrame:
    """Per entry: median (fit + predict) seconds per split and mean normalized score."""
    norm = normalize(dataset_scores(frame), method).groupby("entry").norm.mean()
    ok = frame[frame.status == "ok"]
    seconds = (ok.fit_seconds + ok.predict_seconds).groupby(
        [entry_label(m, v) for m, v in zip(ok.model, ok.variant)]).median()
    out = pd.DataFrame({"median_seconds": seconds, "norm_score": norm}).dropna()
    out.index.name = "entry"
    return out.reset_index()
