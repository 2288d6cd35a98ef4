"""Per-family preprocessing, always fit on the training part only.

Four output forms cover every adapter:
  TreeFramePreprocessor     pandas frame, numerics float32, categoricals as `category` with a vocabulary
                            frozen from the training part (XGBoost, LightGBM native categoricals)
  CatBoostFramePreprocessor pandas frame, categoricals as strings with an explicit missing token
                            (CatBoost refuses NaN in categorical columns)
  MatrixPreprocessor        float32 matrix: imputed + scaled numerics, one-hot or ordinal categoricals
                            (linear models, random forest, MLP, ResNet)
  NumCatPreprocessor        (numeric float32 matrix, categorical int64 codes): for networks that embed
                            or one-hot categoricals themselves (FT-Transformer, MLP-PLR, TabM)

Shared wart handling (in `ColumnPlan`): columns constant or entirely missing on the training part are
dropped (XGBoost 3 crashes on a categorical column with no categories); categories unseen in training
become missing; very high-cardinality categoricals keep their most frequent levels and pool the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MISSING = "__missing__"
RARE = "__rare__"


@dataclass
class ColumnPlan:
    """What the training part says about each column: which to keep and each categorical's vocabulary."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    vocab: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fit(cls, X: pd.DataFrame, max_levels: int = 1000) -> "ColumnPlan":
        plan = cls()
        for col in X.columns:
            s = X[col]
            if isinstance(s.dtype, pd.CategoricalDtype):
                counts = s.value_counts(dropna=True)
                counts = counts[counts > 0]
                has_missing = bool(s.isna().any())
                if len(counts) == 0 or (len(counts) == 1 and not has_missing):
                    plan.dropped[col] = "constant or all-missing on the training part"
                    continue
                levels = [str(c) for c in counts.index[:max_levels]]
                if len(counts) > max_levels:
                    levels.append(RARE)  # the long tail shares one level
                plan.categorical.append(col)
                plan.vocab[col] = levels
            else:
                values = s.to_numpy(dtype="float64")
                finite = values[~np.isnan(values)]
                if finite.size == 0 or (np.all(finite == finite[0]) and finite.size == values.size):
                    plan.dropped[col] = "constant or all-missing on the training part"
                    continue
                plan.numeric.append(col)
        return plan

    def categorical_codes(self, X: pd.DataFrame, col: str) -> pd.Categorical:
        """Map a column onto the training vocabulary: pooled tail -> RARE, unseen -> missing."""
        levels = self.vocab[col]
        s = X[col].astype("string")
        if levels[-1] == RARE:
            s = s.where(s.isna() | s.isin(levels[:-1]), RARE)
        s = s.where(s.isin(levels))  # unseen -> missing, explicitly (pandas deprecates the implicit way)
        return pd.Categorical(s, categories=levels)

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical


class TreeFramePreprocessor:
    """Frame for GBDTs with native categorical support (XGBoost enable_categorical, LightGBM)."""

    def __init__(self, max_levels: int = 1000):
        self.max_levels = max_levels

    def fit(self, X: pd.DataFrame, y=None) -> "TreeFramePreprocessor":
        self.plan = ColumnPlan.fit(X, self.max_levels)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {c: X[c].to_numpy(dtype="float32") for c in self.plan.numeric}
        for c in self.plan.categorical:
            out[c] = self.plan.categorical_codes(X, c)
        return pd.DataFrame(out, index=range(len(X)))[self.plan.columns]

    @property
    def categorical_columns(self) -> list[str]:
        return self.plan.categorical


class CatBoostFramePreprocessor(TreeFramePreprocessor):
    """Frame for CatBoost: categoricals as strings, missing as its own token (CatBoost rejects NaN)."""

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {c: X[c].to_numpy(dtype="float32") for c in self.plan.numeric}
        for c in self.plan.categorical:
            codes = pd.Series(self.plan.categorical_codes(X, c)).astype(object)
            out[c] = codes.where(codes.notna(), MISSING).to_numpy()
        return pd.DataFrame(out, index=range(len(X)))[self.plan.columns]

    @property
    def categorical_indices(self) -> list[int]:
        return list(range(len(self.plan.numeric), len(self.plan.columns)))


