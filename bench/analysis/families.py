"""The headline answer: does a neural model beat the GBDTs on these datasets?

Per dataset, the best GBDT entry against the best neural entry, each side's best CHOSEN ON VALIDATION
(never on test), then compared on test; over datasets: wins / ties / losses, a paired test and the mean
normalized gap. One row per variant scope and task type:
  scope   best      any of the side's entries (default, tuned, ensemble), as a user would pick
          default   only default entries; tuned: only tuned ones; ensemble: only per-model ensembles
  tasks   all, and each task type present

The sides come from the records' `family` field: GBDT = family "gbdt" (XGBoost, LightGBM, CatBoost);
neural = family "neural" (MLPs, ResNet, FT-Transformer, TabM, ... and the in-context models TabPFN,
TabICL, TabDPT, which have nothing to tune and so appear in the `best` and `default` scopes only).
Left out of both sides: baselines (family "baseline": dummy, linear, random forest, k-NN, EBM) and the
cross-model ensemble (family "ensemble", `ensemble_all`), which mixes both families. They still set the
dataset's normalization scale, the leaderboard's.

Everything goes through the one statistics path (bench.analysis.stats): per dataset and entry the
validation score is `dataset_scores` run on the records' validation objective (`val_score`), so a
failed split counts there as the worst validation score finished on that split exactly as on test;
the side's best is the entry with the best such score (ties: the first entry name). Its test score is
the leaderboard's dataset score (a failed split at its split's floor; an entry that failed every split
is the worst on the dataset, a loss). Caveat: tuned and ensemble entries' validation scores are
optimistic (the best of many trials, or an ensemble fit on validation), so the `best` scope leans to
them, as it would for a user selecting on validation.

Gap (neural - GBDT) in the leaderboard's normalized units: the difference of the two test scores
divided by the dataset's quantile-normalization span (stats.dataset_scales; the min-max span where that
is 0), untruncated; positive = neural better. Outcome per dataset: neural win / tie (equal test scores)
/ GBDT win. Paired test over datasets, two-sided: the Wilcoxon signed-rank test (scipy) on the gaps
(zero gaps dropped) when at least WILCOXON_MIN datasets differ, else the exact sign test (binomial,
scipy) on wins against losses; with fewer than 6 differing datasets neither can reach p < 0.05.
Budget adequacy per side (bench.analysis.budget.dataset_adequacy): on how many datasets the side's
chosen entry was still improving at the end of its trials (tuned and ensemble entries only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis import stats
from bench.analysis.budget import dataset_adequacy
from bench.errors import plural
from bench.safe_files import write_text_atomic
from bench.vocabulary import CROSS_MODEL, Status, Variant

SIDES = ("gbdt", "neural")
LABELS = {"gbdt": "GBDT", "neural": "neural"}
SCOPES = ("best", Variant.DEFAULT.value, Variant.TUNED.value, Variant.ENSEMBLE.value)
WILCOXON_MIN = 6
ALPHA = 0.05  # the level the verdict sentence names
TASKS = ("binary", "multiclass", "regression")
PAIR_COLUMNS = ["scope", "dataset", "task_type", "gbdt_entry", "neural_entry", "gbdt_score", "neural_score",
                "gbdt_val", "neural_val", "gap", "outcome", "gbdt_improving", "neural_improving"]
COLUMNS = ["scope", "tasks", "datasets", "neural_wins", "ties", "gbdt_wins", "mean_gap", "test", "p_value",
           "gbdt_still_improving", "gbdt_judged", "neural_still_improving", "neural_judged"]
DEFINITIONS = {
    "scope": "which entries each side's best is chosen from: best = any variant; default / tuned / ensemble = "
             "that variant only",
    "tasks": "all datasets, or one task type",
    "datasets": "datasets where both sides have an entry that ran",
    "neural_wins": "datasets where the neural side's test score is better", "ties": "equal test scores",
    "gbdt_wins": "datasets where the GBDT side's test score is better",
    "mean_gap": "mean over datasets of (neural - GBDT) test score in the leaderboard's normalized units "
                "(positive: neural better)",
    "test": "the paired test: Wilcoxon signed-rank on the gaps (6 or more differing datasets), else the sign test",
    "p_value": "its two-sided p-value",
    "gbdt_still_improving": "datasets where the side's chosen entry was still improving at the end of its trials "
                            "(bench.analysis.budget), of the judged ones (tuned and ensemble entries)",
}


def _side_of(frame: pd.DataFrame) -> pd.Series:
    family = frame.model.map(frame.groupby("model")["family"].agg(
        lambda s: s.dropna().iloc[0] if s.notna().any() else None))
    return family.where(family.isin(SIDES) & (frame.model != CROSS_MODEL))


def _scores(frame: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, entry) of both sides: task_type, side, variant, val (signed validation dataset score),
    signed and score (test: `test`, the leaderboard's dataset scores), state."""
    val = stats.validation_scores(frame).drop(columns="direction")
    sides = frame.assign(side=_side_of(frame), entry=[stats.entry_label(m, v) for m, v in
                                                      zip(frame.model, frame.variant)])
    sides = sides[["entry", "side"]].dropna().drop_duplicates("entry")
    out = test.merge(sides, on="entry").merge(val, on=["dataset", "entry"], how="left")
    out["val"] = out.val.fillna(-np.inf)  # an ok record without a validation score cannot be chosen first
    return out


