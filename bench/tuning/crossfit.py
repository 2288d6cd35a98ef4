"""How one configuration is fit and validated: on the holdout split, or by inner K-fold cross-validation.

inner_folds = 1 (the default) is the holdout protocol: the split's training part fits the model, its
validation part drives early stopping and gives the trial's value.

inner_folds = K > 1: the outer training part (the split's training + validation rows) is cut into K
folds (seeded from the job seed with bench.seeding.derive_seed, stratified for classification). A trial
fits K models, each on K-1 folds with the remaining fold as its own validation part (early stopping);
the trial's value is the objective on the out-of-fold predictions, every outer training row predicted
exactly once, by the one model that never saw it. Test predictions average the K models.

Preprocessing is fit on each fold's training rows only (one `Prepared` per fold), so no validation or
test row shapes it. Pruning listens to the first fold only: its intermediate values are a fixed,
comparable learning curve for every trial, and a trial the pruner stops there costs one fit, not K.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold

from bench.adapters import Adapter, FitContext, TaskInfo
from bench.metrics import objective_value
from bench.seeding import derive_seed
from bench.vocabulary import TrialEnd


@dataclass
class Parts:
    """Raw (untransformed) data of one split."""
    X_train: object
    y_train: np.ndarray
    X_val: object
    y_val: np.ndarray
    X_test: object
    y_test: np.ndarray

    @classmethod
    def of_split(cls, ds, split) -> Parts:
        """A dataset's rows in a split's training, validation and test parts (bench.splits.Split)."""
        take = ds.X.iloc
        return cls(take[split.train].reset_index(drop=True), ds.y[split.train],
                   take[split.val].reset_index(drop=True), ds.y[split.val],
                   take[split.test].reset_index(drop=True), ds.y[split.test])


@dataclass
class Fold:
    """One training / validation pair; val_rows: positions of its validation rows in the outer
    training part (None for the holdout, whose validation part is the split's own)."""
    X_train: object
    y_train: np.ndarray
    X_val: object
    y_val: np.ndarray
    val_rows: np.ndarray | None = None


def make_folds(parts: Parts, task: TaskInfo, k: int, seed: int) -> tuple[list[Fold], np.ndarray]:
    """The folds of one job and the labels every validation score is computed against (the split's
    validation labels for the holdout, the outer training labels, in the folds' row order, for K > 1)."""
    if k == 1:
        return [Fold(parts.X_train, parts.y_train, parts.X_val, parts.y_val)], np.asarray(parts.y_val)
    X = pd.concat([parts.X_train, parts.X_val], ignore_index=True)
    y = np.concatenate([parts.y_train, parts.y_val])
    if len(y) < 2 * k:
        raise ValueError(f"inner_folds = {k} needs at least {2 * k} rows in the outer training part, got {len(y)}")
    splitter = KFold(n_splits=k, shuffle=True, random_state=derive_seed(seed, "inner_cv", k))
    if task.is_classification:
        counts = np.bincount(y)
        if counts[counts > 0].min() >= k:  # else too few rows of a class to stratify (as bench.splits)
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=derive_seed(seed, "inner_cv", k))
    folds = [Fold(X.iloc[tr].reset_index(drop=True), y[tr], X.iloc[va].reset_index(drop=True), y[va], va)
             for tr, va in splitter.split(np.zeros(len(y)), y)]
    return folds, y


class Prepared:
    """Preprocessing fit on one fold's training rows, reused by every trial with the same preprocessing key."""

    def __init__(self, fold: Fold, X_test):
        self.fold, self.X_test = fold, X_test
        self._cache: dict[tuple, tuple] = {}
        self._test: dict[tuple, object] = {}

    def get(self, model: Adapter):
        key = model.preprocessing_key()
        if key not in self._cache:
            pre = model.make_preprocessor()
            pre.fit(self.fold.X_train)
            self._cache[key] = (pre, pre.transform(self.fold.X_train), pre.transform(self.fold.X_val))
        return self._cache[key]

    def test(self, model: Adapter):
        """The test part through the preprocessor fit on this fold's training rows (transform only)."""
        key = model.preprocessing_key()
        if key not in self._test:
            self._test[key] = self.get(model)[0].transform(self.X_test)
        return self._test[key]


