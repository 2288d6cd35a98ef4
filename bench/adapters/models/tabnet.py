"""TabNet (Arik & Pfister 2021, "TabNet: Attentive Interpretable Tabular Learning", AAAI) through
`pytorch-tabnet` (dreamquark-ai's implementation): optional extra `tabnet`.

Defaults: pytorch-tabnet's (TabModel and fit(): n_d = n_a = 8, n_steps 3, gamma 1.3, lambda_sparse 1e-3,
Adam at lr 0.02, batch size 1024 with ghost batch norm on 128 rows, batch-norm momentum 0.02, sparsemax
masks, at most 100 epochs, patience 10).
Search space: the paper's (Arik & Pfister 2021, appendix; reproduced as Table 8 of Zabërgja et al. 2024,
"Tabular Data: Is Attention All You Need?"): n_d = n_a {8, 16, 24, 32, 64, 128}, n_steps {3..10}, gamma
{1.0, 1.2, 1.5, 2.0}, lambda_sparse {0, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1}, batch size {256, ..., 32768},
virtual batch size {256, 512, 1024, 2048, 4096}, lr {0.005, 0.01, 0.02, 0.025}, batch-norm momentum
m_B {0.6, 0.7, 0.8, 0.9, 0.95, 0.98} (PyTorch counts momentum the other way: 1 - m_B here).
Departures, so that the library's defaults lie inside: gamma is drawn from [1.0, 2.0] (default 1.3),
virtual batch size adds 128. The paper's learning-rate decay (rate {0.4, 0.8, 0.9, 0.95} every
{500, ..., 20000} iterations) is left out: the library's default has no decay, and at the benchmark's
sizes (a few batches per epoch, at most 100 epochs) those step sizes would rarely decay anyway.
Batch sizes larger than the training part are clipped to it (and the virtual batch size to the batch).

How it is driven:
  * The shared stopping protocol (bench.adapters.framework.early_stopping.StoppingMonitor) runs in a pytorch-tabnet
    callback after every epoch: validation log loss (classification) / RMSE (regression), at least 20
    epochs, then the library's patience of 10, the pruner's reports of the task's objective (ROC AUC,
    log loss, RMSE; TrialPruned is re-raised after fit returns), the deadline (after the epoch in which
    it passed: pytorch-tabnet cannot stop mid-epoch) and the one precedence of ends; the best epoch's
    weights are restored at the end and its validation predictions kept. pytorch-tabnet's own early
    stopping is switched off (patience=0) because it cannot wait for a minimum number of epochs. The
    validation part is scored by the adapter, not given to pytorch-tabnet as an eval_set, which refuses
    validation labels the training part lacks.
  * Inputs: z-scored numerics with missing indicators, and categoricals as codes embedded by TabNet itself
    (cat_idxs / cat_dims, code 0 for missing or unseen levels: bench.preprocessing.NumCatPreprocessor).
    Regression trains on the z-scored target and maps predictions back.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, ClassVar, TypedDict

import numpy as np

from bench.adapters import register_adapter
from bench.adapters.framework.contract import Adapter, Capabilities, TrivialFitFallback, expand_proba, missing_extra
from bench.adapters.framework.early_stopping import StoppingMonitor, timed
from bench.adapters.framework.neural_base import split_inputs
from bench.adapters.space import CategoricalParam, FloatParam, IntParam
from bench.preprocessing import NumCatPreprocessor


class TabNetParams(TypedDict):
    n_d: int  # also n_a, as in the paper's space
    n_steps: int
    gamma: float
    lambda_sparse: float
    batch_size: int
    virtual_batch_size: int
    lr: float
    momentum: float
    max_epochs: int
    patience: int


@register_adapter
class TabNetAdapter(TrivialFitFallback, Adapter[TabNetParams]):
    name = "tabnet"
    family = "neural"
    libraries = ("pytorch-tabnet", "torch")
    extra = "tabnet"
    capabilities = Capabilities(gpu="optional")
    defaults: ClassVar[TabNetParams] = {"n_d": 8, "n_steps": 3, "gamma": 1.3, "lambda_sparse": 1e-3, "batch_size": 1024,
                "virtual_batch_size": 128, "lr": 0.02, "momentum": 0.02, "max_epochs": 100, "patience": 10}
    search_space = {
        "n_d": CategoricalParam((8, 16, 24, 32, 64, 128)),
        "n_steps": IntParam(3, 10),
        "gamma": FloatParam(1.0, 2.0),
        "lambda_sparse": CategoricalParam((0.0, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1)),
        "batch_size": CategoricalParam((256, 512, 1024, 2048, 4096, 8192, 16384, 32768)),
        "virtual_batch_size": CategoricalParam((128, 256, 512, 1024, 2048, 4096)),
        "lr": CategoricalParam((0.005, 0.01, 0.02, 0.025)),
        "momentum": CategoricalParam((0.4, 0.3, 0.2, 0.1, 0.05, 0.02)),
    }
    smoke_params = {"max_epochs": 3}

    @classmethod
    def unavailable_reason(cls, task_type: str | None = None) -> str | None:
        return missing_extra("pytorch_tabnet", cls.extra)

    def make_preprocessor(self):
        return NumCatPreprocessor(numeric="standard", seed=self.ctx.seed)

    def _estimator(self, n_num: int, cardinalities: list[int]):
        from pytorch_tabnet.tab_model import TabNetClassifier, TabNetRegressor

        p = self.params
        cls = TabNetClassifier if self.task.is_classification else TabNetRegressor
        return cls(n_d=int(p["n_d"]), n_a=int(p["n_d"]), n_steps=int(p["n_steps"]), gamma=float(p["gamma"]),
                   lambda_sparse=float(p["lambda_sparse"]), momentum=float(p["momentum"]),
                   cat_idxs=list(range(n_num, n_num + len(cardinalities))), cat_dims=cardinalities,
                   optimizer_params={"lr": float(p["lr"])}, seed=int(self.ctx.seed), verbose=0,
                   device_name=self.ctx.device)

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        n_num, cardinalities = split_inputs(X_train)
        X_train, X_val = _matrix(X_train), _matrix(X_val)
        if self.fit_constant_if_trivial(X_train, y_train):
            return
        import torch

        torch.set_num_threads(max(1, int(self.ctx.threads)))
        self.model = self._estimator(n_num, cardinalities)
        self._y_scale = (0.0, 1.0)
        if self.task.is_classification:
            y = np.asarray(y_train, dtype=int)
        else:
            y = np.asarray(y_train, dtype="float64")
            std = float(np.std(y))
            self._y_scale = (float(np.mean(y)), std if std > 0 else 1.0)
            y = ((y - self._y_scale[0]) / self._y_scale[1]).reshape(-1, 1)
        self.kept_val_predictions = None
        batch = max(2, min(int(self.params["batch_size"]), len(X_train)))
        watcher = _EpochWatcher(self, X_val, np.asarray(y_val))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "No early stopping will be performed": the watcher stops
            self.model.fit(X_train, y, max_epochs=int(self.params["max_epochs"]), patience=0, batch_size=batch,
                           virtual_batch_size=min(int(self.params["virtual_batch_size"]), batch),
                           drop_last=True, callbacks=[watcher], compute_importance=False)
        if watcher.pruned is not None:
            raise watcher.pruned
        self.kept_val_predictions = watcher.monitor.kept_predictions  # the restored epoch's
        watcher.monitor.finish()

    def predict_values(self, X: np.ndarray) -> np.ndarray:
        """Predictions on the input matrix: probabilities over all classes, or target values."""
        if not self.task.is_classification:
            out = np.asarray(self.model.predict(X), dtype="float64").ravel()
            return out * self._y_scale[1] + self._y_scale[0]
        return expand_proba(self.model.predict_proba(X), np.asarray(self.model.classes_, dtype=int),
                            self.task.n_classes)

    def predict_raw(self, X) -> np.ndarray:
        if self._constant is not None:
            return self.constant_output(len(X))
        return self.predict_values(_matrix(X))


def _matrix(X) -> np.ndarray:
    """TabNet's input: the numeric columns, then the categorical codes (cat_idxs point at them)."""
    x_num, x_cat = X
    return np.hstack([x_num, x_cat.astype(np.float32)]).astype(np.float32)


