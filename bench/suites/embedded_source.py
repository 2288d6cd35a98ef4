"""Real datasets that ship inside the installed scikit-learn, so the demo suite runs with no network
and no shared data folder.

Two kinds:
* OpenML datasets stored as scikit-learn test fixtures (sklearn/datasets/tests/data/openml/id_<N>/):
  OpenML's own description (api-v1-jd-N.json.gz), feature list (api-v1-jdf-N.json.gz), qualities
  (api-v1-jdq-N.json.gz) and the ARFF file. Only fixtures holding the FULL dataset are used; the
  row count is checked against OpenML's NumberOfInstances on every load.
* scikit-learn's bundled tables (sklearn.datasets.load_*).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd

from bench.datasets import Dataset, make_dataset
from bench.errors import DataUnavailableError

# name -> (OpenML dataset id, {column: reason} always dropped, note)
OPENML_FIXTURES = {
    "kr-vs-kp": (3, {}, "King+Rook vs King+Pawn chess endgames (UCI)"),
    "titanic": (40945, {
        "boat": "recorded after the outcome (lifeboat number): leaks the target",
        "body": "recorded after the outcome (body identification number): leaks the target",
    }, "Titanic passengers; boat and body dropped because they leak the target"),
    "penguins": (42585, {}, "Palmer penguins (palmerpenguins R package); one row has sex '_', "
                          "kept as on OpenML"),
    "cpu": (561, {}, "relative CPU performance (UCI computer hardware), regression"),
}

# name -> (sklearn loader, task type, licence, note)
SKLEARN_TABLES = {
    "breast_cancer": ("load_breast_cancer", "binary", "CC BY 4.0 (UCI Machine Learning Repository)",
                      "Breast Cancer Wisconsin (Diagnostic), UCI; sklearn/datasets/data/breast_cancer.csv"),
    "wine": ("load_wine", "multiclass", "CC BY 4.0 (UCI Machine Learning Repository)",
             "Wine recognition, UCI; sklearn/datasets/data/wine_data.csv"),
    "digits": ("load_digits", "multiclass", "CC BY 4.0 (UCI Machine Learning Repository)",
               "Optical Recognition of Handwritten Digits (UCI test set, 1797 images of 8x8); "
               "sklearn/datasets/data/digits.csv.gz"),
    "diabetes": ("load_diabetes", "regression",
                 "distributed with scikit-learn (BSD-3-Clause); from Efron et al. (2004), "
                 "Least Angle Regression, Annals of Statistics",
                 "diabetes progression, unscaled; sklearn/datasets/data/diabetes_data_raw.csv.gz"),
}

DATASETS = sorted([*OPENML_FIXTURES, *SKLEARN_TABLES])


def load(name: str, *, display_name: str | None = None, drop: list[str] | None = None) -> Dataset:
    if name in OPENML_FIXTURES:
        return _load_fixture(name, display_name or name, drop or [])
    if name in SKLEARN_TABLES:
        return _load_sklearn_table(name, display_name or name, drop or [])
    raise DataUnavailableError(f"unknown embedded dataset '{name}'; valid: {', '.join(DATASETS)}")


def fingerprint() -> str:
    """Changes when the bundled data may have changed (a different scikit-learn)."""
    return f"scikit-learn {_sklearn_version()}"


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _fixture_dir(did: int) -> Path:
    import sklearn

    return Path(sklearn.__file__).resolve().parent / "datasets" / "tests" / "data" / "openml" / f"id_{did}"


def _read_json_gz(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def _load_fixture(name: str, display_name: str, drop: list[str]) -> Dataset:
    import arff  # liac-arff, a dependency of openml

    did, leaks, note = OPENML_FIXTURES[name]
    folder = _fixture_dir(did)
    arffs = sorted(folder.glob("data-v1-dl-*.arff.gz"))
    try:
        desc = _read_json_gz(folder / f"api-v1-jd-{did}.json.gz")["data_set_description"]
        feats = _read_json_gz(folder / f"api-v1-jdf-{did}.json.gz")["data_features"]["feature"]
        quals = _read_json_gz(folder / f"api-v1-jdq-{did}.json.gz")["data_qualities"]["quality"]
        if len(arffs) != 1:
            raise FileNotFoundError(f"expected one data-v1-dl-*.arff.gz in {folder}, found {len(arffs)}")
        with gzip.open(arffs[0], "rt", encoding="utf-8") as f:
            data = arff.load(f)
    except (OSError, KeyError, ValueError, arff.ArffException) as e:
        raise DataUnavailableError(
            f"embedded dataset '{name}' (OpenML dataset {did}) cannot be read from scikit-learn's test "
            f"fixtures at {folder}: {e}. It needs a scikit-learn wheel that ships its test data "
            f"(the PyPI wheel does)."
        ) from e

    n_expected = int(float(next(q["value"] for q in quals if q["name"] == "NumberOfInstances")))
    if len(data["data"]) != n_expected:
        raise DataUnavailableError(
            f"embedded dataset '{name}': {arffs[0]} has {len(data['data'])} rows but OpenML dataset "
            f"{did} has {n_expected}; this scikit-learn ships a subset, which the demo suite must not use"
        )

    frame = pd.DataFrame(data["data"], columns=[a[0] for a in data["attributes"]])
    kinds = {f["name"]: f["data_type"] for f in feats}
    ignored = {f["name"] for f in feats
               if f.get("is_ignore") == "true" or f.get("is_row_identifier") == "true"}
    categorical = []
    for col, spec in data["attributes"]:
        if isinstance(spec, list):  # nominal: keep OpenML's declared values ('?' is ARFF's missing)
            declared = list(dict.fromkeys(v for v in spec if v not in (None, "?")))
            frame[col] = pd.Categorical(frame[col], categories=declared)
            categorical.append(col)
        elif kinds.get(col) == "numeric" or str(spec).upper() in ("NUMERIC", "REAL", "INTEGER"):
            frame[col] = pd.to_numeric(frame[col]).astype("float64")
        else:
            frame[col] = frame[col].astype(object)  # string: make_dataset drops free text

    target = desc["default_target_attribute"]
    y = frame.pop(target)
    task_type = "regression" if kinds.get(target) == "numeric" else (
        "binary" if y.dropna().nunique() == 2 else "multiclass")
    always = [c for c in [*ignored, *leaks] if c in frame.columns and c != target]
    ds = make_dataset(
        display_name, frame, y, task_type=task_type,
        categorical=[c for c in categorical if c != target],
        drop=always + [c for c in drop if c not in always],
        source={
            "kind": "embedded", "embedded": name,
            "openml_dataset_id": did, "openml_dataset_name": desc["name"],
            "openml_dataset_version": int(desc.get("version", 1)),
            "target": target, "licence": desc.get("licence", "unknown"),
            "origin": f"scikit-learn test fixture sklearn/datasets/tests/data/openml/id_{did}/"
                      f"{arffs[0].name} (OpenML file {desc.get('file_id')}, md5 {desc.get('md5_checksum')})",
            "note": note, "sklearn_version": _sklearn_version(),
        },
    )
    for col in always:
        ds.dropped[col] = leaks.get(col, "OpenML ignore/row-identifier attribute")
    return ds


def _load_sklearn_table(name: str, display_name: str, drop: list[str]) -> Dataset:
    import sklearn.datasets as skd

    loader, task_type, licence, note = SKLEARN_TABLES[name]
    kwargs = {"as_frame": True}
    if name == "diabetes":
        kwargs["scaled"] = False  # the raw measurements, not sklearn's mean-centred, scaled copy
    bunch = getattr(skd, loader)(**kwargs)
    X = bunch.data.copy()
    if task_type == "regression":
        y = bunch.target.astype("float64")
    else:
        names = [str(n) for n in bunch.target_names]
        y = pd.Series(pd.Categorical.from_codes(bunch.target.to_numpy(), categories=names), name="target")
    return make_dataset(
        display_name, X, y, task_type=task_type, drop=drop,
        source={"kind": "embedded", "embedded": name, "licence": licence,
                "origin": f"scikit-learn sklearn.datasets.{loader}", "note": note,
                "sklearn_version": _sklearn_version()},
    )
