"""Critical-difference analysis (Demšar 2006, "Statistical Comparisons of Classifiers over Multiple
Data Sets", JMLR 7): Friedman test over the datasets x entries rank matrix, then the Nemenyi post-hoc
test (scikit-posthocs) for every pair; CD = q_alpha / sqrt(2) * sqrt(k (k + 1) / (6 N)) with q_alpha
the studentized-range quantile (scipy) for k entries. Entries whose mean ranks differ by less than
CD are not significantly different.

Only datasets where every entry took part (finished or failed; failures rank last) are used, because
the Friedman test needs complete blocks; which datasets were dropped is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scikit_posthocs
from scipy import stats as scipy_stats

from bench.analysis.stats import add_ranks, dataset_scores, pivot


@dataclass
class CDResult:
    mean_ranks: pd.Series  # entry -> mean rank (1 = best), sorted
    friedman_statistic: float
    friedman_p: float
    cd: float
    alpha: float
    nemenyi_p: pd.DataFrame  # entries x entries p-values
    n_datasets: int
    dropped_datasets: list[str] = field(default_factory=list)

    @property
    def significant(self) -> bool:
        return self.friedman_p < self.alpha


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    q = scipy_stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


def critical_difference(frame: pd.DataFrame, alpha: float = 0.05) -> CDResult | None:
    """None when the test cannot run (fewer than 3 entries or 2 complete datasets)."""
    ranks = pivot(add_ranks(dataset_scores(frame)), "rank")
    complete = ranks.dropna()
    dropped = sorted(set(ranks.index) - set(complete.index))
    k, n = complete.shape[1], complete.shape[0]
    if k < 3 or n < 2:
        return None
    statistic, p = scipy_stats.friedmanchisquare(*[complete[c].to_numpy() for c in complete.columns])
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(complete.to_numpy())
    nemenyi.index = nemenyi.columns = complete.columns
    return CDResult(complete.mean().sort_values(), float(statistic), float(p), nemenyi_cd(k, n, alpha),
                    alpha, nemenyi, n, dropped)
