"""Leaderboard: the per-entry table of `bench.analysis.stats.entry_summary`, overall and per task type,
written as CSV and Markdown and shown on the console. Nothing is computed here: the definitions (and
the rule that skipped and unavailable records are left out while failures count as worst) live in
bench.analysis.stats and bench.analysis.budget, and the report shows the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis import stats
from bench.safe_files import write_text_atomic

COLUMNS = ["model", "variant", "family", "norm_score", "seed_std", "norm_minmax", "mean_rank", "wins",
           "datasets", "splits", "failures", "skipped", "unavailable", "only_defaults", "clock_cut",
           "median_fit_s", "median_predict_s", "cpu_seconds", "gpu_seconds"]
SEED_COLUMNS = ["seed_std"]  # dropped when no record was tested with more than one model seed
DEFINITIONS = {
    "norm_score": "mean over datasets of the quantile-normalized score (Grinsztajn et al. 2022: per dataset the "
                  "10% quantile (classification) / median (regression, truncated at 0) of the entries' scores "
                  "-> 0, best -> 1); the sort key",
    "seed_std": "std over model seeds (--seeds) on the norm_score scale",
    "norm_minmax": "mean over datasets of the min-max normalized score (worst 0, best 1)",
    "mean_rank": "mean rank per dataset (1 = best)",
    "wins": "datasets where the entry is best",
    "datasets": "datasets finished", "splits": "splits finished (ok records)",
    "failures": "failure records (failed, timeout, crashed, out of memory): the entry counts as worst there",
    "skipped": "skipped records (capability limits): left out, never a loss",
    "unavailable": "unavailable records (library or weights missing here): left out exactly like skipped",
    "only_defaults": "tuned records whose only finished trial is the defaults trial",
    "clock_cut": "trials a clock cut short: the tuning clock (--tune-seconds) or the job's --time-limit",
    "median_fit_s": "median fit seconds per split", "median_predict_s": "median predict seconds per split",
    "cpu_seconds": "median CPU seconds per split (the variant's whole cost, tuning included for tuned)",
    "gpu_seconds": "median GPU-held seconds per split",
}
# The console view: (column, short header). It fits 100 columns; --wide shows every column.
CONSOLE = [("entry", "entry"), ("norm_score", "score"), ("seed_std", "±sd"), ("norm_minmax", "minmax"),
           ("mean_rank", "rank"), ("wins", "wins"), ("datasets", "ds"), ("failures", "fail"),
           ("skipped", "skip"), ("unavailable", "n/a"), ("only_defaults", "d-only"), ("clock_cut", "cut"),
           ("median_fit_s", "fit s")]
WIDE = CONSOLE[:1] + [("family", "family")] + CONSOLE[1:] + [
    ("splits", "splits"), ("median_predict_s", "pred s"), ("cpu_seconds", "cpu s"), ("gpu_seconds", "gpu s")]
SHORT = {  # the console legend, per shown column
    "norm_score": "score: mean quantile-normalized score (sort key)", "seed_std": "±sd: its seed std",
    "norm_minmax": "minmax: mean min-max score", "mean_rank": "rank: mean rank", "datasets": "ds: datasets finished",
    "failures": "fail / skip / n/a: failed / skipped / unavailable records (skip and n/a are left out, failures "
                "count as worst)",
    "only_defaults": "d-only: tuned records holding only the defaults trial (of all)",
    "clock_cut": "cut: trials cut by the clock (--tune-seconds / --time-limit)",
    "median_fit_s": "fit s: median per split",
    "splits": "splits: splits finished", "cpu_seconds": "cpu s / gpu s: median device seconds per split",
}
SCORE_COLUMNS = ("norm_score", "norm_ci_low", "norm_ci_high", "seed_std", "norm_minmax")
SECONDS_COLUMNS = ("median_fit_s", "median_predict_s", "cpu_seconds", "gpu_seconds")


def compute(frame: pd.DataFrame, task_type: str | None = None) -> pd.DataFrame:
    """The leaderboard table (sorted by norm_score) for all datasets or one task type."""
    if task_type is not None and not frame.empty:
        frame = frame[stats.per_dataset_value(frame, "task_type") == task_type]
    table = stats.entry_summary(frame, n_boot=0).reindex(columns=COLUMNS)
    if not stats.has_seed_spread(frame):
        table = table.drop(columns=SEED_COLUMNS)
    return table


def all_tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    tables = {"overall": compute(frame)}
    task_types = set(stats.per_dataset_value(frame, "task_type").dropna()) if not frame.empty else set()
    for task_type in ("binary", "multiclass", "regression"):
        if task_type in task_types:
            tables[task_type] = compute(frame, task_type)
    return tables


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
    if column in SECONDS_COLUMNS:
        return seconds(value)
    if column == "only_defaults" and row is not None:
        return f"{int(value)}/{int(row['splits'])}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def legend(shown: list[tuple[str, str]], wide: bool = False) -> str:
    parts = [SHORT[c] for c, _ in shown if c in SHORT]
    tail = "" if wide else " `bench leaderboard --wide`: all columns, device seconds."
    return "; ".join(parts) + "; –: not applicable or not recorded." + tail


def console_view(table: pd.DataFrame, wide: bool = False) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """(column, header) pairs and formatted rows for the console; the entry is model/variant."""
    shown = [(c, h) for c, h in (WIDE if wide else CONSOLE) if c == "entry" or c in table.columns]
    rows = []
    for _, row in table.iterrows():
        row = row.copy()
        row["entry"] = stats.entry_label(row["model"], row["variant"])
        rows.append([cell(c, row[c], row) for c, _ in shown])
    return shown, rows


def to_markdown(tables: dict[str, pd.DataFrame], title: str = "Leaderboard") -> str:
    columns = [c for c in COLUMNS if any(c in t.columns for t in tables.values())]
    legend = [f"- `{c}`: {DEFINITIONS[c]}" for c in columns if c in DEFINITIONS]
    lines = [f"# {title}", "",
             "Score per dataset = mean test objective over the splits an entry finished, each split the mean over "
             "model seeds (binary: ROC AUC, multiclass: log loss, regression: RMSE). Failures count as the worst "
             "entry on their dataset; skipped and unavailable records are left out. Empty cells (–): not "
             "applicable or not recorded.", "", *legend, ""]
    for name, table in tables.items():
        lines += [f"## {name}", "", _markdown_table(table), ""]
    return "\n".join(lines)


def _markdown_table(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(c, row[c], row) for c in table.columns) + " |" for _, row in table.iterrows()]
    return "\n".join([header, rule, *body])


def write(tables: dict[str, pd.DataFrame], run_dir: Path, title: str) -> list[Path]:
    paths = []
    for name, table in tables.items():
        path = run_dir / ("leaderboard.csv" if name == "overall" else f"leaderboard-{name}.csv")
        # never through a link, never outside the run folder (bench.safe_files)
        paths.append(write_text_atomic(path, table.to_csv(index=False, float_format="%.6g"), run_dir))
    paths.append(write_text_atomic(run_dir / "leaderboard.md", to_markdown(tables, title), run_dir))
    return paths
