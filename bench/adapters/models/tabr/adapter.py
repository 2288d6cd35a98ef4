"""TabR (Gorishniy et al. 2024, "TabR: Tabular Deep Learning Meets Nearest Neighbors", ICLR) through pytabkit's
TabR_S_D_Classifier / TabR_S_D_Regressor (Holzmüller et al.'s port of the authors' code): optional extra
`tabr` (pytabkit, which the `realmlp` extra brings too, plus skorch, which pytabkit's TabR imports).

Model: TabR-S, the paper's variant without numeric embeddings, with pytabkit's TabR-S-D defaults
(pytabkit.models.sklearn.default_params.DefaultParams.TABR_S_D_CLASS / _REG: the TabR paper's default
configuration, context size 96, batch size by training-set size as in the paper's Table 14, AdamW).
Search space: the paper's tuning space for TabR-S (repository yandex-research/tabular-dl-tabr,
exp/tabr/<dataset>/0-tuning.toml, e.g. adult): d_main Int[96, 384], context_dropout U[0, 0.6], dropout0
U[0, 0.6], lr LogU[3e-5, 1e-3], weight_decay "?LogU[1e-6, 1e-4]", i.e. either 0 or log-uniform (the
flag `use_weight_decay`); encoder_n_blocks 0, predictor_n_blocks 1, dropout1 0, context_size 96 fixed.

How it is driven:
  * The harness's validation part is passed as X_val / y_val: pytabkit trains on the training part only and
    restores the weights of the best validation epoch (Lightning's ModelCheckpoint on val_loss). val_loss is
    the cross-entropy for classification (val_metric_name="cross_entropy", no label smoothing in TabR-S-D:
    the log loss) and the MSE of the standardized target for regression (same best epoch as the RMSE): the
    shared early-stopping metric (bench.adapters.framework.early_stopping).
  * The shared stopping protocol (bench.adapters.framework.early_stopping.StoppingMonitor: at least 20 epochs, then
    patience 16, the paper's patience; the deadline; the per-epoch reports to the pruner; one precedence
    of ends) runs in Lightning hooks: pytabkit builds its trainer and callbacks inside
    TabRSubSplitInterface.fit with no way to add one, so for the duration of a fit its module-level
    TabrLightning class is replaced by a subclass (`_watching`) whose on_validation_end (where
    Lightning's own EarlyStopping looks) calls the monitor; pytabkit's own EarlyStopping is given an
    unreachable patience. The deadline is also checked after every training batch but an epoch's last
    (a TabR epoch on CPU can take minutes): Lightning then validates the state reached, which becomes
    the last epoch (cut by the clock), and ends the fit; the best validated state is kept.
  * Pruning: the reported value is the task's objective on the validation part: ROC AUC of the validation
    logits (binary), the validation log loss (multiclass), the RMSE in target units (regression). A
    TrialPruned raised by the pruner stops training and is re-raised once pytabkit has returned.
  * pytabkit does its own preprocessing (quantile transform of numerics, fit on the training and validation
    rows, as in the paper) and refuses NaN in numeric columns, so it gets RealMLP's frame: numerics
    median-imputed with missing indicators (bench.adapters.models.realmlp.ImputedFramePreprocessor). Categoricals
    arrive one-hot, one two-level category column per training level (plus one for "missing or unseen"
    where training had missing values), which pytabkit passes to the network as binary features: TabR's
    input is the concatenation of numeric, binary and one-hot categorical features, so the network sees
    what it would see from its own one-hot encoding. Why not the categorical itself: pytabkit 1.8 re-codes
    categoricals with more than two levels through SimpleImputer(missing_values=0, strategy="constant",
    fill_value=nan), and scikit-learn 1.9 drops every such column (its statistic is NaN), which ends the fit
    with "Found array with 0 feature(s)".
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from contextlib import contextmanager, redirect_stdout
from typing import Any

import numpy as np
import pandas as pd

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Adapter, Capabilities, TrivialFitFallback, expand_proba, missing_extra
from bench.adapters.framework.early_stopping import StoppingMonitor
from bench.adapters.models.realmlp import ImputedFramePreprocessor, _quiet_lightning
from bench.adapters.space import CategoricalParam, FloatParam, IntParam

_OWN_KEYS = ("lr", "weight_decay", "use_weight_decay", "patience")


class TabRFramePreprocessor(ImputedFramePreprocessor):
    """RealMLP's frame, each categorical replaced by 0/1 category columns (see the module docstring)."""

    def fit(self, X: pd.DataFrame, y=None) -> "TabRFramePreprocessor":
        super().fit(X)
        frame = super().transform(X)
        self.with_missing = [c for c in self.plan.categorical if frame[c].isna().any()]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = super().transform(X)
        onehot = {}
        for i, col in enumerate(self.plan.categorical):
            values = frame[col].astype(object)
            indicators = [values == level for level in self.plan.vocab[col]]
            if col in self.with_missing:
                indicators.append(values.isna())
            for j, hit in enumerate(indicators):
                onehot[f"__cat{i}_{j}"] = pd.Categorical(np.where(hit, "1", "0"), categories=["0", "1"])
        numeric = frame.drop(columns=self.plan.categorical)
        return pd.concat([numeric, pd.DataFrame(onehot, index=frame.index)], axis=1)


