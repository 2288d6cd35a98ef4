"""Hopular on the shared torch loop: defaults, search space and the fit (the network: hopular_network).

Imports no torch at module level (the adapter's light module; torch comes with a fit).

How it trains on bench.adapters.torch_training:
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

from typing import TYPE_CHECKING, Any, Iterator

from bench.adapters.space import CategoricalParam, FloatParam, IntParam

if TYPE_CHECKING:
    from bench.adapters.base import FitContext, TaskInfo
    from bench.adapters.torch_training import Phase, TrainedNet, TrainingRun

# Defaults: the authors' command-line defaults (github.com/ml-jku/hopular, commit 3e0c39f,
# hopular/interactive.py:50-151): feature size 32, 8 Hopfield heads, 8 Hopular blocks, scaling factor 1
# (beta = 1 / sqrt(head dim)), dropout 0.1 on inputs and lookups and 0.01 on the summarization, the whole
# memory per step (memory ratio 1), every feature selected for the feature loss with 2.5% masked and 17.5%
# replaced, feature-loss weight annealed from 1 to 0, lr 1e-3, weight decay 0.1, gradient-norm clip 1.
# Departures, each because the harness's protocol is shared by every network: AdamW where the authors use
# LAMB inside Lookahead (hopular/optim.py; torch has neither, and Lookahead with their 1 step and ratio
# 0.005 is close to the plain optimizer); mini-batches of the shared auto size where they take the whole
# training set as one batch (batch_size -1); at most 500 epochs with the shared early stopping (patience
# 50, longer than the networks' 16 because the target loss only gains weight as the feature weight
# anneals) where they train 5000 epochs and keep the best validation checkpoint (every 10 epochs); the
# feature weight annealed over the first 100 epochs where their cosine runs over a 10,000-epoch cycle of
# which their 5000 epochs see the first half (interactive.py:206, blocks.py:979-985; it ends at 0.5); a
# constant learning rate where theirs follows the same half cosine.
HOPULAR_DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "weight_decay": 0.1,
    "batch_size": "auto",
    "eval_batch_size": 1024,
    "max_epochs": 500,
    "patience": 50,
    "grad_clip": 1.0,
    "time_limit_s": None,
    "fast_path": "off",  # a stage hook runs the eager loop
    "d_token": 32,
    "n_blocks": 8,
    "n_heads": 8,
    "scaling_factor": 1.0,
    "input_dropout": 0.1,
    "lookup_dropout": 0.1,
    "output_dropout": 0.01,
    "memory_ratio": 1.0,
    "select_probability": 1.0,
    "mask_probability": 0.025,
    "replace_probability": 0.175,
    "initial_feature_loss_weight": 1.0,
    "final_feature_loss_weight": 0.0,
    "feature_loss_anneal_epochs": 100,
}

FULL_BATCH_CAP = 512  # "full": the whole training part per step, at most this many rows

SMOKE_PARAMS: dict[str, Any] = {"max_epochs": 3, "patience": 2, "d_token": 8, "n_blocks": 1, "n_heads": 2}

# Search space. The paper's hyperparameter grid could not be read from the sources available here (only
# the abstract and the code); this space is ours, centred on the authors' defaults and spanning the knobs
# their command line exposes: depth and width of the Hopfield stack, the inverse temperature (scaling
# factor: small = averaging many rows, large = retrieving the nearest few), the three dropouts, how much
# of the memory a step sees, the masking rate and the optimizer. Ranges: n_blocks 1-8 (their default is
# the largest, as deeper stacks cost n_train x width per block), d_token 16-64 around 32, heads 4 or 8
# (their default 8; d_token must stay divisible), scaling factor 0.1-10 log, lr 1e-4-3e-3 log around
# 1e-3, weight decay 1e-4-0.3 log around 0.1.
HOPULAR_SEARCH_SPACE: dict[str, Any] = {
    "n_blocks": IntParam(1, 8),
    "d_token": CategoricalParam((16, 32, 64)),
    "n_heads": CategoricalParam((4, 8)),
    "scaling_factor": FloatParam(0.1, 10.0, log=True),
    "input_dropout": FloatParam(0.0, 0.3),
    "lookup_dropout": FloatParam(0.0, 0.3),
    "memory_ratio": FloatParam(0.5, 1.0),
    "mask_probability": FloatParam(0.0, 0.2),
    "lr": FloatParam(1e-4, 3e-3, log=True),
    "weight_decay": FloatParam(1e-4, 0.3, log=True),
}


class HopularEpochs:
    """StageHook: one iteration = one epoch with one phase; the epoch's feature-loss weight is set first."""

    unit = "epochs"

    def __init__(self, loss: Any, lr: float, weight_decay: float):
        self.loss, self.lr, self.weight_decay = loss, lr, weight_decay
        self.optimizer: Any = None

    def phases(self, run: "TrainingRun", iteration: int) -> Iterator["Phase"]:
        import torch

        from bench.adapters.torch_training import Phase, default_param_groups

        if self.optimizer is None:
            self.optimizer = torch.optim.AdamW(default_param_groups(run.net, self.weight_decay), lr=self.lr)
        self.loss.begin_epoch(iteration)
        yield Phase(run.net, self.optimizer, lambda idx: run.loss(run.net, idx))

    def finish(self, run: "TrainingRun", best_iteration: int) -> None:
        return None


def build_hopular(p: dict[str, Any], task: "TaskInfo", X_train: tuple, y_train: Any, d_out: int) -> Any:
    """The network for a preprocessed (x_num, x_cat) training part; `d_out` is the loop's output width."""
    import numpy as np

    from bench.adapters.hopular_network import HopularNet
    from bench.adapters.torch_training import target_scaling

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


def fit_hopular(p: dict[str, Any], task: "TaskInfo", ctx: "FitContext", X_train: tuple, y_train: Any,
                X_val: tuple, y_val: Any) -> "TrainedNet":
    """Train Hopular with the shared loop (early stopping, deadline, pruning reports, kept best epoch)."""
    from bench.adapters.hopular_network import HopularLoss, MaskingConfig
    from bench.adapters.torch_training import TrainConfig, train_network

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
