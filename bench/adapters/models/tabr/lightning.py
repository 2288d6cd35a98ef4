"""TabR's Lightning hooks (imports pytabkit and torch at the top; bench.adapters.models.tabr.adapter says why
the stopping protocol runs here): the shared StoppingMonitor once per epoch, the deadline after every
training batch, and the validation logits for the pruner's ROC AUC.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import optuna
import torch
from pytabkit.models.alg_interfaces import tabr_interface
from pytabkit.models.alg_interfaces.tabr_interface import TabrLightning as PytabkitTabrLightning
from sklearn.metrics import roc_auc_score

from bench.adapters.framework.early_stopping import StoppingMonitor

if TYPE_CHECKING:
    from bench.adapters.models.tabr.adapter import TabRAdapter


class EpochWatcher:
    """Runs the shared stopping protocol (bench.adapters.framework.early_stopping.StoppingMonitor) once per epoch,
    on the val_loss Lightning computed (the log loss; for regression the MSE of the standardized target,
    turned into the RMSE in target units: the same best epoch)."""

    def __init__(self, adapter: "TabRAdapter", y_val: np.ndarray, y_train: np.ndarray):
        self.ctx, self.task_type = adapter.ctx, adapter.task.task_type
        self.monitor = StoppingMonitor(adapter.ctx, adapter.task, y_val, int(adapter.params["patience"]),
                                       unit="epochs", max_iterations=int(adapter.params["n_epochs"]))
        self.y_val = y_val
        # pytabkit standardizes the regression target with the training mean and (unbiased) std
        self.y_std = float(np.std(np.asarray(y_train, dtype="float64"), ddof=1)) if len(y_train) > 1 else 1.0
        self.interrupted = False
        self.pruned: optuna.TrialPruned | None = None
        self.logits: list = []
        self.validation_started = 0.0

    def collect(self, module, inputs, output) -> None:
        self.logits.append(output.detach().float().cpu())

    def epoch_end(self, trainer) -> None:
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
        scores = torch.cat(self.logits).reshape(-1).numpy()
        return float(roc_auc_score(self.y_val, scores)) if len(scores) == len(self.y_val) else None


class WatchedTabrLightning(PytabkitTabrLightning):
    """pytabkit's TabR module, calling the watcher of the fit in progress (`watching`) after each validation
    epoch (on_validation_end, where Lightning's own EarlyStopping looks) and checking the deadline after
    each training batch."""

    watcher: ClassVar[EpochWatcher | None] = None

    @property
    def _watcher(self) -> EpochWatcher:
        if self.watcher is None:
            raise RuntimeError("WatchedTabrLightning runs only inside bench's `watching` (no fit in progress)")
        return self.watcher

    def on_validation_epoch_start(self):
        super().on_validation_epoch_start()
        self._watcher.logits = []
        self._watch_hook = self.model.register_forward_hook(self._watcher.collect)
        self._watcher.validation_started = time.perf_counter()

    def on_validation_epoch_end(self):
        super().on_validation_epoch_end()
        self._watch_hook.remove()
        # the validation pass's time per row: the post-fit prediction's share of the deadline
        self._watcher.monitor.note_prediction_cost(time.perf_counter() - self._watcher.validation_started,
                                                   len(self._watcher.y_val))

    def on_train_batch_end(self, outputs, batch, batch_idx):
        super().on_train_batch_end(outputs, batch, batch_idx)
        # Lightning validates the state reached, then ends the fit; after an epoch's last batch the
        # epoch is whole and the monitor decides at its end.
        if batch_idx + 1 < self.trainer.num_training_batches and self._watcher.monitor.time_up():
            self._watcher.interrupted, self.trainer.should_stop = True, True

    def on_validation_end(self):  # the epoch's val_loss is in callback_metrics by now (not before)
        super().on_validation_end()
        if not self.trainer.sanity_checking:
            self._watcher.epoch_end(self.trainer)


@contextmanager
def watching(watcher: EpochWatcher):
    """Swap pytabkit's TabrLightning for WatchedTabrLightning, calling `watcher`, for the duration of a fit."""
    WatchedTabrLightning.watcher = watcher
    tabr_interface.TabrLightning = WatchedTabrLightning
    try:
        yield
    finally:
        tabr_interface.TabrLightning = PytabkitTabrLightning
        WatchedTabrLightning.watcher = None
