"""The one statistics path of a run: per-split and per-dataset scores, both normalizations, ranks,
wins and the per-entry summary that the leaderboard, the report, Elo, the tuning curves and
`bench regress` all read. Everything is a pure function of the frame `ResultStore.frame()` returns
(one row per record); the presenters only format what is computed here.

One name per quantity:
  entry          one model and variant, "xgboost/tuned"
  score          per split: the test objective (binary ROC AUC, multiclass log loss, regression RMSE;
                 already the mean over model seeds); per dataset and entry: the mean over every split
                 the entry ran there, a failed split counted at that split's floor (below)
  signed         score, direction-aware (higher = better); -inf where the entry failed
  norm_score     quantile normalization of score (below); per entry its mean over datasets
  norm_minmax    min-max normalization of score; per entry its mean over datasets
  rank / win     per dataset (1 = best, ties share the average rank); per entry mean_rank / wins
  score_seed_std the std over model seeds of a split's test score (objective units), mean over splits
  norm_seed_std  score_seed_std on the norm_score scale; per entry its mean over datasets is seed_std

Which records count (bench.records.schema), per split, the same in every view:
  - a record that was NOT_RUN (skipped for a declared capability limit, or unavailable in this
    environment) says nothing about the model and is left out of every statistic, never a loss;
  - a FAILURE is the worst result on its split. Per split, its FLOOR is the worst test score any
    entry finished on that split; an entry that failed a split gets the floor there, and its dataset
    score is the mean over all the splits it ran (a split nobody finished has no floor and is left
    out for everyone). So a model that times out on a dataset's hardest split is charged the worst
    result of that split, never the mean of its easy splits (which made it win datasets it failed
    on). In Elo and the win rates the same failure loses every battle of its split. This is the
    AutoML Benchmark's rule (Gijsbers et al. 2024, JMLR 25: a failed fold is imputed with the constant
    predictor's result on that fold) with the worst entry of the split in place of the constant
    predictor, so no extra model has to run. On a split only one entry finished, the failure equals
    that entry there (the table cannot go below the only result; its battle still counts as lost).
  - an entry that failed EVERY split of a dataset is the worst on that dataset: signed -inf, last
    rank, normalized score the dataset's lowest and at most 0.

Normalizations (per dataset, on signed), both computed on NORMALIZE_METRIC:
  min-max   (s - min) / (max - min) over the entries that finished; 1 = best, 0 = worst. Sensitive to
            the worst entry: a weak baseline (`dummy`) squeezes every useful model toward 1.
  quantile  the rule of Grinsztajn et al. 2022 ("Why do tree-based models still outperform deep
            learning on tabular data?", NeurIPS Datasets and Benchmarks), as in their code
            (github.com/LeoGrin/tabular-benchmark, analyses/random_search_utils.R `normalize_no_variable`
            and analyses/benchmark_plots_numerical.R): (s - q) / (max - q) where q is the 10% quantile
            of all scores on the dataset for classification and the 50% quantile (median) for
            regression, and regression values below 0 are truncated to 0 (`truncate_scores = T` for
            regression only). They take the quantile over every random-search iteration of every
            model; here it is over the leaderboard's entries. numpy's default (linear) quantile is
            R's default (type 7). The truncation applies to the per-dataset mean over splits, never
            to single splits (the tuning curves follow the same rule).
The metric normalized (NormalizeMetric): `objective` (the default) normalizes the harness's objective
(ROC AUC / log loss / RMSE), so its numbers are the harness's own: the rule is Grinsztajn et al.'s,
the metric is not. `paper` normalizes what the paper normalizes, test accuracy for classification and
test R² for regression (both higher = better), with the same quantile and truncation rules, for
numbers comparable with the paper's. Only the normalized scores follow the choice; score, ranks, wins,
Elo, critical difference and tuning curves stay on the objective (trials keep only the objective's test
score), and seed_std is not computed under `paper` (records keep only the objective's seed spread).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bench.analysis.budget import entry_budget
from bench.analysis.options import NormalizeMetric
from bench.vocabulary import FAILURES, NOT_RUN, Status

QUANTILE_FOR_TASK = {"binary": 0.1, "multiclass": 0.1, "regression": 0.5}
TRUNCATE_FOR_TASK = {"binary": False, "multiclass": False, "regression": True}
METHODS = {"quantile": "norm_score", "minmax": "norm_minmax"}  # normalization -> its column
SIZE_BINS = [0, 1_000, 10_000, np.inf]
SIZE_LABELS = ["< 1k rows", "1k-10k rows", ">= 10k rows"]
CATEGORICAL_BINS = [-np.inf, 0.0, 0.5, np.inf]
CATEGORICAL_LABELS = ["no categorical", "<= 50% categorical", "> 50% categorical"]
ENTRY_KEYS = ["dataset", "task_type", "model", "variant", "entry"]


PAPER_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "r2"}  # record `test` keys


def entry_label(model: str, variant: str) -> str:
    return f"{model}/{variant}"


def per_dataset_value(frame: pd.DataFrame, column: str) -> pd.Series:
    """A dataset-level value (task type, direction) taken from any record that has it: failure
    records written before the data loaded may lack it."""
    return frame.groupby("dataset")[column].transform(lambda s: s.dropna().iloc[0] if s.notna().any() else None)


def _metric_values(rows: pd.DataFrame, ok: np.ndarray, metric: NormalizeMetric) -> tuple[pd.Series, np.ndarray]:
    """(score per row, whether higher is better per row) for the chosen metric; NaN for failures."""
    if metric is NormalizeMetric.OBJECTIVE:
        return pd.to_numeric(rows.test_score, errors="coerce").where(ok), (rows.direction == "maximize").to_numpy()
    score = pd.Series(np.nan, index=rows.index)
    for task_type, name in PAPER_METRIC.items():
        mine = (rows.task_type == task_type).to_numpy()
        column = f"test_{name}"
        values = pd.to_numeric(rows[column], errors="coerce") if column in rows else score
        score[mine] = values[mine]
    missing = rows[ok & score.isna().to_numpy()]
    if len(missing):
        example = f", e.g. {missing.record.iloc[0]}" if "record" in missing else ""
        raise ValueError(f"--normalize-metric paper needs each ok record's test accuracy (classification) or R² "
                         f"(regression); {len(missing)} lack it{example}")
    return score.where(ok), np.ones(len(rows), dtype=bool)


def split_scores(frame: pd.DataFrame, metric: NormalizeMetric = NormalizeMetric.OBJECTIVE) -> pd.DataFrame:
    """One row per record that ran (status ok or a failure; NOT_RUN records are left out): dataset,
    task_type, split, model, variant, entry, state (Status.OK or Status.FAILED), score (the test
    metric, NaN for failures), direction, signed (direction-aware, -inf for failures) and filled
    (signed, a failure at its split's floor: the lowest signed value finished on that split; NaN where
    nobody finished the split). Elo's battles read signed; every per-dataset score reads filled."""
    columns = [*ENTRY_KEYS, "split", "state", "score", "direction", "signed", "filled", "score_seed_std"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    rows = frame.assign(task_type=per_dataset_value(frame, "task_type"),
                        direction=per_dataset_value(frame, "direction"))
    rows = rows[~rows.status.isin(NOT_RUN)].copy()
    ok = (rows.status == Status.OK).to_numpy()
    rows["state"] = np.where(ok, Status.OK, Status.FAILED)
    rows["score"], higher = _metric_values(rows, ok, NormalizeMetric.parse(metric))
    if metric == NormalizeMetric.PAPER:
        rows["direction"] = "maximize"
    rows["signed"] = np.where(ok, np.where(higher, rows.score, -rows.score), -np.inf)
    floor = rows.signed.where(ok).groupby([rows.dataset, rows.split]).transform("min")
    rows["filled"] = np.where(ok, rows.signed, floor)
    std = rows.test_score_std if "test_score_std" in rows else pd.Series(np.nan, index=rows.index)
    rows["score_seed_std"] = pd.to_numeric(std, errors="coerce").where(ok)
    rows["entry"] = [entry_label(m, v) for m, v in zip(rows.model, rows.variant)]
    return rows[columns].reset_index(drop=True)


def dataset_scores(frame: pd.DataFrame, metric: NormalizeMetric = NormalizeMetric.OBJECTIVE) -> pd.DataFrame:
    """One row per (dataset, entry) that ran there: state (ok if any split finished, else failed),
    score (mean over the splits it ran, a failed split at its floor: `split_scores`), splits (how many
    finished), failed_splits, score_seed_std (over the finished splits), direction, signed, and the
    dataset's size / categorical share for slicing. Datasets where nothing finished are dropped: they
    have no scale to normalize on."""
    splits = split_scores(frame, metric)
    columns = [*ENTRY_KEYS, "state", "score", "splits", "failed_splits", "score_seed_std", "direction", "signed",
               "n_rows", "n_features", "n_categorical"]
    if splits.empty:
        return pd.DataFrame(columns=columns)
    finished = splits.state == Status.OK
    out = (splits.assign(finished=finished, failed=~finished, seed_std=splits.score_seed_std.where(finished))
           .groupby(ENTRY_KEYS, dropna=False, sort=True)
           .agg(direction=("direction", "first"), any_ok=("finished", "any"), splits=("finished", "sum"),
                failed_splits=("failed", "sum"), filled=("filled", "mean"), score_seed_std=("seed_std", "mean"))
           .reset_index())
    out["state"] = np.where(out.any_ok, Status.OK, Status.FAILED)
    out["signed"] = np.where(out.any_ok, out.filled, -np.inf)
    out["score"] = np.where(out.any_ok, np.where(out.direction == "maximize", out.filled, -out.filled), np.nan)
    out[["splits", "failed_splits"]] = out[["splits", "failed_splits"]].astype(int)
    present = [c for c in ("n_rows", "n_features", "n_categorical") if c in frame]
    meta = frame.groupby("dataset")[present].max().reset_index()
    out = out.merge(meta, on="dataset", how="left").reindex(columns=columns)
    finished_somewhere = out.groupby("dataset")["state"].transform(lambda s: (s == Status.OK).any())
    return out[finished_somewhere].reset_index(drop=True)


def validation_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, entry): `val` (signed) and `direction`, the validation objective (`val_score`) put through the same
    path as test scores (`dataset_scores`), so that a failed split counts at the worst validation score
    finished on that split, exactly as on test. What "the best entry, chosen on validation" is ranked
    on (bench.analysis.families, family_points); an entry without any validation score gets -inf."""
    val_score = pd.to_numeric(frame.val_score, errors="coerce") if "val_score" in frame else np.nan
    scores = dataset_scores(frame.assign(test_score=val_score, test_score_std=np.nan))
    return scores[["dataset", "entry", "signed", "direction"]].rename(columns={"signed": "val"})


def best_on_validation(candidates: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group of `by` (e.g. dataset and family), the candidate row with the best `val` (signed, from
    validation_scores); a tie goes to the lower entry name, so the choice is deterministic. The one rule of
    "the best entry, chosen on validation" (the GBDT-vs-neural headline, the per-dataset plot, the learning
    curve)."""
    ordered = candidates.sort_values([*by, "val", "entry"], ascending=[*([True] * len(by)), False, True])
    return ordered.drop_duplicates(by)


