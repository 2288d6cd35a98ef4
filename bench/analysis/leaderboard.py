"""Leaderboard: per model (and variant) aggregate scores over datasets, overall and per task type.

Per dataset, each entry's score is its mean test objective over the splits it completed (ROC AUC for
binary, log loss for multiclass, RMSE for regression; see bench.metrics). Then, across entries on the
same dataset:
  normalized score = (score - worst) / (best - worst), direction-aware (1 = best entry, 0 = worst)
  rank             = 1 for the best entry, ties share the average rank
An entry that FAILED on a dataset (no completed split, at least one failure) is counted there as the
worst (normalized 0, last rank) so that crashing is never better than finishing; an entry SKIPPED for a
declared capability limit, or UNAVAILABLE (its optional library or weights are missing on the machine
that ran it), is left out of that dataset and its coverage shows it; both are counted in own columns.

Min-max lets one weak entry (`dummy`) squeeze everyone else toward 1, so the table also shows the
Grinsztajn et al. 2022 quantile normalization (`norm_quantile`, see bench.analysis.stats) and sorts by it, and
`seed_std`: the std over model seeds (`bench run --seeds N`) on that normalized scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.records.schema import FAILURES as FAILED_STATUSES

COLUMNS = ["model", "variant", "family", "norm_quantile", "seed_std", "mean_norm_score", "mean_rank", "wins",
           "datasets", "failures", "skipped", "unavailable", "median_fit_s", "median_predict_s"]


def per_dataset_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows: (dataset, model, variant) with mean test score, direction and completion status."""
    if frame.empty:
        return pd.DataFrame(columns=["dataset", "model", "variant", "score", "state"])
    keys = ["dataset", "task_type", "model", "variant"]
    frame = frame.copy()
    frame["task_type"] = frame.groupby("dataset")["task_type"].transform(lambda s: s.dropna().iloc[0]
                                                                          if s.notna().any() else None)
    ok = frame[frame.status == "ok"]
    scores = ok.groupby(keys, dropna=False).agg(score=("test_score", "mean"), splits=("split", "nunique"),
                                                direction=("direction", "first")).reset_index()
    states = frame.groupby(keys, dropna=False)["status"].agg(lambda s: _state(set(s))).reset_index(name="state")
    out = states.merge(scores, on=keys, how="left")
    out["direction"] = out.groupby("dataset")["direction"].transform(
        lambda s: s.dropna().iloc[0] if s.notna().any() else None)
    return out


def _state(statuses: set[str]) -> str:
    """ok, failed, or skipped (which also covers unavailable: neither says how good the model is)."""
    if "ok" in statuses:
        return "ok"
    if statuses & FAILED_STATUSES:
        return "failed"
    return "skipped"


def _normalize_and_rank(scores: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for _, d in scores.groupby("dataset"):
        d = d[d.state != "skipped"].copy()
        ok = d[d.state == "ok"]
        if ok.empty:
            continue
        higher = ok.direction.iloc[0] == "maximize"
        signed = ok.score if higher else -ok.score
        worst, best = signed.min(), signed.max()
        # Failed entries rank below everything that finished.
        d["signed"] = np.where(d.state == "ok", (d.score if higher else -d.score), -np.inf)
        span = best - worst
        d["norm"] = np.where(d.state == "ok", ((d.signed - worst) / span) if span > 0 else 1.0, 0.0)
        d["rank"] = d.signed.rank(ascending=False, method="average")
        d["win"] = d.signed.rank(ascending=False, method="min") == 1
        parts.append(d)
    if not parts:
        return pd.DataFrame(columns=[*scores.columns, "signed", "norm", "rank", "win"])
    return pd.concat(parts)


def compute(frame: pd.DataFrame, task_type: str | None = None) -> pd.DataFrame:
    """The leaderboard table (sorted by mean normalized score) for all datasets or one task type."""
    if task_type is not None:
        frame = frame[frame.task_type == task_type]
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    ranked = _normalize_and_rank(per_dataset_scores(frame))
    rows = []
    families = frame.groupby("model")["family"].first()
    for (model, variant), g in frame.groupby(["model", "variant"]):
        r = ranked[(ranked.model == model) & (ranked.variant == variant)]
        ok = g[g.status == "ok"]
        rows.append({
            "model": model, "variant": variant, "family": families.get(model),
            "mean_norm_score": r.norm.mean() if len(r) else np.nan,
            "mean_rank": r["rank"].mean() if len(r) else np.nan,
            "wins": int(r.win.sum()) if len(r) else 0,
            "datasets": int(ok.dataset.nunique()),
            "failures": int(g.status.isin(FAILED_STATUSES).sum()),
            "skipped": int((g.status == "skipped").sum()),
            "unavailable": int((g.status == "unavailable").sum()),
            "median_fit_s": ok.fit_seconds.median() if len(ok) else np.nan,
            "median_predict_s": ok.predict_seconds.median() if len(ok) else np.nan,
        })
    table = pd.DataFrame(rows, columns=COLUMNS).drop(columns=["norm_quantile", "seed_std"])
    table = table.merge(_quantile_columns(frame), on=["model", "variant"], how="left")[COLUMNS]
    return table.sort_values(["norm_quantile", "mean_rank"], ascending=[False, True],
                             na_position="last").reset_index(drop=True)


def _quantile_columns(frame: pd.DataFrame) -> pd.DataFrame:
    from bench.analysis import stats  # bench.analysis.stats builds on per_dataset_scores above

    scores = stats.dataset_scores(frame)
    if scores.empty:
        return pd.DataFrame(columns=["model", "variant", "norm_quantile", "seed_std"])
    normalized = stats.normalize(scores, "quantile")
    return (normalized.groupby(["model", "variant"])
            .agg(norm_quantile=("norm", "mean"), seed_std=("norm_seed_std", "mean")).reset_index())


def all_tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    tables = {"overall": compute(frame)}
    for task_type in ("binary", "multiclass", "regression"):
        if not frame.empty and (frame.task_type == task_type).any():
            tables[task_type] = compute(frame, task_type)
    return tables


def to_markdown(tables: dict[str, pd.DataFrame], title: str = "Leaderboard") -> str:
    lines = [f"# {title}", "",
             "Score per dataset = mean test objective over splits and model seeds (binary: ROC AUC, multiclass: "
             "log loss, regression: RMSE). norm_quantile: per dataset the 10% quantile (classification) / median "
             "(regression, truncated at 0) of the entries' scores -> 0, best -> 1 (Grinsztajn et al. 2022); "
             "seed_std: std over model seeds on that scale; mean_norm_score: min-max, worst 0, best 1. "
             "Failures count as worst.", ""]
    for name, table in tables.items():
        lines += [f"## {name}", "", _markdown_table(table), ""]
    return "\n".join(lines)


def _markdown_table(table: pd.DataFrame) -> str:
    shown = table.map(lambda v: f"{v:.3f}" if isinstance(v, float) else str(v))
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(row) + " |" for row in shown.astype(str).itertuples(index=False)]
    return "\n".join([header, rule, *body])


def write(tables: dict[str, pd.DataFrame], run_dir: Path, title: str) -> list[Path]:
    paths = []
    for name, table in tables.items():
        path = run_dir / ("leaderboard.csv" if name == "overall" else f"leaderboard-{name}.csv")
        table.to_csv(path, index=False, float_format="%.6g")
        paths.append(path)
    md = run_dir / "leaderboard.md"
    md.write_text(to_markdown(tables, title))
    paths.append(md)
    return paths
