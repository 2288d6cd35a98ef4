"""Which training rows moved a GBDT's test loss: BoostIn (Brophy, Hammoudeh & Lowd 2023, "Adapting and
Evaluating Influence-Estimation Methods for Gradient-Boosted Decision Trees", JMLR 24(154)), for the
harness's XGBoost and LightGBM adapters.

Written here: the authors' package `tree-influence` publishes only source archives, and every version
(0.0.2-0.1.7) fails to build from them (the archives lack the Cython sources their setup.py compiles:
"'tree_influence/explainers/parsers/_tree32.pyx' doesn't match any files"), so no clean install can have
it. The method is small and well defined:

A boosted tree's leaf value is a Newton step over the rows in the leaf, lr * w_l with w_l = -G_l / (H_l +
lambda) (G, H: sums of the loss gradients and hessians at the margin before the round). Up-weighting
training row i by eps changes it by d(lr w_l)/d eps = -lr (g_i + w_l h_i) / (H_l + lambda). Following
TracIn, BoostIn adds over the rounds the first-order change of a test row's loss, the test row's gradient
at that round times the change of the leaf it shares with row i:
    removal effect(i on j) = sum_t sum_k g_jtk [leaf_tk(j) = leaf_tk(i)] lr (g_itk + w h_itk) / (H + lambda)
(k: one tree per class for multiclass). It estimates how much row j's loss would rise if row i were
removed (the paper's sign: positive = helpful / proponent, negative = harmful / opponent). Summed over
the test rows it ranks training rows by their effect on the total test loss; a mislabeled row is harmful.

The gradients and hessians are the libraries' objectives: logistic (g = p - y, h = p(1 - p)), softmax
(g_k = p_k - [y = k], h_k = c p_k (1 - p_k) with c = 2 in XGBoost and K / (K - 1) in LightGBM), squared
error (g = f - y, h = 1). Leaf memberships and values come from the kept rounds of the fitted model.
Row subsampling and L1 are not modelled (the harness's defaults use neither); `leaf_fit_error` reports
how far the recomputed Newton steps are from the model's leaf values, so a mismatch is visible.
CatBoost is not supported: its ordered boosting and multi-step leaf estimation are not this Newton step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Ensemble:
    """What BoostIn needs from a fitted model, per round t and output k (one tree each)."""

    leaves: np.ndarray  # (rows, rounds, outputs) leaf id of each row
    values: np.ndarray  # (rows, rounds, outputs) value of that leaf (as stored: includes the learning rate)
    margin: np.ndarray  # (rows, outputs) final raw score
    learning_rate: float
    l2: float
    objective: str  # "binary", "multiclass", "regression"
    hessian_factor: float  # the softmax hessian's constant
    init_in_first_tree: bool  # LightGBM adds its initial score to the first tree's leaves


def _outputs(adapter: Any) -> int:
    """Trees per round: one per class for multiclass, else one."""
    return int(adapter.task.n_classes) if adapter.task.task_type == "multiclass" else 1


def _xgboost(adapter: Any, X: pd.DataFrame) -> Ensemble:
    import xgboost as xgb

    from bench.adapters.framework.gbdt_base import positional_columns

    kept, k = int(adapter.kept_rounds), _outputs(adapter)
    data = xgb.DMatrix(positional_columns(X), enable_categorical=True)
    leaves = adapter.booster.predict(data, pred_leaf=True, iteration_range=(0, kept)).astype(np.int64)
    leaves = leaves.reshape(len(X), kept, k)
    frame = adapter.booster.trees_to_dataframe()
    table = frame[frame["Feature"] == "Leaf"].set_index(["Tree", "Node"])["Gain"]
    trees = np.arange(kept * k).reshape(1, kept, k)
    values = table.reindex(pd.MultiIndex.from_arrays([np.broadcast_to(trees, leaves.shape).ravel(),
                                                      leaves.ravel()])).to_numpy().reshape(leaves.shape)
    margin = adapter.booster.predict(data, output_margin=True, iteration_range=(0, kept)).reshape(len(X), k)
    return Ensemble(leaves, values, margin, float(adapter.params["learning_rate"]), float(adapter.params["reg_lambda"]),
                    adapter.task.task_type, 2.0, init_in_first_tree=False)


def _lightgbm(adapter: Any, X: pd.DataFrame) -> Ensemble:
    from bench.adapters.framework.gbdt_base import positional_columns

    kept, k = int(adapter.kept_rounds), _outputs(adapter)
    frame = positional_columns(X)
    leaves = adapter.booster.predict(frame, pred_leaf=True, num_iteration=kept).astype(np.int64)
    leaves = leaves.reshape(len(X), kept, k)
    values = np.empty(leaves.shape)
    for t in range(kept):
        for c in range(k):
            tree = t * k + c
            ids, where = np.unique(leaves[:, t, c], return_inverse=True)
            outputs = np.array([adapter.booster.get_leaf_output(tree, int(i)) for i in ids])
            values[:, t, c] = outputs[where.ravel()]
    margin = adapter.booster.predict(frame, raw_score=True, num_iteration=kept).reshape(len(X), k)
    factor = k / (k - 1) if k > 1 else 1.0
    return Ensemble(leaves, values, margin, float(adapter.params["learning_rate"]), float(adapter.params["lambda_l2"]),
                    adapter.task.task_type, factor, init_in_first_tree=True)


def ensemble_of(adapter: Any, X: pd.DataFrame) -> Ensemble:
    if getattr(adapter, "_constant", None) is not None:
        raise ValueError(f"{adapter.name}: the fitted model is a constant prediction; no row influenced it")
    if adapter.name == "xgboost":
        return _xgboost(adapter, X)
    if adapter.name == "lightgbm":
        return _lightgbm(adapter, X)
    raise ValueError(f"BoostIn influence is implemented for xgboost and lightgbm, not {adapter.name!r} "
                     "(CatBoost's ordered boosting and leaf estimation differ from a Newton step)")


def gradients(objective: str, margin: np.ndarray, y: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Loss gradient and hessian w.r.t. the margin (rows, outputs)."""
    if objective == "regression":
        return margin - np.asarray(y, dtype=np.float64)[:, None], np.ones_like(margin)
    if objective == "binary":
        p = 1.0 / (1.0 + np.exp(-margin))
        return p - np.asarray(y, dtype=np.float64)[:, None], p * (1.0 - p)
    z = np.exp(margin - margin.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    onehot = np.eye(margin.shape[1])[np.asarray(y, dtype=np.int64)]
    return p - onehot, factor * p * (1.0 - p)


def _initial_score(ens: Ensemble, y: np.ndarray) -> np.ndarray:
    """The margin before the first round. XGBoost: the final margin minus all leaf values (its base score).
    LightGBM keeps its initial score inside the first tree's leaves: find the score s for which the first
    tree's leaves equal s + lr * (Newton step at s) (a few fixed-point steps; exact for regression)."""
    base = ens.margin - ens.values.sum(axis=1)
    if not ens.init_in_first_tree:
        return base
    s = base.copy()
    for _ in range(50):
        g, h = gradients(ens.objective, s, y, ens.hessian_factor)
        step = ens.learning_rate * _newton(ens.leaves[:, 0], g, h, ens.l2)[0]
        s = base + np.median(ens.values[:, 0] - step, axis=0, keepdims=True)
    return s


def _newton(leaves: np.ndarray, g: np.ndarray, h: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row (rows, outputs): its leaf's Newton value w = -G / (H + l2), and H + l2."""
    w, denom = np.empty_like(g), np.empty_like(g)
    for c in range(g.shape[1]):
        ids, where = np.unique(leaves[:, c], return_inverse=True)
        G, H = np.bincount(where, g[:, c], len(ids)), np.bincount(where, h[:, c], len(ids))
        w[:, c], denom[:, c] = (-G / (H + l2))[where], (H + l2)[where]
    return w, denom


@dataclass
class Influence:
    """BoostIn scores of the training rows on the total loss of the given test rows."""

    removal_effect: np.ndarray  # (n_train,) estimated rise of the test loss if the row were removed
    leaf_fit_error: float  # relative distance of the recomputed Newton steps to the model's leaf values

    def ranking(self, top: int = 20) -> pd.DataFrame:
        """The `top` most harmful rows (removing them would lower the test loss most) and the `top` most
        helpful ones; `row` is the position in the training part."""
        order = np.argsort(self.removal_effect, kind="stable")
        harmful = [i for i in order[:top] if self.removal_effect[i] < 0]
        helpful = [i for i in order[::-1][:top] if self.removal_effect[i] > 0]
        rows = [(int(i), "harmful", float(self.removal_effect[i])) for i in harmful]
        rows += [(int(i), "helpful", float(self.removal_effect[i])) for i in helpful]
        return pd.DataFrame(rows, columns=["row", "kind", "removal_effect"])


def _margins_before(ens: Ensemble, init: np.ndarray) -> np.ndarray:
    """(rows, rounds, outputs): the margin each round's gradients were taken at."""
    base = ens.margin - ens.values.sum(axis=1)
    before = base[:, None, :] + np.cumsum(ens.values, axis=1) - ens.values
    before[:, 0] = init
    return before


def boostin(adapter: Any, X_train: pd.DataFrame, y_train: np.ndarray, X_test: pd.DataFrame,
            y_test: np.ndarray) -> Influence:
    """BoostIn removal effects of every training row on the summed loss of the test rows (X_test, y_test;
    pass a subset, e.g. the misclassified rows, to explain those). The frames are the adapter's
    preprocessed ones; X_train / y_train must be the part the model was fit on, in its order."""
    tr, te = ensemble_of(adapter, X_train), ensemble_of(adapter, X_test)
    init = _initial_score(tr, y_train)[:1]
    before_tr, before_te = _margins_before(tr, init), _margins_before(te, init)
    lr, effect = tr.learning_rate, np.zeros(len(X_train))
    misfit, scale = 0.0, 0.0
    for t in range(tr.leaves.shape[1]):
        g, h = gradients(tr.objective, before_tr[:, t], y_train, tr.hessian_factor)
        w, denom = _newton(tr.leaves[:, t], g, h, tr.l2)
        stored = tr.values[:, t] - (init if (t == 0 and tr.init_in_first_tree) else 0.0)
        misfit, scale = misfit + float(((stored - lr * w) ** 2).sum()), scale + float((stored ** 2).sum())
        g_test, _ = gradients(te.objective, before_te[:, t], y_test, te.hessian_factor)
        change = lr * (g + w * h) / denom  # d(leaf value)/d(removing row i), per training row
        for c in range(g.shape[1]):
            ids, where = np.unique(np.concatenate([tr.leaves[:, t, c], te.leaves[:, t, c]]), return_inverse=True)
            test_sum = np.bincount(where[len(X_train):], g_test[:, c], len(ids))  # test gradient per leaf
            effect += change[:, c] * test_sum[where[:len(X_train)]]
    return Influence(effect, float(np.sqrt(misfit / scale)) if scale > 0 else 0.0)
