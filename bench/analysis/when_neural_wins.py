"""When do neural models win? The gap between the best neural and the best GBDT entry per dataset, against
the dataset's meta-features (bench.meta_features), with a rank correlation per meta-feature.

  gap        per dataset: the best normalized score (quantile, the leaderboard's) of any entry of a
             neural model minus that of any entry of a GBDT (> 0: the neural side is ahead). Every variant
             of a model counts (default, tuned, its own ensemble); the cross-model ensemble belongs to
             neither side.
  beyond noise  the two best entries' test objectives, paired by split: the mean difference is beyond
             noise when it exceeds NOISE_Z standard errors. With 2+ shared splits the standard error is the
             std of the per-split differences / sqrt(splits); with one split it comes from the model
             seeds (each entry's seed std / sqrt(seeds), combined), so it needs --seeds 2 or more; else
             the verdict is "noise unknown".
  correlation   Spearman's rank correlation of the gap with each meta-feature over the datasets where
             both are known, and its two-sided p-value (scipy.stats.spearmanr); no correction for testing
             several meta-features, and few datasets make any p-value weak evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench import meta_features
from bench.analysis import stats
from bench.vocabulary import Status

NOISE_Z = 2.0
RULE = (f"Gap: per dataset, the best normalized score (quantile) of a neural model's entries minus the best of a "
        f"GBDT's (> 0: neural ahead). Beyond noise: the two best entries' mean per-split difference in the test "
        f"objective exceeds {NOISE_Z:g} standard errors (std of the paired split differences / sqrt(splits); with one "
        f"split, the model seeds' std / sqrt(seeds), so --seeds 2+ is needed; else 'noise unknown'). Correlation: "
        f"Spearman's rank correlation of the gap with each meta-feature, two-sided p-value, no correction for "
        f"testing several; meta-features: <run>/data/<dataset>/meta_features.json (bench.meta_features).")
SIDES = ("neural", "gbdt")
VERDICTS = {"neural": "neural ahead beyond noise", "gbdt": "GBDT ahead beyond noise", "tie": "within noise",
            "unknown": "noise unknown"}
GAP_COLUMNS = ["dataset", "neural_entry", "gbdt_entry", "gap", "difference", "standard_error", "splits", "verdict"]


def run_meta_features(run_dir: Path, datasets) -> pd.DataFrame:
    """The meta-features of the run's datasets: data/<name>/meta_features.json as `bench run` wrote it, or,
    for a run from before that file, computed from the run's copy of the data (nothing is written)."""
    from bench.datasets import read_cached_dataset

    found: dict[str, dict] = {}
    for name in datasets:
        directory = Path(run_dir) / "data" / str(name)
        values = meta_features.read(directory)
        if values is None:
            ds, _ = read_cached_dataset(directory)
            values = meta_features.compute(ds) if ds is not None else None
        if values is not None:
            found[str(name)] = values
    return meta_features.as_frame(found)


