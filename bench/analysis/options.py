"""The analysis options a user picks (`bench leaderboard` / `bench report` and the Python API), typed and
validated where they enter. A light module (no numpy, pandas or scikit-learn), so the command line can
offer them without importing the statistics. Their meaning lives where they are computed:
NormalizeMetric in bench.analysis.stats, EloWeighting in bench.analysis.elo.
"""

from __future__ import annotations

from enum import StrEnum


class _Option(StrEnum):
    @classmethod
    def option(cls) -> str:
        """The command-line option that sets it."""
        raise NotImplementedError

    @classmethod
    def parse(cls, value: str):
        """The member named `value`, or a ValueError that names the option, the value and the choices."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{cls.option()} {value!r} is not one of: {', '.join(m.value for m in cls)}") from None


class NormalizeMetric(_Option):
    """The test metric the normalized scores are computed on (bench.analysis.stats)."""
    OBJECTIVE = "objective"
    PAPER = "paper"

    @classmethod
    def option(cls) -> str:
        return "--normalize-metric"

    @property
    def label(self) -> str:
        """What a table says it normalized."""
        if self is NormalizeMetric.PAPER:
            return "paper metric: accuracy (classification) / R² (regression), as Grinsztajn et al. 2022"
        return "objective: ROC AUC (binary) / log loss (multiclass) / RMSE (regression)"


class EloWeighting(_Option):
    """How the Elo fit and the win rates weigh battles (bench.analysis.elo)."""
    DATASET = "dataset"
    TABARENA = "tabarena"

    @classmethod
    def option(cls) -> str:
        return "--elo-weighting"

    @property
    def label(self) -> str:
        """What a table or plot says about its Elo."""
        if self is EloWeighting.TABARENA:
            return "TabArena weighting: each battle 1/n_splits, almost no prior"
        return "dataset weighting: each dataset's battles sum to 1, weak prior"