class FoldModels:
    """A fitted configuration: one model per fold. Its test predictions (the K models' mean) are
    computed once and shared by the per-trial test score (tuning curves), the stored predictions
    (post-hoc ensembles) and the final evaluation. val_pred: the predictions the validation value was
    computed from (holdout, or out of fold in the order of make_folds' labels)."""

    def __init__(self, models: list[Adapter], prepared: list[Prepared], val_pred: np.ndarray | None = None):
        self.models, self.prepared, self.val_pred = models, prepared, val_pred
        self._test: tuple[np.ndarray, float] | None = None

    def predict_test(self) -> tuple[np.ndarray, float]:
        if self._test is None:
            start = time.perf_counter()
            preds = [m.predictions(p.test(m)) for m, p in zip(self.models, self.prepared)]
            pred = preds[0] if len(preds) == 1 else np.mean(preds, axis=0)
            self._test = (pred, time.perf_counter() - start)
        return self._test

    @property
    def info(self) -> dict:
        return combine_info([m.ctx.info for m in self.models])


def fit_folds(adapter_cls: type[Adapter], task: TaskInfo, folds: list[Fold], prepared: list[Prepared],
              y_scored: np.ndarray, params: dict, make_ctx: Callable[[int], FitContext],
              on_fold: Callable[[int], None] | None = None) -> tuple[FoldModels, float, float]:
    """Fit `params` on every fold: (models, validation value, fit seconds summed over folds).
    make_ctx(fold_index) gives each fit its context (the first fold's reports reach the pruner)."""
    models, fit_seconds = [], 0.0
    oof = None
    for index, (fold, prep) in enumerate(zip(folds, prepared)):
        if on_fold is not None:
            on_fold(index)
        model = adapter_cls(task, params, make_ctx(index))
        _, Xtr, Xva = _fold_data([model], prep)
        start = time.perf_counter()
        model.fit(Xtr, fold.y_train, Xva, fold.y_val)
        fit_seconds += time.perf_counter() - start
        oof = _place(oof, model.validation_predictions(Xva), fold, y_scored)  # kept from the fit where scored
        models.append(model)
    return FoldModels(models, prepared, oof), _value(task, y_scored, oof), fit_seconds


def _fold_data(models: list[Adapter], prep: Prepared):
    """(preprocessor, training input, validation input) of models sharing one preprocessing key."""
    for model in models:
        # The test part is predicted after the fit (per-trial test score, stored predictions): a deadline
        # leaves room for it (bench.adapters.framework.early_stopping.StoppingMonitor).
        model.ctx.predict_rows = len(prep.X_test)
    return prep.get(models[0])


def _place(oof: np.ndarray | None, pred: np.ndarray, fold: Fold, y_scored: np.ndarray) -> np.ndarray:
    """The validation predictions so far with one fold's added (the holdout's are all of them)."""
    if fold.val_rows is None:
        return pred
    if oof is None:
        oof = np.empty((len(y_scored), *np.shape(pred)[1:]), dtype="float64")
    oof[fold.val_rows] = pred
    return oof


def _value(task: TaskInfo, y_scored: np.ndarray, oof) -> float:
    value = objective_value(task.task_type, y_scored, oof, task.n_classes)
    if not math.isfinite(value):
        raise ValueError(f"validation {task.objective.metric} is {value}")
    return value


@dataclass
class TrialFit:
    """One configuration of a packed fit (fit_folds_packed): its models and validation value, or the
    exception that ended it (optuna.TrialPruned, a failure); `seconds`: its share of the packs' wall time;
    `fits`: models fit for it (fewer than the folds when it ended early)."""

    fitted: FoldModels | None
    value: float | None
    seconds: float
    fits: int
    error: BaseException | None = None


