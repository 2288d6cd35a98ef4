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
    TabrLightning class is replaced by a subclass (lightning.py) whose on_validation_end (where
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

import os
import tempfile
from contextlib import redirect_stdout
from typing import Any, ClassVar, TypedDict

import numpy as np
import pandas as pd

from bench.adapters import register_adapter
from bench.adapters.framework.contract import (
    Adapter,
    Capabilities,
    TrivialFitFallback,
    estimator_output,
    missing_extra,
)
from bench.adapters.models.realmlp import ImputedFramePreprocessor, quiet_lightning
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


class TabRParams(TypedDict):
    d_main: int
    context_dropout: float
    dropout0: float
    lr: float
    weight_decay: float
    use_weight_decay: bool  # False: weight decay 0 (the paper's "?LogU" space)
    encoder_n_blocks: int
    predictor_n_blocks: int
    context_size: int
    batch_size: int | str  # "auto": pytabkit's, by training-set size
    n_epochs: int
    patience: int


@register_adapter
class TabRAdapter(TrivialFitFallback, Adapter[TabRParams]):
    name = "tabr"
    family = "neural"
    libraries = ("pytabkit", "torch")  # skorch only lends pytabkit a Dataset base class
    extra = "tabr"
    capabilities = Capabilities(gpu="optional")
    defaults: ClassVar[TabRParams] = {
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
                      patience=10**9,  # pytabkit's EarlyStopping never fires: the shared rule stops (lightning.py)
                      device=self.ctx.device, random_state=self.ctx.seed, n_threads=self.ctx.threads, verbosity=0)
        if self.task.is_classification:
            params["val_metric_name"] = "cross_entropy"
        return params

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        from pytabkit import TabR_S_D_Classifier, TabR_S_D_Regressor

        cls = TabR_S_D_Classifier if self.task.is_classification else TabR_S_D_Regressor
        from bench.adapters.models.tabr.lightning import EpochWatcher, watching

        watcher = EpochWatcher(self, np.asarray(y_val), np.asarray(y_train))
        cat_indicator = [isinstance(dt, pd.CategoricalDtype) for dt in X_train.dtypes]
        y_fit = y_train.astype(int) if self.task.is_classification else np.asarray(y_train, dtype="float64")
        y_val_fit = y_val.astype(int) if self.task.is_classification else np.asarray(y_val, dtype="float64")
        with tempfile.TemporaryDirectory(prefix="tabr-") as tmp, watching(watcher), quiet_lightning(), \
                open(os.devnull, "w") as devnull, redirect_stdout(devnull):  # pytabkit's TabR prints per epoch
            self.model = cls(**self._model_params(), tmp_folder=tmp)  # Lightning's checkpoints go there
            self.model.fit(X_train, y_fit, X_val, y_val_fit, cat_indicator=cat_indicator)
        if watcher.pruned is not None:
            raise watcher.pruned
        watcher.monitor.finish()

    def predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        with quiet_lightning(), open(os.devnull, "w") as devnull, redirect_stdout(devnull):
            return estimator_output(self.model, X, self.task)
