"""SHAP values of a fitted adapter's model on a (test) part.

GBDTs (XGBoost, LightGBM, CatBoost): TreeSHAP as the libraries compute it (XGBoost pred_contribs,
LightGBM pred_contrib, CatBoost ShapValues): exact, on the native categorical splits, and on the rounds
the adapter kept (early stopping). Not the `shap` package's TreeExplainer: on this harness's models it
fails for XGBoost with native categoricals ("DataFrame.dtypes for data must be int, float, bool or
category ... enable_categorical") and explains all trained trees, not the kept ones; for CatBoost it
calls CatBoost's own ShapValues anyway. Values are in the model's margin space (log-odds for binary, one
margin per class for multiclass, the value for regression): each row's values sum to its margin minus the
expected value (gbdt_margin gives the margin; tests check the identity).

Any other model: the `shap` package's PermutationExplainer (model-agnostic, exactly additive for the
permutations it draws) on the *original* columns, so that a GBDT and a neural model are compared on the
same features: a categorical column is one feature however the model encodes it. `predict` maps an
original-column frame to predictions (the adapter's preprocessor, then its predictions: probabilities for
classification, values for regression); absent rows are filled from a background sample of the training
part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

TREE_MODELS = ("xgboost", "lightgbm", "catboost")


@dataclass
class Explanation:
    """SHAP values (rows, features, outputs) and the expected value per output; `scale` says what the
    outputs are: "margin" (GBDT raw score: log-odds / class margins / value) or "prediction"."""

    values: np.ndarray
    expected: np.ndarray
    features: list[str]
    scale: str
    method: str

    def importance(self) -> pd.Series:
        """Mean |SHAP| per feature (over rows and outputs), as shares summing to 1, largest first: the
        scale-free ranking two models can be compared on."""
        mean_abs = np.abs(self.values).mean(axis=(0, 2))
        total = mean_abs.sum()
        shares = mean_abs / total if total > 0 else mean_abs
        return pd.Series(shares, index=self.features, name="share").sort_values(ascending=False, kind="stable")


def _as_outputs(contribs: np.ndarray, n_rows: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Library contributions (rows, [outputs,] features + 1 bias) -> values (rows, features, outputs),
    expected (outputs,)."""
    arr = np.asarray(contribs, dtype=np.float64).reshape(n_rows, -1, n_features + 1)  # (rows, outputs, F + 1)
    return arr[:, :, :-1].transpose(0, 2, 1), arr[:, :, -1].mean(axis=0)


def _kept(adapter: Any) -> int:
    if getattr(adapter, "_constant", None) is not None:
        raise ValueError(f"{adapter.name}: the fitted model is a constant prediction (nothing was learnable); "
                         "it has no SHAP values")
    return int(adapter.kept_rounds)


def gbdt_shap(adapter: Any, X: pd.DataFrame) -> Explanation:
    """TreeSHAP values of a fitted XGBoost / LightGBM / CatBoost adapter on its preprocessed frame X."""
    from bench.adapters.framework.gbdt_base import positional_columns

    if adapter.name not in TREE_MODELS:
        raise ValueError(f"gbdt_shap explains {', '.join(TREE_MODELS)}, not {adapter.name!r}; "
                         "use permutation_shap for other models")
    kept, n, f = _kept(adapter), len(X), X.shape[1]
    if adapter.name == "xgboost":
        import xgboost as xgb

        data = xgb.DMatrix(positional_columns(X), enable_categorical=True)
        contribs = adapter.booster.predict(data, pred_contribs=True, iteration_range=(0, kept))
    elif adapter.name == "lightgbm":
        contribs = adapter.booster.predict(positional_columns(X), pred_contrib=True, num_iteration=kept)
    else:
        from catboost import Pool

        contribs = adapter.model.get_feature_importance(Pool(X, cat_features=adapter._cat_features),
                                                        type="ShapValues")
    values, expected = _as_outputs(contribs, n, f)
    return Explanation(values, expected, [str(c) for c in X.columns], "margin", f"TreeSHAP ({adapter.name})")