def scale(ok_signed: np.ndarray, task_type: str, method: str) -> tuple[float, float, bool]:
    """The dataset's affine map norm = (signed - low) / span, and whether to truncate below 0."""
    if method not in METHODS:
        raise ValueError(f"unknown normalization {method!r} ({' or '.join(METHODS)})")
    best = float(np.max(ok_signed))
    if method == "minmax":
        low = float(np.min(ok_signed))
    else:
        low = float(np.quantile(ok_signed, QUANTILE_FOR_TASK[task_type]))
    return low, best - low, method == "quantile" and TRUNCATE_FOR_TASK[task_type]


def apply_scale(signed, low: float, span: float, truncate: bool) -> np.ndarray:
    signed = np.asarray(signed, dtype=float)
    if span > 0:
        norm = (signed - low) / span
    else:  # every finished entry (or the top share above the quantile) ties: best is 1, below is 0
        norm = np.where(np.isnan(signed), np.nan, np.where(signed >= low, 1.0, 0.0))
    return np.clip(norm, 0.0, None) if truncate else norm


def dataset_scales(scores: pd.DataFrame, method: str = "quantile") -> pd.DataFrame:
    """Per dataset (index): low, span, truncate (see `scale`), from `dataset_scores` rows."""
    rows = {}
    for dataset, d in scores.groupby("dataset", sort=False):
        ok = d.signed[d.state == Status.OK].to_numpy(float)
        rows[dataset] = dict(zip(("low", "span", "truncate"), scale(ok, d.task_type.iloc[0], method)))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["low", "span", "truncate"])


