"""Learning curves (`bench run --train-sizes`, bench.train_sizes): the statistics of a run, one training-set
size at a time, and who wins as the data grows.

Statistics never mix sizes: an entry's records at 0.1 and at 1.0 of the data are different experiments, so
the leaderboard, its normalization and ranks, the headline and the report are computed for one size
(`bench leaderboard / report --train-size S`, default the largest; `choose`). Records written without
--train-sizes (no `train_size` field) into a folder that also holds sized ones are left out of every
size's statistics.

The learning-curve table (`curve`, learning-curve.csv beside the leaderboard files): per size, per family
(each family's best entry per dataset, chosen on validation as in bench.analysis.family_points) and per
entry, the mean normalized score over datasets, each size normalized on its own entries; and the median
number of training rows its ok records were fit on. The report plots the families' rows against the size
("who wins as data grows") when the run has more than one size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis import family_points, leaderboard, stats
from bench.errors import BenchError
from bench.safe_files import write_text_atomic
from bench.train_sizes import TrainSize
from bench.vocabulary import Status

SIZE = "train_size"  # the records' field and the frame's column
OPTION = "--train-size"
CURVE_FILE = "learning-curve.csv"
COLUMNS = ["train_size", "size", "kind", "level", "name", "family", "norm_score", "datasets", "median_n_train",
           "normalized_on"]


def _size(label: str) -> TrainSize:
    return TrainSize.parse(label, "train_size")


def sizes(frame: pd.DataFrame) -> list[str]:
    """The training-set sizes of the frame's records, smallest first ([] for a run without --train-sizes)."""
    if SIZE not in frame:
        return []
    return sorted({str(s) for s in frame[SIZE].dropna()}, key=lambda s: _size(s).order)


def at_size(frame: pd.DataFrame, size: str) -> pd.DataFrame:
    return frame[frame[SIZE] == size].reset_index(drop=True)


def finished_sizes(frame: pd.DataFrame) -> list[str]:
    """The sizes with at least one ok record (a size every job was too small for has nothing to rank)."""
    return [s for s in sizes(frame) if (at_size(frame, s).status == Status.OK).any()]


def records_at(records: list[dict], size: str | None) -> list[dict]:
    """The records of one size (all of them when size is None: a run without sizes)."""
    return records if size is None else [r for r in records if r.get(SIZE) == size]


def choose(frame: pd.DataFrame, wanted: str | None = None) -> tuple[pd.DataFrame, str | None, list[str]]:
    """(the frame of one size, that size, every size of the run): `wanted` (as --train-size gives it), else
    the largest with an ok record; a run without sizes is returned whole (size None)."""
    present = sizes(frame)
    if not present:
        if wanted is not None:
            raise BenchError(f"{OPTION} {wanted}: the run has no records made with --train-sizes")
        return frame, None, []
    if wanted is None:
        size = (finished_sizes(frame) or present)[-1]
    else:
        size = TrainSize.parse(wanted, OPTION).label
        if size not in present:
            raise BenchError(f"{OPTION} {wanted}: the run has no records of that size; its sizes: "
                             f"{', '.join(present)}")
    return at_size(frame, size), size, present


def note(size: str | None, present: list[str]) -> str:
    """The console's line naming the sizes of the run and the one shown ("" without sizes)."""
    if size is None:
        return ""
    others = f"; `{OPTION} S` shows another, {CURVE_FILE} has every size" if len(present) > 1 else ""
    return f"train sizes in this run: {', '.join(present)}; the tables below are for train size {size}{others}"


def curve(frame: pd.DataFrame, records: list[dict],
          metric: stats.NormalizeMetric = stats.NormalizeMetric.OBJECTIVE) -> pd.DataFrame:
    """The learning-curve table (see the module doc); empty without sizes."""
    rows = []
    for label in finished_sizes(frame):
        sub = at_size(frame, label)
        size = _size(label)
        n_train = [r["n_train"] for r in records_at(records, label)
                   if r.get("status") == Status.OK and isinstance(r.get("n_train"), int)]
        common = {"train_size": label, "size": size.value, "kind": "rows" if size.rows else "fraction",
                  "median_n_train": float(np.median(n_train)) if n_train else np.nan, "normalized_on": metric.value}
        scores = stats.per_dataset(sub, metric)  # once per size: the family and the entry rows share it
        best = family_points.family_best(sub, scores)
        for family, g in best.groupby("family", sort=True):
            rows.append({**common, "level": "family", "name": family, "family": family,
                         "norm_score": g.norm_score.astype(float).mean(), "datasets": g.dataset.nunique()})
        for r in stats.entry_summary(sub, n_boot=0, metric=metric, scores=scores).itertuples():
            rows.append({**common, "level": "entry", "name": r.entry, "family": r.family,
                         "norm_score": r.norm_score, "datasets": r.datasets})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_files(frame: pd.DataFrame, records: list[dict], run_dir: Path,
                metric: stats.NormalizeMetric = stats.NormalizeMetric.OBJECTIVE) -> list[Path]:
    """leaderboard-size-<S>.csv for every size with an ok record and learning-curve.csv; nothing for a run
    without sizes."""
    present = finished_sizes(frame)
    if not present:
        return []
    paths = []
    for label in present:
        table = leaderboard.compute(at_size(frame, label), metric=metric).assign(train_size=label)
        paths.append(write_text_atomic(run_dir / f"leaderboard-size-{label}.csv",
                                       table.to_csv(index=False, float_format="%.6g"), run_dir))
    table = curve(frame, records, metric)
    paths.append(write_text_atomic(run_dir / CURVE_FILE, table.to_csv(index=False, float_format="%.6g"), run_dir))
    return paths


def figure(table: pd.DataFrame):
    """Normalized score (each family's best entry per dataset, mean over datasets) against the training size,
    log scale, one line per family in its palette colour; None with fewer than two sizes. Row-count sizes
    are left out when fractions are there too (their x-axes differ)."""
    from bench.analysis import plots  # matplotlib: only when a figure is drawn

    fam = table[table["level"] == "family"]
    if (fam["kind"] == "fraction").any():
        fam = fam[fam["kind"] == "fraction"]
    if fam["train_size"].nunique() < 2:
        return None
    fig, ax = plots.plt.subplots(figsize=(7, 4.2))
    for family in [f for f in plots.FAMILY_COLOURS if f in set(fam["family"])]:
        line = fam[fam["family"] == family].sort_values("size")
        ax.plot(line["size"], line.norm_score, marker="o", color=plots.family_colour(family), label=family, lw=1.8)
    ax.set_xscale("log")
    ticks = sorted(fam["size"].unique())
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    kind = "fraction of each split's training + validation rows" if (fam["kind"] == "fraction").all() else "rows"
    ax.set_xlabel(f"training-set size ({kind}, log scale)")
    ax.set_ylabel("mean normalized score\n(each family's best entry per dataset)")
    ax.set_title("Who wins as data grows: normalized score per family and training size", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(title="family", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