def _choose(scores: pd.DataFrame, scope: str) -> pd.DataFrame:
    """Per (dataset, side): the entry with the best validation score among the scope's entries."""
    pool = scores if scope == "best" else scores[scores.variant == scope]
    if pool.empty:
        return pool
    return stats.best_on_validation(pool, ["dataset", "side"])


def _spans(scores: pd.DataFrame) -> pd.Series:
    """Per dataset the quantile normalization's span (the min-max span where that is 0; 1 where both are)."""
    quantile, minmax = stats.dataset_scales(scores, "quantile").span, stats.dataset_scales(scores, "minmax").span
    return quantile.where(quantile > 0, minmax).where(lambda s: s > 0, 1.0)


def pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (scope, dataset) where both sides ran: the two chosen entries, their test scores
    (objective units) and validation scores, the normalized gap, the outcome and whether each chosen
    entry was still improving (<NA>: not judged)."""
    if frame.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    every = stats.dataset_scores(frame)  # every entry's, baselines too: the leaderboard's scale and floor
    scores, spans = _scores(frame, every), _spans(every)
    adequacy = dataset_adequacy(frame).set_index(["dataset", "entry"]).improving
    floor = every[every.state == Status.OK].groupby("dataset").signed.min()
    rows = []
    for scope in SCOPES:
        chosen = _choose(scores, scope)
        for dataset, d in chosen.groupby("dataset", sort=True):
            if set(d.side) != set(SIDES):
                continue
            g, n = (d[d.side == side].iloc[0] for side in SIDES)
            finite = [max(x.signed, floor.get(dataset, x.signed)) if np.isinf(x.signed) else x.signed for x in (g, n)]
            outcome = "tie" if g.signed == n.signed else "neural" if n.signed > g.signed else "gbdt"
            rows.append({"scope": scope, "dataset": dataset, "task_type": g.task_type,
                         "gbdt_entry": g.entry, "neural_entry": n.entry, "gbdt_score": g.score,
                         "neural_score": n.score, "gbdt_val": _unsigned(g.val, g.direction),
                         "neural_val": _unsigned(n.val, n.direction),
                         "gap": (finite[1] - finite[0]) / spans[dataset], "outcome": outcome,
                         "gbdt_improving": adequacy.get((dataset, g.entry), pd.NA),
                         "neural_improving": adequacy.get((dataset, n.entry), pd.NA)})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _unsigned(signed: float, direction: str) -> float:
    return np.nan if np.isinf(signed) else signed if direction == "maximize" else -signed


def paired_test(gaps: np.ndarray, wins: int, losses: int) -> tuple[str, float]:
    """(test name, two-sided p): Wilcoxon signed-rank on the non-zero gaps when there are WILCOXON_MIN
    or more, else the exact sign test on wins against losses; ("none", NaN) when nothing differs."""
    from scipy import stats as scipy_stats  # ~0.6 s to import: only when a headline is computed

    nonzero = gaps[(gaps != 0) & np.isfinite(gaps)]
    if len(nonzero) >= WILCOXON_MIN:
        return "Wilcoxon", float(scipy_stats.wilcoxon(nonzero).pvalue)
    if wins + losses:
        return "sign", float(scipy_stats.binomtest(wins, wins + losses, 0.5).pvalue)
    return "none", np.nan


def _summary_row(scope: str, tasks: str, p: pd.DataFrame) -> dict:
    wins, losses = int((p.outcome == "neural").sum()), int((p.outcome == "gbdt").sum())
    test, p_value = paired_test(p.gap.to_numpy(float), wins, losses)
    row = {"scope": scope, "tasks": tasks, "datasets": len(p), "neural_wins": wins,
           "ties": int((p.outcome == "tie").sum()), "gbdt_wins": losses, "mean_gap": float(p.gap.mean()),
           "test": test, "p_value": p_value}
    for side in SIDES:
        judged = p[f"{side}_improving"].dropna()
        row[f"{side}_still_improving"] = int(judged.astype(bool).sum()) if len(judged) else pd.NA
        row[f"{side}_judged"] = len(judged) if len(judged) else pd.NA
    return row


def headline(frame: pd.DataFrame, paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """The headline table: one row per scope (best, default, tuned, ensemble) and tasks (all, then each
    task type present), for the scopes where both sides ran somewhere."""
    paired = pairs(frame) if paired is None else paired
    rows = []
    for scope in SCOPES:
        p = paired[paired.scope == scope]
        if p.empty:
            continue
        rows.append(_summary_row(scope, "all", p))
        for task in TASKS:
            if (p.task_type == task).any() and p.task_type.nunique() > 1:
                rows.append(_summary_row(scope, task, p[p.task_type == task]))
    return pd.DataFrame(rows, columns=COLUMNS)


def excluded_entries(frame: pd.DataFrame) -> list[str]:
    """The entries on neither side (baselines, the cross-model ensemble), for the table's note."""
    if frame.empty:
        return []
    side = _side_of(frame)
    return sorted({stats.entry_label(m, v) for m, v, s in zip(frame.model, frame.variant, side) if pd.isna(s)})