def side_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset where both sides finished an entry (GAP_COLUMNS; see the module doc)."""
    if "family" not in frame or not set(SIDES) <= set(frame.family.dropna()):
        return pd.DataFrame(columns=GAP_COLUMNS)
    family = frame.dropna(subset=["family"]).groupby("model").family.first()
    scores = stats.per_dataset(frame)
    scores = scores[scores.state == Status.OK].assign(side=lambda d: d.model.map(family))
    splits = stats.split_scores(frame)
    seeds = frame.assign(entry=[stats.entry_label(m, v) for m, v in zip(frame.model, frame.variant)])
    rows = []
    for dataset, d in scores.groupby("dataset", sort=True):
        best = {side: d[d.side == side].sort_values("norm_score", ascending=False, kind="stable")
                for side in SIDES}
        if any(b.empty for b in best.values()):
            continue
        neural, gbdt = best["neural"].iloc[0], best["gbdt"].iloc[0]
        diff, se, n = paired_difference(splits[splits.dataset == dataset], neural.entry, gbdt.entry,
                                        seeds[seeds.dataset == dataset])
        rows.append({"dataset": dataset, "neural_entry": neural.entry, "gbdt_entry": gbdt.entry,
                     "gap": float(neural.norm_score - gbdt.norm_score), "difference": diff,
                     "standard_error": se, "splits": n, "verdict": verdict(diff, se)})
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def paired_difference(splits: pd.DataFrame, a: str, b: str, records: pd.DataFrame) -> tuple[float, float, int]:
    """(mean over shared finished splits of a's signed test objective minus b's, its standard error, splits);
    the standard error is NaN when it cannot be estimated (see the module doc)."""
    ok = splits[splits.state == Status.OK]
    pair = ok[ok.entry.isin([a, b])].pivot_table(index="split", columns="entry", values="signed").dropna()
    if a not in pair or b not in pair or pair.empty:
        return math.nan, math.nan, 0
    d = (pair[a] - pair[b]).to_numpy(float)
    if len(d) >= 2:
        return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), len(d)
    parts = []
    for entry in (a, b):
        row = records[(records.entry == entry) & (records.status == Status.OK)]
        std = pd.to_numeric(row.get("test_score_std"), errors="coerce")
        n_seeds = pd.to_numeric(row.get("n_seeds"), errors="coerce")
        if row.empty or std.isna().all() or n_seeds.isna().all():
            return float(d[0]), math.nan, 1
        parts.append(float(std.iloc[0]) ** 2 / float(n_seeds.iloc[0]))
    return float(d[0]), math.sqrt(sum(parts)), 1


def verdict(difference: float, standard_error: float) -> str:
    """neural | gbdt | tie | unknown (VERDICTS)."""
    if not (math.isfinite(difference) and math.isfinite(standard_error)):
        return "unknown"
    if abs(difference) <= NOISE_Z * standard_error:
        return "tie"
    return "neural" if difference > 0 else "gbdt"


def correlations(gaps: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Per meta-feature: Spearman's rho of the gap with it, its p-value and the datasets used."""
    from scipy.stats import spearmanr

    rows = []
    joined = gaps.set_index("dataset")[["gap"]].join(features, how="inner")
    for name in meta_features.META_FEATURES:
        both = joined[["gap", name]].dropna() if name in joined else pd.DataFrame()
        rho = p = math.nan
        if len(both) >= 3 and both[name].nunique() > 1 and both.gap.nunique() > 1:
            result = spearmanr(both.gap, both[name])
            rho, p = float(result.statistic), float(result.pvalue)
        rows.append({"meta_feature": name, "rho": rho, "p_value": p, "datasets": len(both)})
    return pd.DataFrame(rows, columns=["meta_feature", "rho", "p_value", "datasets"])


def figure(found: Findings):
    """The section's plot (one scatter per meta-feature, below); None without meta-features."""
    if found.features.dropna(how="all").empty:
        return None

    data = found.gaps[["dataset", "gap", "verdict"]].merge(found.features, left_on="dataset", right_index=True,
                                                           how="left")
    return _gap_vs_meta_features(data, found.correlations, meta_features.META_FEATURES)


VERDICT_COLOURS = {"neural": "#d95f02", "gbdt": "#1b9e77", "tie": "#7f7f7f", "unknown": "#bdbdbd"}


