"""The per-dataset family view behind the report's per-dataset plot and the learning curve: on each
dataset, each family's best entry, chosen on validation (never on test), at its normalized test score.

The choice is the GBDT-vs-neural headline's `best` scope (bench.analysis.families), by the same rule
(bench.analysis.stats.best_on_validation on stats.validation_scores: a failed split counts at the worst
validation score finished on that split, so an entry cannot look best by failing its hard splits), so the
plot's GBDT and neural points are the entries of the headline's per-dataset table. The candidates of a
family are all its entries: default, tuned and per-model ensembles, whose validation score is optimistic
(their member weights were fit on it), so they are usually chosen, as the headline's caveat says. The
cross-model ensemble (`ensemble_all`) is a family of its own ("ensemble").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis import stats
from bench.analysis.stats import entry_label

COLUMNS = ["dataset", "family", "entry", "val_score", "norm_score"]


def family_best(frame: pd.DataFrame, per_dataset: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, family): the family's entry with the best validation score on the dataset
    (stats.validation_scores: the headline's rule, a failed split at that split's worst validation
    score), at its normalized test score from `per_dataset` (bench.analysis.stats; a failed split at its
    floor there too). An entry that failed every split is chosen only when its family has nothing else."""
    if frame.empty or "val_score" not in frame:
        return pd.DataFrame(columns=COLUMNS)
    families = frame.assign(entry=[entry_label(m, v) for m, v in zip(frame.model, frame.variant)],
                            family=frame.family.where(frame.family.notna(), "other"))
    families = families[["entry", "family"]].drop_duplicates("entry")
    val = stats.validation_scores(frame).merge(families, on="entry")  # scored among all entries, as on test
    val = val.merge(per_dataset[["dataset", "entry", "norm_score"]], on=["dataset", "entry"], how="inner")
    val = val[np.isfinite(val.norm_score.astype(float))]
    best = stats.best_on_validation(val, ["dataset", "family"])
    val_score = np.where(np.isinf(best.val), np.nan, np.where(best.direction == "minimize", -best.val, best.val))
    return best.assign(val_score=val_score)[COLUMNS].reset_index(drop=True)
