"""Hopular's fit on the shared torch loop (the network: network.py; defaults and search space: adapter.py).

How it trains on bench.adapters.framework.torch_training:
  * The loss is HopularLoss (a TrainingLoss): it corrupts the batch, predicts every column from the
    training-set memory with the batch rows' own stored patterns excluded (the loop hands it the rows'
    positions in the training part), and weighs feature and target losses.
  * The feature-loss weight changes per epoch. The loop's per-epoch hook for a model is a StageHook, so
    an "iteration" here is one epoch with one phase (AdamW over the whole network) and the hook sets the
    epoch's weight first (HopularEpochs). Everything else is the loop's: validation (on the target only,
    the model's prediction), early stopping, pruning reports, the deadline, the kept best epoch. A stage
    hook runs the eager loop (no CUDA graph: the corruption draws random numbers every step anyway).
  * The training rows are the memory: the network stores the preprocessed training part and its labels
    (regression: standardized as the loop standardizes the target, torch_training.target_scaling).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

from bench.adapters.framework.context import FitContext, TaskInfo
from bench.adapters.framework.torch_training import (
    Phase,
    TrainConfig,
    TrainedNet,
    TrainingRun,
    default_param_groups,
    target_scaling,
    train_network,
)
from bench.adapters.models.hopular.network import HopularLoss, HopularNet, MaskingConfig

FULL_BATCH_CAP = 512  # "full": the whole training part per step, at most this many rows

class HopularEpochs:
    """StageHook: one iteration = one epoch with one phase; the epoch's feature-loss weight is set first."""

    unit = "epochs"

    def __init__(self, loss: Any, lr: float, weight_decay: float):
        self.loss, self.lr, self.weight_decay = loss, lr, weight_decay
        self.optimizer: Any = None

    def phases(self, run: TrainingRun, iteration: int) -> Iterator[Phase]:
        if self.optimizer is None:
            self.optimizer = torch.optim.AdamW(default_param_groups(run.net, self.weight_decay), lr=self.lr)
        self.loss.begin_epoch(iteration)
        yield Phase(run.net, self.optimizer, lambda idx: run.loss(run.net, idx))

    def finish(self, run: TrainingRun, best_iteration: int) -> None:
        return None


def build_hopular(p: dict[str, Any], task: TaskInfo, X_train: tuple, y_train: Any, d_out: int) -> Any:
    """The network for a preprocessed (x_num, x_cat) training part; `d_out` is the loop's output width."""
    x_num, x_cat = X_train
    mean, std = target_scaling(task, y_train)
    labels = np.asarray(y_train) if task.is_classification else (np.asarray(y_train, dtype=float) - mean) / std
    cards = [int(c) for c in (x_cat.max(axis=0) + 1)] if x_cat.shape[1] else []
    net = HopularNet(x_num, x_cat, labels, task.n_classes, cards, d_token=int(p["d_token"]),
                     n_blocks=int(p["n_blocks"]), n_heads=int(p["n_heads"]),
                     scaling_factor=float(p["scaling_factor"]), input_dropout=float(p["input_dropout"]),
                     lookup_dropout=float(p["lookup_dropout"]), output_dropout=float(p["output_dropout"]),
                     memory_ratio=float(p["memory_ratio"]))
    assert d_out == (task.n_classes or 1)
    return net


def fit_hopular(p: dict[str, Any], task: TaskInfo, ctx: FitContext, X_train: tuple, y_train: Any,
                X_val: tuple, y_val: Any) -> TrainedNet:
    """Train Hopular with the shared loop (early stopping, deadline, pruning reports, kept best epoch)."""
    masking = MaskingConfig(float(p["select_probability"]), float(p["mask_probability"]),
                            float(p["replace_probability"]))
    loss = HopularLoss(masking, float(p["initial_feature_loss_weight"]), float(p["final_feature_loss_weight"]),
                       int(p["feature_loss_anneal_epochs"]))
    batch = p["batch_size"]
    if batch == "full":  # the authors' one batch per epoch (batch_size -1), capped: memory is O(batch x n_train)
        batch = min(len(y_train), FULL_BATCH_CAP)
    cfg = TrainConfig.from_params({**p, "batch_size": batch})
    return train_network(lambda d_out: build_hopular(p, task, X_train, y_train, d_out), task, ctx,
                         X_train, y_train, X_val, y_val, cfg, training_loss=loss,
                         stage_hook=HopularEpochs(loss, float(p["lr"]), float(p["weight_decay"])))