def _gap_vs_meta_features(data: pd.DataFrame, correlations: pd.DataFrame, labels: dict[str, str]):
    """One small scatter per meta-feature: the best-neural minus best-GBDT normalized score per dataset
    against it, coloured by the noise verdict, titled with Spearman's rho."""
    from bench.analysis import plots  # matplotlib: only when a figure is drawn

    names = [n for n in labels if n in data and data[n].notna().any()]
    cols = 3
    rows = max(1, -(-len(names) // cols))
    fig, axes = plots.plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    stats_by = correlations.set_index("meta_feature") if len(correlations) else pd.DataFrame()
    for ax, name in zip(axes.flat, names):
        for verdict, d in data.groupby("verdict"):
            ax.scatter(d[name], d.gap, s=18, color=VERDICT_COLOURS.get(str(verdict), "black"), label=str(verdict))
        values = data[name].dropna().to_numpy(float)
        ticker = plots.matplotlib.ticker
        if len(values) and values.min() > 0 and values.max() >= 10 * values.min():  # counts spanning decades
            ax.set_xscale("log")
            # Labels at 1, 2, 5 x 10^k in plain numbers; matplotlib's default labels the minor ticks of a
            # range under two decades in scientific notation, at full size, one over another.
            ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        else:
            ax.xaxis.set_major_locator(ticker.MaxNLocator(4))
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        rho = stats_by.rho.get(name, np.nan) if len(stats_by) else np.nan
        p = stats_by.p_value.get(name, np.nan) if len(stats_by) else np.nan
        ax.set_title(f"{name}: rho={rho:.2f}, p={p:.2g}" if np.isfinite(rho) else f"{name}: rho –", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel("best neural - best GBDT\n(normalized score)", fontsize=8)
    handles, texts = axes.flat[0].get_legend_handles_labels()
    if handles:
        # One row above the panels, beside the title: inside a corner it covered a panel's title.
        fig.legend(handles, [f"verdict: {t}" for t in texts], loc="upper right", ncol=len(handles), fontsize=7,
                   frameon=False)
    fig.suptitle("When do neural models win? Gap per dataset against its meta-features", fontsize=10, x=0.02,
                 ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


@dataclass
class Findings:
    """What the report's section shows: per dataset the gap and verdict, per meta-feature the correlation."""

    gaps: pd.DataFrame  # side_gaps
    features: pd.DataFrame  # run_meta_features
    correlations: pd.DataFrame  # correlations

    def correlation_rows(self) -> tuple[list[str], list[list[str]]]:
        rows = [[name, meta_features.META_FEATURES[name], _num(r.rho, ".2f"), _num(r.p_value, ".3g"), str(r.datasets)]
                for name, r in zip(self.correlations.meta_feature, self.correlations.itertuples())]
        return ["meta-feature", "meaning", "Spearman rho", "p-value", "datasets"], rows

    def dataset_rows(self) -> tuple[list[str], list[list[str]]]:
        rows = []
        for r in self.gaps.itertuples():
            f = self.features.loc[r.dataset] if r.dataset in self.features.index else None
            rows.append([str(r.dataset), str(r.neural_entry), str(r.gbdt_entry), _num(r.gap, "+.3f"),
                         _num(r.difference, "+.4g"), _num(r.standard_error, ".2g"), str(r.splits),
                         VERDICTS[r.verdict], *(_value(f[c]) if f is not None else "–" for c in SHOWN)])
        return ["dataset", "best neural", "best GBDT", "gap (norm.)", "difference (objective, signed)",
                "standard error", "splits", "verdict", *SHOWN], rows

    def summary(self) -> list[str]:
        """One line per verdict: the datasets each side wins by more than the noise, and the rest."""
        out = []
        for key, label in VERDICTS.items():
            names = self.gaps.dataset[self.gaps.verdict == key].tolist()
            out.append(f"{label} ({len(names)}): {', '.join(map(str, names)) if names else 'none'}")
        return out


SHOWN = ("n_rows", "n_features", "categorical_share", "n_classes", "missing_share")


def findings(frame: pd.DataFrame, run_dir: Path) -> Findings | None:
    """The section's data, or None when the run lacks a neural or a GBDT model with a finished entry."""
    gaps = side_gaps(frame)
    if gaps.empty:
        return None
    features = run_meta_features(run_dir, gaps.dataset)
    return Findings(gaps, features, correlations(gaps, features))


def _num(value, spec: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return format(number, spec) if math.isfinite(number) else "–"


def _value(value) -> str:
    """A meta-feature as a cell: counts as integers, shares and ratios with 3 significant digits."""
    text = _num(value, ".3g")
    return f"{float(value):.0f}" if text != "–" and float(value).is_integer() else text
