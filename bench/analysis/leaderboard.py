"""Leaderboard: the per-entry table of `bench.analysis.stats.entry_summary`, overall and per task type,
written as CSV and Markdown and shown on the console. Nothing is computed here: the definitions (and
the rule that skipped and unavailable records are left out while a failure is the worst result of its
split) live in bench.analysis.stats and bench.analysis.budget, and the report shows the same numbers.
Every view states what the normalized scores normalized (stats.NormalizeMetric): the Markdown and the
console in their notes, the CSV in its `normalized_on` column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis import stats
from bench.safe_files import write_text_atomic

COLUMNS = ["model", "variant", "family", "norm_score", "seed_std", "norm_minmax", "mean_rank", "wins",
           "datasets", "splits", "failures", "skipped", "unavailable", "only_defaults", "clock_cut",
           "trials_done", "trials_declared", "short_uncut", "still_improving", "adequacy_datasets",
           "median_fit_s", "median_predict_s", "cpu_seconds", "gpu_seconds", "normalized_on"]
SEED_COLUMNS = ["seed_std"]  # dropped when no record was tested with more than one model seed
DEFINITIONS = {
    "norm_score": "mean over datasets of the quantile-normalized score (Grinsztajn et al. 2022's rule applied to "
                  "the metric in `normalized_on`: per dataset the 10% quantile (classification) / median "
                  "(regression, truncated at 0) of the entries' scores -> 0, best -> 1); the sort key",
    "seed_std": "std over model seeds (--seeds) on the norm_score scale (objective only)",
    "norm_minmax": "mean over datasets of the min-max normalized score (worst 0, best 1), same metric",
    "mean_rank": "mean rank per dataset (1 = best)",
    "wins": "datasets where the entry is best",
    "datasets": "datasets finished", "splits": "splits finished (ok records)",
    "failures": "failure records (failed, timeout, crashed, out of memory): each counts as the worst result of "
                "its split",
    "skipped": "skipped records (capability limits): left out, never a loss",
    "unavailable": "unavailable records (library or weights missing here): left out exactly like skipped",
    "only_defaults": "tuned records whose only finished trial is the defaults trial",
    "clock_cut": "trials a clock cut short: the tuning clock (--tune-seconds) or the job's --time-limit",
    "trials_done": "trials the entry's tuning jobs ran (completed, pruned or failed), over the records that say",
    "trials_declared": "trials the budget declared for those records (--trials); fewer done than declared is a "
                       "bent budget",
    "short_uncut": "tuning records that ran fewer trials than declared with no trial cut by a clock",
    "still_improving": "datasets where the best validation value still improved over the last half of the trials "
                       "by more than the standard error across splits (bench.analysis.budget): more budget might "
                       "change the answer",
    "adequacy_datasets": "datasets still_improving was judged on (tuning entries with 2 or more trials)",
    "median_fit_s": "median fit seconds per split", "median_predict_s": "median predict seconds per split",
    "cpu_seconds": "median CPU seconds per split (the variant's whole cost, tuning included for tuned)",
    "gpu_seconds": "median GPU-held seconds per split",
    "normalized_on": "the metric norm_score and norm_minmax normalize (--normalize-metric): objective (ROC AUC / "
                     "log loss / RMSE) or paper (accuracy / R², as Grinsztajn et al. 2022)",
}
# The console view: (column, short header). It fits 100 columns; --wide shows every column.
CONSOLE = [("entry", "entry"), ("norm_score", "score"), ("seed_std", "±sd"), ("norm_minmax", "minmax"),
           ("mean_rank", "rank"), ("wins", "wins"), ("datasets", "ds"), ("failures", "fail"),
           ("skipped", "skip"), ("unavailable", "n/a"), ("trials_done", "trials"), ("still_improving", "impr"),
           ("only_defaults", "d-only"), ("clock_cut", "cut"),
           ("median_fit_s", "fit s")]
WIDE = CONSOLE[:1] + [("family", "family")] + CONSOLE[1:] + [
    ("splits", "splits"), ("median_predict_s", "pred s"), ("cpu_seconds", "CPU s"), ("gpu_seconds", "GPU s")]
SHORT = {  # the console legend, per shown column
    "norm_score": "score: mean quantile-normalized score (sort key)", "seed_std": "±sd: its seed std",
    "norm_minmax": "minmax: mean min-max score", "mean_rank": "rank: mean rank", "datasets": "ds: datasets finished",
    "failures": "fail / skip / n/a: failed / skipped / unavailable records (skip and n/a are left out, a failure "
                "is the worst result of its split)",
    "only_defaults": "d-only: tuned records holding only the defaults trial (of all)",
    "clock_cut": "cut: trials cut by the clock (--tune-seconds / --time-limit)",
    "trials_done": "trials: trials run / declared (tuning entries)",
    "still_improving": "impr: datasets where the best validation value still improved in the last half of the "
                       "trials by more than the noise (of those judged)",
    "median_fit_s": "fit s: median per split",
    "splits": "splits: splits finished", "cpu_seconds": "CPU s / GPU s: median device seconds per split",
}
SCORE_COLUMNS = ("norm_score", "norm_ci_low", "norm_ci_high", "seed_std", "norm_minmax")
SECONDS_COLUMNS = ("median_fit_s", "median_predict_s", "cpu_seconds", "gpu_seconds")
FRACTIONS = {"trials_done": "trials_declared", "still_improving": "adequacy_datasets"}  # shown as k/n


def compute(frame: pd.DataFrame, task_type: str | None = None,
            metric: stats.NormalizeMetric = stats.NormalizeMetric.OBJECTIVE) -> pd.DataFrame:
    """The leaderboard table (sorted by norm_score) for all datasets or one task type; `metric` is what
    the normalized scores normalize (stats.NormalizeMetric), named in the table's normalized_on column."""
    metric = stats.NormalizeMetric.parse(metric)
    if task_type is not None and not frame.empty:
        frame = frame[stats.per_dataset_value(frame, "task_type") == task_type]
    table = stats.entry_summary(frame, n_boot=0, metric=metric).assign(normalized_on=metric.value)
    table = table.reindex(columns=COLUMNS)
    if not stats.has_seed_spread(frame) or metric is not stats.NormalizeMetric.OBJECTIVE:
        table = table.drop(columns=SEED_COLUMNS)
    return table