def verdict(table: pd.DataFrame) -> str:
    """One sentence for the headline row (best of any variant, all tasks): who won how often, the gap,
    the test; "" when there is none."""
    top = table[(table.scope == "best") & (table.tasks == "all")]
    if top.empty:
        return ""
    row = top.iloc[0]
    if pd.isna(row["p_value"]):
        test = "no dataset differs"
    else:
        significant = "significant" if row["p_value"] < ALPHA else "not significant"
        test = f"{row['test']} test p = {row['p_value']:.3g}, {significant} at {ALPHA}"
    return (f"Best of each family (chosen on validation): neural wins {row['neural_wins']}, ties {row['ties']}, "
            f"GBDT wins {row['gbdt_wins']} of {plural(int(row['datasets']), 'dataset')}; mean gap "
            f"{row['mean_gap']:+.3f} (neural - GBDT, normalized); {test}.")


def cell(column: str, row) -> str:
    """A headline value as the console, the Markdown and the report show it."""
    value = row[column]
    if column in ("gbdt_still_improving", "neural_still_improving"):
        judged = row[column.replace("still_improving", "judged")]
        return "–" if pd.isna(value) else f"{int(value)}/{int(judged)}"
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    if column == "mean_gap":
        return f"{value:+.3f}"
    if column == "p_value":
        return f"{value:.3g}"
    return str(value)


SHOWN = [("scope", "variant"), ("tasks", "tasks"), ("datasets", "ds"), ("neural_wins", "neural wins"),
         ("ties", "ties"), ("gbdt_wins", "GBDT wins"), ("mean_gap", "mean gap"), ("test", "test"),
         ("p_value", "p"), ("gbdt_still_improving", "GBDT impr."), ("neural_still_improving", "neural impr.")]
TITLE = "GBDT vs neural: per dataset each family's best entry, chosen on validation, compared on test"


def note(excluded: list[str]) -> str:
    """What the table is, in a few sentences (console, Markdown, report)."""
    left = f" Neither side: {', '.join(excluded)}." if excluded else ""
    return ("GBDT = family gbdt, neural = family neural (in-context models included); baselines and the "
            "cross-model ensemble are on neither side." + left + " mean gap: neural - GBDT in normalized-score "
            "units (positive: neural better). test: Wilcoxon signed-rank on the gaps (>= 6 datasets differ), "
            "else the sign test; two-sided. impr.: datasets where the chosen entries were still improving at "
            "the end of their trials (of those judged): a comparison that more budget could change.")


def to_markdown(table: pd.DataFrame, excluded: list[str]) -> str:
    header = [h for _, h in SHOWN]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c, r) for c, _ in SHOWN) + " |" for _, r in table.iterrows()]
    return "\n".join(lines) + "\n\n" + note(excluded)


def write(table: pd.DataFrame, paired: pd.DataFrame, run_dir: Path) -> list[Path]:
    """gbdt-vs-neural.csv (the headline) and gbdt-vs-neural-per-dataset.csv (its pairs), beside
    leaderboard.csv, through bench.safe_files."""
    run_dir = Path(run_dir)
    return [write_text_atomic(run_dir / "gbdt-vs-neural.csv", table.to_csv(index=False, float_format="%.6g"), run_dir),
            write_text_atomic(run_dir / "gbdt-vs-neural-per-dataset.csv",
                              paired.to_csv(index=False, float_format="%.6g"), run_dir)]