class _EpochWatcher:
    """pytorch-tabnet callback: runs the shared stopping protocol (framework.early_stopping) per epoch."""

    def __init__(self, adapter: TabNetAdapter, X_val, y_val: np.ndarray):
        self.adapter, self.X_val = adapter, X_val
        self.monitor = StoppingMonitor(adapter.ctx, adapter.task, y_val, int(adapter.params["patience"]),
                                       unit="epochs", max_iterations=int(adapter.params["max_epochs"]))
        self.best_state: Any = None
        self.pruned: BaseException | None = None

    # pytorch-tabnet's CallbackContainer calls these
    def set_params(self, params):
        self.params = params

    def set_trainer(self, model):
        self.trainer = model

    def on_train_begin(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...

    def on_epoch_end(self, epoch, logs=None) -> None:
        import optuna

        pred, seconds = timed(lambda: self.adapter.predict_values(self.X_val))
        self.monitor.note_prediction_cost(seconds, len(pred))
        try:
            stop = self.monitor.after_predictions(epoch + 1, pred, keep=self._keep)
        except optuna.TrialPruned as exc:  # re-raised once pytorch-tabnet has returned
            self.pruned, stop = exc, True
        if stop:
            self.trainer._stop_training = True

    def _keep(self) -> None:
        self.best_state = copy.deepcopy(self.trainer.network.state_dict())

    def on_train_end(self, logs=None) -> None:
        if self.best_state is not None:
            self.trainer.network.load_state_dict(self.best_state)
        self.trainer.network.eval()
