"""The analysis options a user picks (`bench leaderboard` / `bench report` and the Python API), typed and
validated where they enter. A light module (no numpy, pandas or scikit-learn), so the command line can
offer them without importing the statistics. Their meaning lives where they are computed:
NormalizeMetric in bench.analysis.stats, EloWeighting in bench.analysis.elo, TimeAxis in
bench.analysis.plots.
"""

from __future__ import annotations

from enum import StrEnum


class _Option(StrEnum):
    @classmethod
    def parse(cls, value: str):
        """The member named `value`, or a ValueError that names the option, the value and the choices."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{OPTIONS[cls]} {value!r} is not one of: {', '.join(m.value for m in cls)}") from None

    @property
    def label(self) -> str:
        """What a table or plot that uses it says."""
        return LABELS[self]


class NormalizeMetric(_Option):
    """The test metric the normalized scores are computed on (bench.analysis.stats)."""
    OBJECTIVE = "objective"
    PAPER = "paper"


class EloWeighting(_Option):
    """How the Elo fit and the win rates weigh battles (bench.analysis.elo)."""
    DATASET = "dataset"
    TABARENA = "tabarena"


class TimeAxis(_Option):
    """The x-axis of the report's time-vs-score plot (bench.analysis.plots.time_vs_score)."""
    FIT = "fit"
    TUNING = "tuning"


OPTIONS = {NormalizeMetric: "--normalize-metric", EloWeighting: "--elo-weighting", TimeAxis: "--time-axis"}
LABELS = {
    NormalizeMetric.OBJECTIVE: "objective: ROC AUC (binary) / log loss (multiclass) / RMSE (regression)",
    NormalizeMetric.PAPER: "paper metric: accuracy (classification) / R² (regression), as Grinsztajn et al. 2022",
    EloWeighting.DATASET: "dataset weighting: each dataset's battles sum to 1, weak prior",
    EloWeighting.TABARENA: "TabArena weighting: each battle 1/n_splits, almost no prior",
    TimeAxis.FIT: "fit + predict s: median seconds per split of the final model's fit and test prediction",
    TimeAxis.TUNING: "CPU s: median CPU seconds per split the whole variant cost (tuned and ensemble: every trial "
                     "and the refits)",
}
