"""Every statistic of a run in one object: what `bench report` renders and `bench regress` compares."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.analysis import budget, critical_difference, curves, elo, families, learning_curves, stats
from bench.errors import BenchError
from bench.records.store import ResultStore

SLICES = {"task_type": "task type", "size": "dataset size", "categorical_share": "share of categorical features"}


@dataclass
class Analysis:
    config: dict
    frame: pd.DataFrame
    summary: pd.DataFrame  # per entry (bench.analysis.stats.entry_summary + Elo)
    per_dataset: pd.DataFrame  # per dataset x entry: score, seed std, normalized, rank, record paths
    rates: pd.DataFrame
    cd: critical_difference.CDResult | None
    curves: pd.DataFrame
    time_vs_score: pd.DataFrame
    slices: dict[str, pd.DataFrame] = field(default_factory=dict)
    curve_jobs: pd.DataFrame = field(default_factory=pd.DataFrame)  # per model: jobs, trials, defaults-only
    warnings: list[str] = field(default_factory=list)  # bench.analysis.budget.budget_warnings
    normalize_metric: stats.NormalizeMetric = stats.NormalizeMetric.OBJECTIVE  # what norm_score normalized
    elo_weighting: elo.EloWeighting = elo.EloWeighting.DATASET  # how the Elo fit weighs battles
    left_out: list[str] = field(default_factory=list)  # ensemble_notes: members a cross-model ensemble lacks
    headline: pd.DataFrame = field(default_factory=pd.DataFrame)  # families.headline: GBDT vs neural
    headline_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)  # families.pairs: its datasets
    headline_excluded: list[str] = field(default_factory=list)  # entries on neither side
    train_size: str | None = None  # --train-sizes: the size every statistic above is of (None: no sizes)
    train_sizes: list[str] = field(default_factory=list)  # every size of the run, smallest first
    learning_curve: pd.DataFrame = field(default_factory=pd.DataFrame)  # bench.analysis.learning_curves.curve

    @property
    def seed_spread(self) -> bool:
        return stats.has_seed_spread(self.frame)

    @property
    def anchor(self) -> str | None:
        if "anchor" in self.summary and self.summary.anchor.notna().any():
            return self.summary.anchor.dropna().iloc[0]
        return None

    @property
    def anchor_note(self) -> str:
        """Which entry is Elo's 1000 and why (bench.analysis.elo.anchor_note), for every Elo table and plot."""
        if "anchor_note" in self.summary and self.summary.anchor_note.notna().any():
            return str(self.summary.anchor_note.dropna().iloc[0])
        return elo.anchor_note(self.anchor)


def analyze(store: ResultStore, n_boot: int = 1000, seed: int = 0, anchor: str | None = None,
            normalize_metric: stats.NormalizeMetric | str = stats.NormalizeMetric.OBJECTIVE,
            elo_weighting: elo.EloWeighting | str = elo.EloWeighting.DATASET,
            train_size: str | None = None) -> Analysis:
    """Every statistic of the run; `normalize_metric` (objective | paper) picks what the normalized
    scores normalize, `elo_weighting` (dataset | tabarena) how Elo and the win rates weigh battles. A run
    made with --train-sizes is analyzed at one size (`train_size`, default the largest; statistics never
    mix sizes), with the learning curve over all of them (bench.analysis.learning_curves)."""
    try:
        metric, weighting = stats.NormalizeMetric.parse(normalize_metric), elo.EloWeighting.parse(elo_weighting)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    all_records = store.load_all()
    every = store.frame(all_records)
    if every.empty:
        raise BenchError(f"no records in {store.records_dir}: is {store.run_dir} a run directory of `bench run`?")
    frame, size, present = learning_curves.choose(every, train_size)
    records = learning_curves.records_at(all_records, size)
    if not (frame.status == "ok").any():
        raise BenchError(f"{store.run_dir} has no successful records to analyze")
    try:
        summary = stats.entry_summary(frame, n_boot=n_boot, seed=seed, metric=metric)
        ratings = elo.elo_table(frame, anchor=anchor, n_boot=min(n_boot, 200), seed=seed, weighting=weighting)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc
    summary = summary.merge(ratings, on="entry", how="left")
    pairs = families.pairs(frame)
    return Analysis(
        config=store.config(), frame=frame, summary=summary, per_dataset=_per_dataset(frame, metric),
        rates=elo.win_rate_matrix(frame, weighting), cd=critical_difference.critical_difference(frame),
        curves=curves.tuning_curves(frame, records, seed=seed), curve_jobs=curves.curve_jobs(records),
        time_vs_score=stats.time_vs_score(summary),
        slices={name: stats.slice_table(frame, name, metric=metric) for name in SLICES},
        warnings=budget.budget_warnings(frame), normalize_metric=metric, elo_weighting=weighting,
        left_out=budget.ensemble_notes(records), headline=families.headline(frame, pairs), headline_pairs=pairs,
        headline_excluded=families.excluded_entries(frame), train_size=size, train_sizes=present,
        learning_curve=learning_curves.curve(every, all_records, metric) if len(present) > 1 else pd.DataFrame(),
    )


def _per_dataset(frame: pd.DataFrame, metric: stats.NormalizeMetric) -> pd.DataFrame:
    """stats.per_dataset plus the record files each row came from."""
    out = stats.per_dataset(frame, metric)
    records = (frame.assign(entry=[stats.entry_label(m, v) for m, v in zip(frame.model, frame.variant)])
               .groupby(["dataset", "entry"])["record"].agg(lambda s: sorted(s)).rename("records"))
    out = out.merge(records.reset_index(), on=["dataset", "entry"], how="left")
    cols = ["dataset", "task_type", "entry", "model", "variant", "state", "score", "score_seed_std", "splits",
            "failed_splits", "direction", "norm_input", "norm_score", "norm_minmax", "rank", "records"]
    return out[cols].sort_values(["dataset", "rank"], ignore_index=True)


def numbers(analysis: Analysis) -> dict[str, float]:
    """Every number a regression check compares, under a stable readable key."""
    out = {}
    for row in analysis.per_dataset.itertuples():
        if row.state == "ok":
            out[f"score {row.dataset} {row.entry}"] = float(row.score)
    for row in analysis.summary.itertuples():
        out[f"norm_score {row.entry}"] = float(row.norm_score)
        out[f"norm_minmax {row.entry}"] = float(row.norm_minmax)
        out[f"mean_rank {row.entry}"] = float(row.mean_rank)
        out[f"elo {row.entry}"] = float(row.elo)
    return {k: v for k, v in sorted(out.items()) if np.isfinite(v)}
