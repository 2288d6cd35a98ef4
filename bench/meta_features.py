"""Dataset meta-features: what a dataset is like, recorded once per dataset of a run, so that the report can
ask on which kind of data neural models beat GBDTs (bench.analysis.when_neural_wins).

    compute(dataset) -> {"n_rows": ..., "n_features": ..., ...}   (META_FEATURES says what each one is)
    write(dataset, data_dir, root) / read(data_dir, content_hash)  <run>/data/<name>/meta_features.json

They are computed once per dataset content and definitions: a copy is kept in the bench cache
(cache_root()/meta-features/<content hash>.json), so a new run folder on the same data does not pay the
mutual-information estimate again (seconds on a large dataset).

Every value is computed on the whole dataset (before any split; none of it reaches a model), except
the mutual information, which is estimated on at most MI_ROWS rows drawn with a fixed seed
(bench.seeding) so that a large dataset costs seconds, not minutes. Mutual information is scikit-learn's
nearest-neighbour estimate (Kraskov et al. 2004; Ross 2014 for a discrete target) in nats, with
categorical features as discrete codes; missing numeric values are imputed with the column's median and
a missing category is a category of its own (the estimator takes no missing values).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.datasets import Dataset, cache_root
from bench.json_files import write_json_atomic
from bench.seeding import derive_seed

FILE = "meta_features.json"
MI_ROWS = 2000
VERSION = 1  # of the definitions below: a file of another version is computed again

META_FEATURES: dict[str, str] = {
    "n_rows": "rows",
    "n_features": "feature columns",
    "categorical_share": "share of the features that are categorical (0 without features)",
    "n_classes": "classes (0 for regression)",
    "class_imbalance": "rows of the most frequent class / rows of the rarest (1 = balanced; none for regression)",
    "missing_share": "share of feature cells that are missing",
    "target_skew": "skewness of the target (Fisher-Pearson, scipy.stats.skew; none for classification)",
    "mi_mean": "mean mutual information between a feature and the target (nats)",
    "mi_max": "largest mutual information between a feature and the target (nats)",
}


def compute(ds: Dataset, seed: int = 0) -> dict[str, float | int | None]:
    """The META_FEATURES of a dataset (None where one does not apply or cannot be computed)."""
    n_features = ds.n_features
    cells = ds.n_rows * n_features
    out: dict[str, float | int | None] = {
        "n_rows": ds.n_rows, "n_features": n_features,
        "categorical_share": len(ds.categorical) / n_features if n_features else 0.0,
        "n_classes": ds.n_classes if ds.task_type != "regression" else 0,
        "class_imbalance": None, "missing_share": float(ds.X.isna().to_numpy().sum() / cells) if cells else 0.0,
        "target_skew": None, "mi_mean": None, "mi_max": None,
    }
    y = np.asarray(ds.y)
    if ds.task_type == "regression":
        from scipy.stats import skew

        out["target_skew"] = float(skew(y.astype(float))) if len(y) > 2 and np.ptp(y) > 0 else None
    elif len(y):
        counts = np.bincount(y.astype(int))
        counts = counts[counts > 0]
        out["class_imbalance"] = float(counts.max() / counts.min())
    mi = mutual_information(ds, seed)
    if mi is not None and len(mi):
        out["mi_mean"], out["mi_max"] = float(np.mean(mi)), float(np.max(mi))
    return out


def mutual_information(ds: Dataset, seed: int = 0) -> np.ndarray | None:
    """Per feature, its estimated mutual information with the target (see the module doc); None when the
    dataset has no features or too few rows for the estimator's neighbours."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    if ds.n_features == 0 or ds.n_rows < 10:
        return None
    rows = np.arange(ds.n_rows)
    if ds.n_rows > MI_ROWS:
        rows = np.sort(np.random.default_rng(derive_seed(seed, "meta-features")).choice(rows, MI_ROWS, replace=False))
    X = ds.X.iloc[rows]
    columns, discrete = [], []
    for name in X.columns:
        col = X[name]
        if name in ds.categorical:
            columns.append(col.cat.codes.to_numpy(dtype=float))  # missing: code -1, a category of its own
            discrete.append(True)
        else:
            values = col.to_numpy(dtype=float)
            fill = np.nanmedian(values) if np.isfinite(values).any() else 0.0
            columns.append(np.where(np.isnan(values), fill, values))
            discrete.append(False)
    matrix, y = np.column_stack(columns), np.asarray(ds.y)[rows]
    estimate = mutual_info_regression if ds.task_type == "regression" else mutual_info_classif
    try:
        return estimate(matrix, y, discrete_features=np.array(discrete), random_state=derive_seed(seed, "mi"))
    except ValueError:  # data the estimator refuses (a class with too few rows for its neighbours): unknown
        return None


def write(ds: Dataset, data_dir: Path, root: Path | None = None) -> dict:
    """The dataset's meta-features, from data_dir/meta_features.json when it holds them for this data
    (its content hash) and these definitions, else computed and written there."""
    known = read(data_dir, ds.content_hash)
    if known is not None:
        return known
    shared = _cache_dir(ds.content_hash)
    values = read(shared, ds.content_hash)
    stored = {"version": VERSION, "content_hash": ds.content_hash, "meta_features": values}
    if values is None:
        stored["meta_features"] = values = compute(ds)
        try:
            write_json_atomic(shared / FILE, stored)
        except OSError:  # a read-only or full cache costs the next run the estimate, nothing else
            pass
    write_json_atomic(Path(data_dir) / FILE, stored, root)
    return values


def _cache_dir(content_hash: str) -> Path:
    return cache_root() / "meta-features" / f"{content_hash}-v{VERSION}"


def read(data_dir: Path, content_hash: str | None = None) -> dict | None:
    """The meta-features stored in data_dir (None when missing, damaged, of other data or definitions)."""
    try:
        stored = json.loads((Path(data_dir) / FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("version") != VERSION:
        return None
    if not isinstance(stored.get("meta_features"), dict):
        return None
    if content_hash is not None and stored.get("content_hash") != content_hash:
        return None
    return stored["meta_features"]


def as_frame(by_dataset: dict[str, dict]) -> pd.DataFrame:
    """{dataset: meta-features} as a frame indexed by dataset, one column per META_FEATURES key."""
    frame = pd.DataFrame.from_dict(by_dataset, orient="index").reindex(columns=list(META_FEATURES))
    frame.index.name = "dataset"
    return frame.apply(pd.to_numeric, errors="coerce")