def normalize(scores: pd.DataFrame, method: str = "quantile") -> pd.DataFrame:
    """`dataset_scores` rows plus the method's column (norm_score or norm_minmax). A failed entry gets
    the dataset's lowest normalized value, and at most 0."""
    column = METHODS.get(method)
    if column is None:
        raise ValueError(f"unknown normalization {method!r} ({' or '.join(METHODS)})")
    out = scores.copy()
    out[column] = np.nan
    for dataset, d in out.groupby("dataset", sort=False):
        low, span, truncate = scale(d.signed[d.state == Status.OK].to_numpy(float), d.task_type.iloc[0], method)
        ok = (d.state == Status.OK).to_numpy()
        norm = apply_scale(np.where(ok, d.signed, np.nan), low, span, truncate)
        out.loc[d.index, column] = np.where(ok, norm, min(0.0, float(np.nanmin(norm))))
    return out


def add_ranks(scores: pd.DataFrame) -> pd.DataFrame:
    """Rank per dataset (1 = best, ties share the average rank; failures last) and wins."""
    out = scores.copy()
    by = out.groupby("dataset")["signed"]
    out["rank"] = by.rank(ascending=False, method="average")
    out["win"] = by.rank(ascending=False, method="min") == 1
    return out


def per_dataset(frame: pd.DataFrame, metric: NormalizeMetric = NormalizeMetric.OBJECTIVE) -> pd.DataFrame:
    """`dataset_scores` (on the objective) with rank, win, norm_score, norm_minmax (on `metric`),
    norm_input (the per-dataset value normalized: score, or the mean accuracy / R² under `paper`) and
    norm_seed_std (NaN under `paper`)."""
    scores = add_ranks(dataset_scores(frame))
    if NormalizeMetric.parse(metric) is NormalizeMetric.OBJECTIVE:
        scores = normalize(normalize(scores, "quantile"), "minmax")
        scores["norm_input"] = scores.score
        span = scores.dataset.map(dataset_scales(scores, "quantile").span) if len(scores) else pd.Series(dtype=float)
        scores["norm_seed_std"] = np.where(span > 0, scores.score_seed_std / span.where(span > 0), 0.0)
        return scores
    paper = normalize(normalize(dataset_scores(frame, metric), "quantile"), "minmax")
    paper = paper[["dataset", "entry", "score", "norm_score", "norm_minmax"]].rename(columns={"score": "norm_input"})
    return scores.merge(paper, on=["dataset", "entry"], how="left").assign(norm_seed_std=np.nan)