def all_tables(frame: pd.DataFrame, metric: stats.NormalizeMetric = stats.NormalizeMetric.OBJECTIVE,
               ) -> dict[str, pd.DataFrame]:
    tables = {"overall": compute(frame, metric=metric)}
    task_types = set(stats.per_dataset_value(frame, "task_type").dropna()) if not frame.empty else set()
    for task_type in ("binary", "multiclass", "regression"):
        if task_type in task_types:
            tables[task_type] = compute(frame, task_type, metric)
    return tables


def normalized_on(tables: dict[str, pd.DataFrame]) -> stats.NormalizeMetric:
    """The metric the tables' normalized scores are on (their normalized_on column)."""
    table = next(iter(tables.values()), None)
    if table is None or table.empty:
        return stats.NormalizeMetric.OBJECTIVE
    return stats.NormalizeMetric.parse(table.normalized_on.iloc[0])


def seconds(value: float) -> str:
    if value is None or pd.isna(value):
        return "–"
    return "<0.01" if value < 0.01 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def cell(column: str, value, row=None) -> str:
    """One value as the leaderboard shows it ("–": no value: not applicable or not recorded)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    if column in SCORE_COLUMNS:
        return f"{value:.3f}"
    if column == "mean_rank":
        return f"{value:.2f}"
    if column.startswith("elo"):
        return f"{value:.0f}"
    if column == "gpu_seconds" and value == 0:
        return "–"  # no GPU held: not applicable (the CSV keeps the 0)
    if column in SECONDS_COLUMNS:
        return seconds(value)
    if column == "only_defaults" and row is not None:
        return f"{int(value)}/{int(row['splits'])}"
    if column in FRACTIONS and row is not None:
        return f"{int(value)}/{cell(FRACTIONS[column], row.get(FRACTIONS[column]))}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def legend(shown: list[tuple[str, str]], wide: bool = False,
           metric: stats.NormalizeMetric = stats.NormalizeMetric.OBJECTIVE) -> str:
    parts = [SHORT[c] for c, _ in shown if c in SHORT]
    tail = "" if wide else " `bench leaderboard --wide`: all columns, device seconds."
    normalized = f"Normalized on {stats.NormalizeMetric.parse(metric).label}. "
    return normalized + "; ".join(parts) + "; –: not applicable or not recorded." + tail


def left_out_notes(left_out: list[str]) -> list[str]:
    """The note (console and Markdown) naming the models the cross-model ensembles lacked
    (bench.analysis.budget.ensemble_notes); empty when none was left out."""
    if not left_out:
        return []
    return ["Left out of cross-model ensembles (their pool lacked these models' trials):",
            *[f"  - {line}" for line in left_out]]


# Left out of the default console view (so it fits 100 columns) and of the report's leaderboard (so it fits
# 1,280 px) when no entry has a value there (all "–" or 0).
OPTIONAL = ("skipped", "unavailable", "trials_done", "still_improving")


def console_view(table: pd.DataFrame, wide: bool = False) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """(column, header) pairs and formatted rows for the console; the entry is model/variant."""
    shown = [(c, h) for c, h in (WIDE if wide else CONSOLE) if c == "entry" or c in table.columns]
    rows = []
    for _, row in table.iterrows():
        row = row.copy()
        row["entry"] = stats.entry_label(row["model"], row["variant"])
        rows.append([cell(c, row[c], row) for c, _ in shown])
    if not wide:
        shown, rows = without_empty_optional([c for c, _ in shown], shown, rows)
    return shown, rows


def without_empty_optional(keys: list[str], columns: list, rows: list[list[str]]) -> tuple[list, list[list[str]]]:
    """`columns` and `rows` without the OPTIONAL columns (`keys`: the columns' frame names) that no row has a
    value in (all "–" or 0); the console and the report leave out the same ones."""
    empty = {i for i, k in enumerate(keys) if k in OPTIONAL and all(r[i] in ("–", "0") for r in rows)}
    return ([c for i, c in enumerate(columns) if i not in empty],
            [[v for i, v in enumerate(r) if i not in empty] for r in rows])


def to_markdown(tables: dict[str, pd.DataFrame], title: str = "Leaderboard", left_out: list[str] | None = None,
                first: str = "") -> str:
    """leaderboard.md; `first`: a section shown before the tables (the GBDT-vs-neural headline)."""
    columns = [c for c in COLUMNS if any(c in t.columns for t in tables.values())]
    legend = [f"- `{c}`: {DEFINITIONS[c]}" for c in columns if c in DEFINITIONS]
    lines = [f"# {title}", "", *([first, ""] if first else []),
             "Score per dataset = mean test objective over the splits an entry ran, each split the mean over "
             "model seeds (binary: ROC AUC, multiclass: log loss, regression: RMSE); a failed split counts as the "
             "worst score finished on that split, an entry that failed every split of a dataset is the worst "
             "there; skipped and unavailable records are left out. Empty cells (–): not applicable or not "
             "recorded.", "", f"Normalized scores on the {normalized_on(tables).label}.", "",
             *left_out_notes(left_out or []), *([""] if left_out else []), *legend, ""]
    for name, table in tables.items():
        lines += [f"## {name}", "", _markdown_table(table), ""]
    return "\n".join(lines)


def _markdown_table(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(c, row[c], row) for c in table.columns) + " |" for _, row in table.iterrows()]
    return "\n".join([header, rule, *body])


def write(tables: dict[str, pd.DataFrame], run_dir: Path, title: str, left_out: list[str] | None = None,
          first: str = "") -> list[Path]:
    paths = []
    for name, table in tables.items():
        path = run_dir / ("leaderboard.csv" if name == "overall" else f"leaderboard-{name}.csv")
        # never through a link, never outside the run folder (bench.safe_files)
        paths.append(write_text_atomic(path, table.to_csv(index=False, float_format="%.6g"), run_dir))
    paths.append(write_text_atomic(run_dir / "leaderboard.md", to_markdown(tables, title, left_out, first), run_dir))
    return paths
