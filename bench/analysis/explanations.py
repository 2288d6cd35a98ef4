"""The files `bench explain` writes into a run folder, and the report's section built from them.

`bench explain RUN --dataset D --model M` (bench.explain.run) writes, per dataset and model,
    explain/<dataset>/<model>/explain.json          what was explained and how (refit, method, scores)
    explain/<dataset>/<model>/shap_importance.csv   mean |SHAP| share per feature, largest first
    explain/<dataset>/<model>/shap_values.npz       the SHAP values (rows, features, outputs) and expected values
    explain/<dataset>/<model>/influence.csv         GBDTs: the training rows with the largest influence on the
                                                    test loss (BoostIn)
The report reads them as it reads records: it never fits a model (bench.analysis does not import
bench.explain). This module owns the layout; the writer takes the names from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

EXPLAIN_DIR = "explain"
SUMMARY = "explain.json"
IMPORTANCE = "shap_importance.csv"
VALUES = "shap_values.npz"
INFLUENCE = "influence.csv"
TOP = 10  # features and rows the report shows


def folder(run_dir: Path, dataset: str, model: str) -> Path:
    return Path(run_dir) / EXPLAIN_DIR / dataset / model


@dataclass
class Explained:
    """One model's explanation on one dataset, as read back from its files."""

    dataset: str
    model: str
    summary: dict
    importance: pd.DataFrame  # feature, share
    influence: pd.DataFrame | None


def read_all(run_dir: Path) -> list[Explained]:
    """Every explanation in the run folder (those with a readable summary), by dataset then model."""
    out = []
    for summary_path in sorted((Path(run_dir) / EXPLAIN_DIR).glob(f"*/*/{SUMMARY}")):
        where = summary_path.parent
        try:
            summary = json.loads(summary_path.read_text())
            importance = pd.read_csv(where / IMPORTANCE)
        except (OSError, ValueError):
            continue  # a half-written or foreign folder: not an explanation
        influence = pd.read_csv(where / INFLUENCE) if (where / INFLUENCE).exists() else None
        out.append(Explained(where.parent.name, where.name, summary, importance, influence))
    return out


@dataclass
class Section:
    """A report table (plain-text rows) with its note."""

    heading: str
    header: list[str]
    rows: list[list[str]]
    note: str


def feature_sections(found: list[Explained], top: int = TOP) -> list[Section]:
    """Per dataset: the top features of every explained model side by side (feature and its share)."""
    sections = []
    for dataset in sorted({e.dataset for e in found}):
        models = [e for e in found if e.dataset == dataset]
        header = ["rank"] + [f"{e.model} ({e.summary.get('variant', '?')})" for e in models]
        rows = []
        for rank in range(min(top, max(len(e.importance) for e in models))):
            cells = [str(rank + 1)]
            for e in models:
                if rank < len(e.importance):
                    r = e.importance.iloc[rank]
                    cells.append(f"{r['feature']} ({float(r['share']):.1%})")
                else:
                    cells.append("")
            rows.append(cells)
        notes = [f"{e.model}: {e.summary.get('method', '?')}, {e.summary.get('rows_explained', '?')} test rows; "
                 f"{e.summary.get('refit_note', '')}" for e in models]
        sections.append(Section(f"Why models win: top features on {dataset}", header, rows,
                                "Share of the mean |SHAP value| per feature (original columns). " + " ".join(notes)))
    return sections


def influence_sections(found: list[Explained], top: int = TOP) -> list[Section]:
    """Per GBDT explanation: the training rows with the largest influence on the test loss."""
    sections = []
    for e in found:
        if e.influence is None or e.influence.empty:
            continue
        shown = e.influence.head(top)
        header = [c for c in ("dataset_row", "row", "kind", "removal_effect", "label") if c in shown.columns]
        rows = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r]
                for r in shown[header].itertuples(index=False)]
        sections.append(Section(
            f"Influential training rows: {e.model} on {e.dataset}", header, rows,
            "BoostIn (Brophy et al. 2023): the estimated rise of the total test loss if the training row were "
            "removed; negative = harmful (removing it would lower the test loss), positive = helpful. "
            f"dataset_row: the row in the dataset file; row: its position in the training part. "
            f"Leaf values recomputed to within {float(e.summary.get('leaf_fit_error', float('nan'))):.1e} "
            "(relative) of the model's."))
    return sections


def sections(run_dir: Path) -> list[Section]:
    """The report's explanation sections ([] when `bench explain` wrote nothing into the run folder)."""
    found = read_all(run_dir)
    return feature_sections(found) + influence_sections(found) if found else []