def fit_folds_packed(adapter_cls: type[Adapter], task: TaskInfo, folds: list[Fold], prepared: list[Prepared],
                     y_scored: np.ndarray, params: list[dict],
                     make_ctx: Callable[[int, int], FitContext]) -> list[TrialFit]:
    """fit_folds for several configurations at once, trained together fold by fold (Adapter.fit_pack;
    make_ctx(configuration, fold_index)). A configuration that ends (pruned on the first fold, failed)
    leaves the later folds' packs; the others go on."""
    fits = [TrialFit(None, None, 0.0, 0) for _ in params]
    models: list[list[Adapter]] = [[] for _ in params]
    oofs: list[np.ndarray | None] = [None] * len(params)
    for index, (fold, prep) in enumerate(zip(folds, prepared)):
        fold_models = {i: adapter_cls(task, params[i], make_ctx(i, index)) for i, f in enumerate(fits) if not f.error}
        by_key: dict[tuple, list[int]] = {}
        for i, model in fold_models.items():
            by_key.setdefault(model.preprocessing_key(), []).append(i)
        for group in by_key.values():
            pack = [fold_models[i] for i in group]
            _, Xtr, Xva = _fold_data(pack, prep)
            start = time.perf_counter()
            try:
                errors = list(adapter_cls.fit_pack(pack, Xtr, fold.y_train, Xva, fold.y_val))
                if len(errors) != len(pack):  # a trial must never go missing from its pack's results
                    raise RuntimeError(f"{adapter_cls.__name__}.fit_pack returned {len(errors)} results for "
                                       f"{len(pack)} models")
            except Exception as exc:  # noqa: BLE001 - the pack's configurations fail, not the job
                errors = [exc] * len(pack)
            shares = _shares(pack, time.perf_counter() - start)
            for i, model, error, share in zip(group, pack, errors, shares):
                fits[i].seconds += share
                fits[i].fits += 1
                fits[i].error = error
                if error is None:
                    oofs[i] = _place(oofs[i], model.validation_predictions(Xva), fold, y_scored)
                    models[i].append(model)
    for fit, oof, fold_models_i in zip(fits, oofs, models):
        if fit.error is None:
            try:
                fit.value = _value(task, y_scored, oof)
                fit.fitted = FoldModels(fold_models_i, prepared, oof)
            except ValueError as exc:
                fit.error = exc
    return fits


def _shares(models: list[Adapter], seconds: float) -> list[float]:
    """A packed fit's wall time split among its models: by the shares the pack measured
    (ctx.info["pack"]["share_s"]), else evenly."""
    measured = [(m.ctx.info.get("pack") or {}).get("share_s") for m in models]
    known = [float(s) for s in measured if isinstance(s, (int, float))]
    if len(known) == len(models) and sum(known) > 0:
        return [seconds * s / sum(known) for s in known]
    return [seconds / len(models)] * len(models)


# How a K-fold trial ended when its folds ended differently: the reason that says most about the budget.
_END_PRIORITY = (TrialEnd.DEADLINE, TrialEnd.DIVERGED, TrialEnd.MAX_ITERATIONS, TrialEnd.EARLY_STOPPED,
                 TrialEnd.CONVERGED)


def combine_info(infos: list[dict]) -> dict:
    """One fit's info as is. K folds: each fold's info under `folds`, and on top how the trial ended:
    `stopped_by` the most telling of the folds' ends, `iterations` / `best_iteration` rounded means."""
    if len(infos) == 1:
        return dict(infos[0])
    out: dict = {"folds": [dict(i) for i in infos]}
    ends = [i.get("stopped_by") for i in infos]
    known = [e for e in _END_PRIORITY if e in ends]
    if known:
        out["stopped_by"] = str(known[0])
    for key in ("iterations", "best_iteration"):
        values = [v for i in infos if isinstance(v := i.get(key), (int, float)) and not isinstance(v, bool)]
        if len(values) == len(infos):  # every fold says it
            out[key] = round(float(np.mean(values)))
    units = {i.get("iteration_unit") for i in infos}
    if len(units) == 1 and None not in units:
        out["iteration_unit"] = units.pop()
    return out