def numeric_pipeline(kind: str, n_rows: int, seed: int = 0):
    """Median imputation with missing indicators, then "standard", "quantile" (normal) or no scaling.

    The quantile count follows Gorishniy et al. (n // 30, clipped to [10, 1000]): enough quantiles to
    resolve the distribution without memorizing single training values on small data.
    """
    # scikit-learn is imported where it is used: every adapter module imports this one, and the
    # sweep's parent (planning, `bench models list`) needs none of it
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    steps = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=False)]
    if kind == "standard":
        steps.append(StandardScaler())
    elif kind == "quantile":
        n_q = int(min(n_rows, max(10, min(1000, n_rows // 30))))  # never more quantiles than rows
        steps.append(QuantileTransformer(output_distribution="normal", n_quantiles=n_q,
                                         subsample=10**9, random_state=seed))
    return make_pipeline(*steps)


class MatrixPreprocessor:
    """Dense float32 matrix for models without native categorical or missing-value handling.

    numeric:  "standard" (z-score) or "quantile" (quantile-normal, the usual choice for neural nets)
              after median imputation; a missing-indicator column is added where training had NaNs.
    categorical: "onehot" or "ordinal"; missing is its own level and levels unseen in training
              are treated as missing (so a test-only level never crashes a transform).
    """

    def __init__(self, numeric: str = "standard", categorical: str = "onehot",
                 max_onehot: int = 64, seed: int = 0):
        if numeric not in ("standard", "quantile", "none"):
            raise ValueError(f"unknown numeric transform '{numeric}'")
        if categorical not in ("onehot", "ordinal"):
            raise ValueError(f"unknown categorical encoding '{categorical}'")
        self.numeric, self.categorical, self.max_onehot, self.seed = numeric, categorical, max_onehot, seed

    def _categorical_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        cols = {}
        for c in self.plan.categorical:
            codes = pd.Series(self.plan.categorical_codes(X, c)).astype(object)
            cols[c] = codes.where(codes.notna(), MISSING)
        return pd.DataFrame(cols, index=range(len(X)))

    def fit(self, X: pd.DataFrame, y=None) -> "MatrixPreprocessor":
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

        self.plan = ColumnPlan.fit(X)
        steps = []
        if self.plan.numeric:
            steps.append(("num", numeric_pipeline(self.numeric, len(X), self.seed), self.plan.numeric))
        if self.plan.categorical:
            if self.categorical == "onehot":
                enc = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=self.max_onehot,
                                    sparse_output=False, dtype=np.float32)
            else:
                enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                     dtype=np.float32)
            steps.append(("cat", enc, self.plan.categorical))
        self.transformer = ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)
        if steps:
            self.transformer.fit(self._frame(X))
        return self

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        num = pd.DataFrame({c: X[c].to_numpy(dtype="float64") for c in self.plan.numeric}, index=range(len(X)))
        return pd.concat([num, self._categorical_frame(X)], axis=1)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        if not self.plan.columns:
            return np.zeros((len(X), 1), dtype=np.float32)  # nothing informative: a constant feature
        return self.transformer.transform(self._frame(X)).astype(np.float32)

    def fit_transform(self, X: pd.DataFrame, y=None) -> np.ndarray:
        return self.fit(X, y).transform(X)


class NumCatPreprocessor:
    """Two arrays for models that treat categoricals themselves (embeddings, one-hot inside the net).

    Output: (x_num float32 (n, n_num), x_cat int64 (n, n_cat)). Numerics as in MatrixPreprocessor
    (quantile-normal by default, missing indicators appended). Categorical code 0 is "missing or not
    seen in training", 1..L the training levels, so an unseen test level lands on a code the model
    trained on instead of indexing past an embedding table. `cardinalities` gives L + 1 per column.
    """

    def __init__(self, numeric: str = "quantile", seed: int = 0):
        if numeric not in ("standard", "quantile", "none"):
            raise ValueError(f"unknown numeric transform '{numeric}'")
        self.numeric, self.seed = numeric, seed

    def fit(self, X: pd.DataFrame, y=None) -> "NumCatPreprocessor":
        self.plan = ColumnPlan.fit(X)
        self.num_pipeline = None
        if self.plan.numeric:
            self.num_pipeline = numeric_pipeline(self.numeric, len(X), self.seed).fit(self._numeric(X))
        self.cardinalities = [len(self.plan.vocab[c]) + 1 for c in self.plan.categorical]
        return self

    def _numeric(self, X: pd.DataFrame) -> np.ndarray:
        return np.column_stack([X[c].to_numpy(dtype="float64") for c in self.plan.numeric])

    def transform(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        n = len(X)
        if self.num_pipeline is not None:
            x_num = self.num_pipeline.transform(self._numeric(X)).astype(np.float32)
        elif not self.plan.categorical:
            x_num = np.zeros((n, 1), dtype=np.float32)  # nothing informative: one constant feature
        else:
            x_num = np.zeros((n, 0), dtype=np.float32)
        x_cat = np.zeros((n, len(self.plan.categorical)), dtype=np.int64)
        for j, c in enumerate(self.plan.categorical):
            x_cat[:, j] = self.plan.categorical_codes(X, c).codes.astype(np.int64) + 1  # -1 (missing) -> 0
        return x_num, x_cat

    def fit_transform(self, X: pd.DataFrame, y=None) -> tuple[np.ndarray, np.ndarray]:
        return self.fit(X, y).transform(X)
