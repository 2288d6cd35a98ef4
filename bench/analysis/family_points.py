"""The per-dataset family view behind the report's per-dataset plot: on each dataset, each family's best
entry, chosen on validation (never on test), at its normalized test score there.

The candidates of a model family are its models' default and tuned entries. Per-model ensembles are
left out: their validation score is the very score their member weights were selected on, so it would
beat their own family's entries on validation by construction. The cross-model ensemble
(`ensemble_all`) is a family of its own ("ensemble"). A tie on validation goes to the entry with the
lower name, so the choice is deterministic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.stats import entry_label
from bench.vocabulary import CROSS_MODEL, Status, Variant

COLUMNS = ["dataset", "family", "entry", "val_score", "norm_score"]


def family_best(frame: pd.DataFrame, per_dataset: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, family): the family's entry with the best mean validation score over the
    dataset's splits (ok records), its normalized score from `per_dataset` (bench.analysis.stats)."""
    ok = frame[(frame.status == Status.OK) & ((frame.variant != Variant.ENSEMBLE) | (frame.model == CROSS_MODEL))]
    if ok.empty or "val_score" not in ok:
        return pd.DataFrame(columns=COLUMNS)
    ok = ok.assign(entry=[entry_label(m, v) for m, v in zip(ok.model, ok.variant)],
                   val=pd.to_numeric(ok.val_score, errors="coerce"),
                   family=ok.family.where(ok.family.notna(), "other"))
    val = ok.groupby(["dataset", "entry", "family"], as_index=False).agg(val_score=("val", "mean"),
                                                                         direction=("direction", "first"))
    val = val.merge(per_dataset[per_dataset.state == Status.OK][["dataset", "entry", "norm_score"]],
                    on=["dataset", "entry"], how="inner")
    val = val[np.isfinite(val.val_score) & np.isfinite(val.norm_score.astype(float))]
    val = val.assign(signed=np.where(val.direction == "minimize", -val.val_score, val.val_score))
    best = val.sort_values(["dataset", "family", "signed", "entry"], ascending=[True, True, False, True])
    return best.drop_duplicates(["dataset", "family"])[COLUMNS].reset_index(drop=True)