def pivot(scores: pd.DataFrame, value: str) -> pd.DataFrame:
    """datasets x entries matrix of one column (NaN where an entry did not run)."""
    return scores.pivot(index="dataset", columns="entry", values=value)


def bootstrap_mean_ci(matrix: pd.DataFrame, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> pd.DataFrame:
    """Per column: mean over datasets (rows) and a percentile CI from resampling datasets."""
    rng = np.random.default_rng(seed)
    values = matrix.to_numpy(dtype=float)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an entry absent from a whole resample: NaN
        means = np.nanmean(values[idx], axis=1) if len(values) else np.empty((n_boot, values.shape[1]))
        lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
        return pd.DataFrame({"mean": np.nanmean(values, axis=0) if len(values) else np.nan,
                             "ci_low": np.nanquantile(means, lo, axis=0),
                             "ci_high": np.nanquantile(means, hi, axis=0)}, index=matrix.columns)


def has_seed_spread(frame: pd.DataFrame) -> bool:
    """Whether any record was tested with more than one model seed (else seed std columns are empty)."""
    return "test_score_std" in frame and pd.to_numeric(frame.test_score_std, errors="coerce").notna().any()


SUMMARY_COLUMNS = [
    "entry", "model", "variant", "family", "norm_score", "norm_ci_low", "norm_ci_high", "norm_minmax",
    "seed_std", "mean_rank", "wins", "datasets", "splits", "failures", "skipped", "unavailable",
    "median_fit_s", "median_predict_s", "median_seconds", "cpu_seconds", "gpu_seconds",
    "only_defaults", "clock_cut", "trials_done", "trials_declared", "short_uncut", "still_improving",
    "adequacy_datasets"]


def entry_summary(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                  metric: NormalizeMetric = NormalizeMetric.OBJECTIVE, scores: pd.DataFrame | None = None
                  ) -> pd.DataFrame:
    """One row per entry of the frame (also entries that never ran: their scores are NaN), sorted by
    norm_score: normalized means (with a bootstrap CI over datasets for norm_score when n_boot > 0),
    seed_std, mean_rank, wins, datasets finished, splits finished (ok records), record counts by
    status (failures, skipped, unavailable), median seconds per split (fit, predict, both), device
    seconds and budget truncation (bench.analysis.budget). The normalized columns are on `metric`;
    `scores`: per_dataset(frame, metric) when the caller already has it."""
    if frame.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    scores = per_dataset(frame, metric) if scores is None else scores
    ci = bootstrap_mean_ci(pivot(scores, "norm_score"), n_boot=n_boot, seed=seed) if n_boot and len(scores) else None
    families = frame.groupby("model")["family"].agg(lambda s: s.dropna().iloc[0] if s.notna().any() else None)
    rows = []
    for (model, variant), g in frame.groupby(["model", "variant"], sort=True):
        entry = entry_label(model, variant)
        s = scores[scores.entry == entry]
        ok = g[g.status == Status.OK]
        fit, predict = (pd.to_numeric(ok[c], errors="coerce") for c in ("fit_seconds", "predict_seconds"))
        rows.append({
            "entry": entry, "model": model, "variant": variant, "family": families.get(model),
            "norm_score": s.norm_score.mean(), "norm_minmax": s.norm_minmax.mean(),
            "norm_ci_low": ci.loc[entry, "ci_low"] if ci is not None and entry in ci.index else np.nan,
            "norm_ci_high": ci.loc[entry, "ci_high"] if ci is not None and entry in ci.index else np.nan,
            "seed_std": s.norm_seed_std.mean(), "mean_rank": s["rank"].mean(), "wins": int(s.win.sum()),
            "datasets": int((s.state == Status.OK).sum()), "splits": len(ok),
            "failures": int(g.status.isin(FAILURES).sum()),
            "skipped": int((g.status == Status.SKIPPED).sum()),
            "unavailable": int((g.status == Status.UNAVAILABLE).sum()),
            "median_fit_s": fit.median(), "median_predict_s": predict.median(),
            "median_seconds": (fit + predict).median(),
        })
    summary = pd.DataFrame(rows).merge(entry_budget(frame), on=["model", "variant"], how="left")
    return (summary.reindex(columns=SUMMARY_COLUMNS)
            .sort_values(["norm_score", "mean_rank", "entry"], ascending=[False, True, True], na_position="last")
            .reset_index(drop=True))


def add_slices(scores: pd.DataFrame) -> pd.DataFrame:
    """Slice columns per dataset: task type, size bin (rows), categorical-feature share bin."""
    out = scores.copy()
    out["size"] = pd.cut(out.n_rows.astype(float), SIZE_BINS, labels=SIZE_LABELS, right=False).astype(str)
    share = out.n_categorical.astype(float) / out.n_features.astype(float)
    out["categorical_share"] = pd.cut(share, CATEGORICAL_BINS, labels=CATEGORICAL_LABELS).astype(str)
    return out


def slice_table(frame: pd.DataFrame, by: str, method: str = "quantile",
                metric: NormalizeMetric = NormalizeMetric.OBJECTIVE) -> pd.DataFrame:
    """entries x slices: mean normalized score over the datasets in each slice (normalized over all
    entries of a dataset, as in the leaderboard); the column names carry the dataset count."""
    if by not in ("task_type", "size", "categorical_share"):
        raise ValueError(f"unknown slice {by!r} (task_type, size, categorical_share)")
    scores = add_slices(normalize(dataset_scores(frame, metric), method))
    counts = scores.groupby(by).dataset.nunique()
    table = scores.groupby(["entry", by])[METHODS[method]].mean().unstack(by)
    table.columns = [f"{c} (n={counts[c]})" for c in table.columns]
    return table


def time_vs_score(summary: pd.DataFrame) -> pd.DataFrame:
    """Per entry that finished somewhere: its family, median (fit + predict) seconds per split, median CPU
    seconds per split of the whole variant (tuning included) and norm_score, straight from `entry_summary`
    (a time left empty where it was not recorded)."""
    columns = ["entry", "family", "median_seconds", "cpu_seconds", "norm_score"]
    return summary[columns].dropna(subset=["norm_score"]).reset_index(drop=True)