def gbdt_margin(adapter: Any, X: pd.DataFrame) -> np.ndarray:
    """The kept model's raw score (rows, outputs): log-odds (binary), class margins, or the value."""
    from bench.adapters.framework.gbdt_base import positional_columns

    kept = _kept(adapter)
    if adapter.name == "xgboost":
        import xgboost as xgb

        data = xgb.DMatrix(positional_columns(X), enable_categorical=True)
        raw = adapter.booster.predict(data, output_margin=True, iteration_range=(0, kept))
    elif adapter.name == "lightgbm":
        raw = adapter.booster.predict(positional_columns(X), raw_score=True, num_iteration=kept)
    elif adapter.name == "catboost":
        from catboost import Pool

        raw = adapter.model.predict(Pool(X, cat_features=adapter._cat_features), prediction_type="RawFormulaVal")
    else:
        raise ValueError(f"gbdt_margin is for {', '.join(TREE_MODELS)}, not {adapter.name!r}")
    return np.asarray(raw, dtype=np.float64).reshape(len(X), -1)


class FrameCodec:
    """Original columns <-> a float matrix the shap maskers can handle: categoricals as codes of the
    categories seen at fit (missing: -1), numerics as they are; decode restores the frame's dtypes."""

    def __init__(self, frame: pd.DataFrame):
        self.columns = list(frame.columns)
        self.categories: dict[Any, pd.Index] = {}
        for c in self.columns:
            if not pd.api.types.is_numeric_dtype(frame[c]) or isinstance(frame[c].dtype, pd.CategoricalDtype):
                self.categories[c] = pd.Index(pd.Series(frame[c]).dropna().unique())
        self.dtypes = frame.dtypes

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.columns:
            if c in self.categories:
                cols.append(self.categories[c].get_indexer(frame[c].astype(object)).astype(np.float64))
            else:
                cols.append(frame[c].to_numpy(dtype=np.float64))
        return np.column_stack(cols) if cols else np.zeros((len(frame), 0))

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        out = {}
        for j, c in enumerate(self.columns):
            if c in self.categories:
                codes = np.asarray(matrix[:, j], dtype=np.int64)
                values = pd.Series(np.where(codes >= 0, self.categories[c].to_numpy()[np.clip(codes, 0, None)], None),
                                   dtype=object)
                out[c] = values.astype(self.dtypes[c]) if isinstance(self.dtypes[c], pd.CategoricalDtype) else values
            else:
                out[c] = matrix[:, j]
        return pd.DataFrame(out, columns=self.columns)


def permutation_shap(predict: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, background: pd.DataFrame,
                     *, max_evals: int | None = None, seed: int = 0) -> Explanation:
    """Model-agnostic SHAP values of `predict` on the original-column frame X, features absent from a
    coalition filled from `background` (a sample of the training part; its size bounds the cost)."""
    import shap

    codec = FrameCodec(pd.concat([background, X], ignore_index=True))

    def model(matrix: np.ndarray) -> np.ndarray:
        out = np.asarray(predict(codec.decode(matrix)), dtype=np.float64)
        return out.reshape(len(matrix), -1)

    masker = shap.maskers.Independent(codec.encode(background), max_samples=len(background))
    explainer = shap.PermutationExplainer(model, masker, seed=seed)
    evals = max_evals or max(500, 2 * X.shape[1] + 1)
    result = explainer(codec.encode(X), max_evals=evals, silent=True)
    values = np.asarray(result.values, dtype=np.float64).reshape(len(X), X.shape[1], -1)
    expected = np.asarray(result.base_values, dtype=np.float64).reshape(len(X), -1).mean(axis=0)
    return Explanation(values, expected, [str(c) for c in X.columns], "prediction", "PermutationExplainer (shap)")


def side_by_side(explanations: dict[str, Explanation], top: int = 10) -> pd.DataFrame:
    """Top features per model: a frame with one (feature, share) column pair per model, rank as index."""
    frames = []
    for model, expl in explanations.items():
        imp = expl.importance().head(top)
        frames.append(pd.DataFrame({(model, "feature"): imp.index, (model, "share"): imp.to_numpy()}))
    table = pd.concat(frames, axis=1)
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    return table