@register_adapter
class TabRAdapter(TrivialFitFallback, Adapter):
    name = "tabr"
    family = "neural"
    libraries = ("pytabkit", "torch")  # skorch only lends pytabkit a Dataset base class
    extra = "tabr"
    capabilities = Capabilities(gpu="optional")
    defaults = {
        "d_main": 265, "context_dropout": 0.38920071545944357, "dropout0": 0.38852797479169876,
        "lr": 0.0003121273641315169, "weight_decay": 1.2260352006404615e-06, "use_weight_decay": True,
        "encoder_n_blocks": 0, "predictor_n_blocks": 1, "context_size": 96, "batch_size": "auto",
        "n_epochs": 100_000, "patience": 16,  # n_epochs: "inf" in the paper; early stopping ends training
    }
    search_space = {
        "d_main": IntParam(96, 384),
        "context_dropout": FloatParam(0.0, 0.6),
        "dropout0": FloatParam(0.0, 0.6),
        "lr": FloatParam(3e-5, 1e-3, log=True),
        "weight_decay": FloatParam(1e-6, 1e-4, log=True),
        "use_weight_decay": CategoricalParam((True, False)),
    }
    smoke_params = {"d_main": 16, "n_epochs": 3, "context_size": 8}

    @classmethod
    def unavailable_reason(cls, task_type: str | None = None) -> str | None:
        return missing_extra("pytabkit", cls.extra) or missing_extra("skorch", cls.extra)

    def make_preprocessor(self):
        return TabRFramePreprocessor()

    def _model_params(self) -> dict[str, Any]:
        p = self.params
        params = {k: v for k, v in p.items() if k not in _OWN_KEYS}
        wd = float(p["weight_decay"]) if p["use_weight_decay"] else 0.0
        params.update(optimizer={"type": "AdamW", "lr": float(p["lr"]), "weight_decay": wd},
                      patience=10**9,  # pytabkit's EarlyStopping never fires: the shared rule stops (_watching)
                      device=self.ctx.device, random_state=self.ctx.seed, n_threads=self.ctx.threads, verbosity=0)
        if self.task.is_classification:
            params["val_metric_name"] = "cross_entropy"
        return params

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        from pytabkit import TabR_S_D_Classifier, TabR_S_D_Regressor

        cls = TabR_S_D_Classifier if self.task.is_classification else TabR_S_D_Regressor
        watcher = _EpochWatcher(self, np.asarray(y_val), np.asarray(y_train))
        cat_indicator = [isinstance(dt, pd.CategoricalDtype) for dt in X_train.dtypes]
        y_fit = y_train.astype(int) if self.task.is_classification else np.asarray(y_train, dtype="float64")
        y_val_fit = y_val.astype(int) if self.task.is_classification else np.asarray(y_val, dtype="float64")
        with tempfile.TemporaryDirectory(prefix="tabr-") as tmp, _watching(watcher), _quiet_lightning(), \
                open(os.devnull, "w") as devnull, redirect_stdout(devnull):  # pytabkit's TabR prints per epoch
            self.model = cls(**self._model_params(), tmp_folder=tmp)  # Lightning's checkpoints go there
            self.model.fit(X_train, y_fit, X_val, y_val_fit, cat_indicator=cat_indicator)
        if watcher.pruned is not None:
            raise watcher.pruned
        watcher.monitor.finish()

    def _predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        with _quiet_lightning(), open(os.devnull, "w") as devnull, redirect_stdout(devnull):
            if not self.task.is_classification:
                return np.asarray(self.model.predict(X), dtype="float64").ravel()
            proba = self.model.predict_proba(X)
        return expand_proba(proba, np.asarray(self.model.classes_, dtype=int), self.task.n_classes)


