"""The per-dataset family view behind the report's per-dataset plot: on each dataset, each family's best
entry, chosen on validation (never on test), at its normalized test score there.

Each entry is ranked on its validation score per dataset as the GBDT-vs-neural headline ranks it
(bench.analysis.stats.validation_scores: a failed split counts at the worst validation score finished
on that split, so an entry cannot look best by failing its hard splits). The candidates of a model
family are its models' default and tuned entries. Per-model ensembles are
left out: their validation score is the very score their member weights were selected on, so it would
beat their own family's entries on validation by construction. The cross-model ensemble
(`ensemble_all`) is a family of its own ("ensemble"). A tie on validation goes to the entry with the
lower name, so the choice is deterministic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis import stats
from bench.analysis.stats import entry_label
from bench.vocabulary import CROSS_MODEL, Variant

COLUMNS = ["dataset", "family", "entry", "val_score", "norm_score"]


def family_best(frame: pd.DataFrame, per_dataset: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, family): the family's entry with the best validation score on the dataset
    (stats.validation_scores: the headline's rule, a failed split at that split's worst validation
    score), at its normalized test score from `per_dataset` (bench.analysis.stats; a failed split at its
    floor there too). An entry that failed every split is chosen only when its family has nothing else."""
    if frame.empty or "val_score" not in frame:
        return pd.DataFrame(columns=COLUMNS)
    candidates = frame[(frame.variant != Variant.ENSEMBLE) | (frame.model == CROSS_MODEL)]
    families = candidates.assign(entry=[entry_label(m, v) for m, v in zip(candidates.model, candidates.variant)],
                                 family=candidates.family.where(candidates.family.notna(), "other"))
    families = families[["entry", "family"]].drop_duplicates("entry")
    val = stats.validation_scores(frame).merge(families, on="entry")  # scored among all entries, as on test
    val = val.merge(per_dataset[["dataset", "entry", "norm_score"]], on=["dataset", "entry"], how="inner")
    val = val[np.isfinite(val.norm_score.astype(float))]
    best = val.sort_values(["dataset", "family", "val", "entry"], ascending=[True, True, False, True])
    best = best.drop_duplicates(["dataset", "family"])
    val_score = np.where(np.isinf(best.val), np.nan, np.where(best.direction == "minimize", -best.val, best.val))
    return best.assign(val_score=val_score)[COLUMNS].reset_index(drop=True)