class _EpochWatcher:
    """Runs the shared stopping protocol (bench.adapters.framework.early_stopping.StoppingMonitor) once per epoch,
    on the val_loss Lightning computed (the log loss; for regression the MSE of the standardized target,
    turned into the RMSE in target units: the same best epoch)."""

    def __init__(self, adapter: TabRAdapter, y_val: np.ndarray, y_train: np.ndarray):
        self.ctx, self.task_type = adapter.ctx, adapter.task.task_type
        self.monitor = StoppingMonitor(adapter.ctx, adapter.task, y_val, int(adapter.params["patience"]),
                                       unit="epochs", max_iterations=int(adapter.params["n_epochs"]))
        self.y_val = y_val
        # pytabkit standardizes the regression target with the training mean and (unbiased) std
        self.y_std = float(np.std(np.asarray(y_train, dtype="float64"), ddof=1)) if len(y_train) > 1 else 1.0
        self.interrupted, self.pruned = False, None
        self.logits: list = []
        self.validation_started = 0.0

    def collect(self, module, inputs, output) -> None:
        self.logits.append(output.detach().float().cpu())

    def epoch_end(self, trainer) -> None:
        import optuna

        val_loss = trainer.callback_metrics.get("val_loss")
        if val_loss is None:
            return
        loss = float(val_loss)
        value = math.sqrt(max(loss, 0.0)) * self.y_std if self.task_type == "regression" else loss
        try:
            stop = self.monitor.after_iteration(self.monitor.iterations + 1, value, lambda: self._objective(loss),
                                                interrupted=self.interrupted)
        except optuna.TrialPruned as exc:  # re-raised once pytabkit has returned
            self.pruned, stop = exc, True
        if stop:
            trainer.should_stop = True

    def _objective(self, val_loss: float) -> float | None:
        if self.task_type == "multiclass":
            return val_loss
        if self.task_type == "regression":
            return math.sqrt(max(val_loss, 0.0)) * self.y_std
        if len(np.unique(self.y_val)) < 2 or not self.logits:  # ROC AUC undefined on one class
            return None
        import torch
        from sklearn.metrics import roc_auc_score

        scores = torch.cat(self.logits).reshape(-1).numpy()
        return float(roc_auc_score(self.y_val, scores)) if len(scores) == len(self.y_val) else None


@contextmanager
def _watching(watcher: _EpochWatcher):
    """Swap pytabkit's TabrLightning for a subclass that calls the watcher after each validation epoch."""
    from pytabkit.models.alg_interfaces import tabr_interface

    base = tabr_interface.TabrLightning

    class WatchedTabrLightning(base):
        def on_validation_epoch_start(self):
            super().on_validation_epoch_start()
            watcher.logits = []
            self._watch_hook = self.model.register_forward_hook(watcher.collect)
            watcher.validation_started = time.perf_counter()

        def on_validation_epoch_end(self):
            super().on_validation_epoch_end()
            self._watch_hook.remove()
            # the validation pass's time per row: the post-fit prediction's share of the deadline
            watcher.monitor.note_prediction_cost(time.perf_counter() - watcher.validation_started,
                                                 len(watcher.y_val))

        def on_train_batch_end(self, outputs, batch, batch_idx):
            super().on_train_batch_end(outputs, batch, batch_idx)
            # Lightning validates the state reached, then ends the fit; after an epoch's last batch the
            # epoch is whole and the monitor decides at its end.
            if batch_idx + 1 < self.trainer.num_training_batches and watcher.monitor.time_up():
                watcher.interrupted, self.trainer.should_stop = True, True

        def on_validation_end(self):  # the epoch's val_loss is in callback_metrics by now (not before)
            super().on_validation_end()
            if not self.trainer.sanity_checking:
                watcher.epoch_end(self.trainer)

    tabr_interface.TabrLightning = WatchedTabrLightning
    try:
        yield
    finally:
        tabr_interface.TabrLightning = base
