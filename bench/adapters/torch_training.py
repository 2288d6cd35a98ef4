"""One training loop for every neural adapter (MLP here; ResNet, FT-Transformer, TabM build on it).

What it does, and why:
  * AdamW with weight decay on weight matrices only: decaying biases and normalization scales only
    shrinks offsets the model needs (the usual practice in the rtdl / TabM code).
  * Early stopping on the validation OBJECTIVE (bench.metrics: ROC AUC / log loss / RMSE on the
    original target scale), not on the training loss, so that "best epoch" means what tuning and the
    leaderboard mean; the best weights are restored at the end.
  * Regression is fit on a standardized target (mean/std of the training y) so one learning rate works
    for targets of any scale; predictions are mapped back.
  * Seeded: torch.manual_seed before the model is built (init, dropout) and a private torch.Generator
    for the epoch permutations, so the same seed and thread count give identical results on CPU.
  * Plain tensor indexing with randperm instead of a DataLoader: tabular batches are tiny and the
    DataLoader's per-item collation would dominate the step time.
  * bf16 autocast on CUDA only; CPU trains in float32 (CPU bf16 is slower and less accurate).

Inputs may be one array or a tuple of arrays (e.g. numeric matrix + categorical codes for an
FT-Transformer); the model is called as model(*batch). A model may return (batch, d_out) or, for
ensembles trained jointly like TabM, (batch, k, d_out): each member gets the loss, predictions average.
A model whose training objective is not "its outputs vs the targets" (mixup with mixed targets,
neighbourhood-based predictions) passes `training_loss` (see TrainingLoss); everything else (early
stopping, pruning reports, deadline, seeding, prediction) stays the loop's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.adapters.base import FitContext, TaskInfo
from bench.metrics import score_predictions

Arrays = Union[np.ndarray, tuple]
# training_loss(net, batch_inputs, batch_targets, batch_rows) -> scalar loss, called inside the autocast
# context instead of "net(*batch_inputs) vs batch_targets". batch_rows are the rows' positions in the
# training part (ModernNCA keeps a row out of its own neighbourhood); targets are class codes or the
# standardized regression target (see target_scaling).
TrainingLoss = Callable[[nn.Module, tuple, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: Union[int, str] = "auto"
    eval_batch_size: int = 4096
    max_epochs: int = 100
    patience: int = 16
    grad_clip: float | None = None  # max gradient norm; None: no clipping
    time_limit_s: float | None = None  # wall-clock budget for the whole fit

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TrainConfig":
        """Pick the training keys out of an adapter's parameter dict (the rest are architecture)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})


def auto_batch_size(n_rows: int) -> int:
    """Batch size by training-set size.

    Gorishniy et al. 2021 used 256 for ~10-50k training rows, 512 for ~50-200k and 1024 beyond; smaller
    data gets smaller batches so that an epoch still has a few dozen optimizer steps.
    """
    for limit, size in ((1_000, 32), (4_000, 64), (12_000, 128), (60_000, 256), (200_000, 512)):
        if n_rows <= limit:
            return size
    return 1024


def output_dim(task: TaskInfo) -> int:
    # Binary is a 2-class softmax: one code path for all classification, and the columns are
    # directly the probabilities the metrics expect.
    return task.n_classes if task.is_classification else 1


def target_scaling(task: TaskInfo, y_train: np.ndarray) -> tuple[float, float]:
    """(mean, std) the regression target is standardized with during training ((0, 1) for classes)."""
    if task.is_classification:
        return 0.0, 1.0
    return float(np.mean(y_train)), float(np.std(y_train)) or 1.0  # a constant target: nothing to scale


def default_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _tensors(X: Arrays, device: torch.device) -> tuple[torch.Tensor, ...]:
    arrays = X if isinstance(X, tuple) else (X,)
    out = []
    for a in arrays:
        a = np.asarray(a)
        # Integer inputs are category codes for embedding layers; everything else is float32.
        dtype = np.int64 if a.dtype.kind in "iub" else np.float32
        out.append(torch.from_numpy(np.ascontiguousarray(a, dtype=dtype)).to(device))
    return tuple(out)


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.inference_mode()
def _forward_all(model: nn.Module, xs: tuple[torch.Tensor, ...], batch: int, device: torch.device) -> torch.Tensor:
    model.eval()
    n = len(xs[0])
    outs = []
    for start in range(0, n, batch):
        with _autocast(device):
            out = model(*(x[start:start + batch].to(device, non_blocking=True) for x in xs))
        outs.append(out.double())
    return torch.cat(outs)


def _loss(out: torch.Tensor, target: torch.Tensor, task: TaskInfo) -> torch.Tensor:
    out = out.float()
    if out.ndim == 3:  # (batch, k, d_out): every ensemble member is trained on the same target
        k = out.shape[1]
        out, target = out.flatten(0, 1), target.repeat_interleave(k)
    if task.is_classification:
        return F.cross_entropy(out, target)
    return F.mse_loss(out.squeeze(-1), target)


class TrainedNet:
    """A fitted network plus what is needed to turn its outputs into predictions."""

    def __init__(self, model: nn.Module, task: TaskInfo, device: torch.device, eval_batch_size: int,
                 y_mean: float = 0.0, y_std: float = 1.0):
        self.model, self.task, self.device = model, task, device
        self.eval_batch_size, self.y_mean, self.y_std = eval_batch_size, y_mean, y_std

    def outputs_to_predictions(self, out: torch.Tensor) -> np.ndarray:
        if self.task.is_classification:
            proba = torch.softmax(out, dim=-1)  # float64: tiny probabilities stay exact for log loss
            if proba.ndim == 3:
                proba = proba.mean(dim=1)
            return proba.cpu().numpy()
        pred = out.squeeze(-1)
        if pred.ndim == 2:
            pred = pred.mean(dim=1)
        return pred.cpu().numpy() * self.y_std + self.y_mean

    def predict(self, X: Arrays) -> np.ndarray:
        """Probabilities (n, n_classes) or regression values (n,) on the original target scale."""
        xs = _tensors(X, torch.device("cpu"))  # moved to the device batch by batch
        return self.outputs_to_predictions(_forward_all(self.model, xs, self.eval_batch_size, self.device))


def train_network(model: nn.Module | Callable[[int], nn.Module], task: TaskInfo, ctx: FitContext,
                  X_train: Arrays, y_train: np.ndarray, X_val: Arrays, y_val: np.ndarray,
                  cfg: TrainConfig,
                  param_groups: Callable[[nn.Module, float], list[dict]] = default_param_groups,
                  training_loss: TrainingLoss | None = None) -> TrainedNet:
    """Train with early stopping on the validation objective; returns the best-epoch network.

    `model` is preferably a factory called with the output width (see output_dim) after seeding, so
    that the initialization is reproducible; a ready module is accepted as is.
    ctx.report_value(epoch, value) is called once per epoch and may raise optuna.TrialPruned, which
    propagates. ctx.info gets epochs, best_epoch, best_val, stopped_by, batch_size, fit_seconds.
    """
    if int(cfg.max_epochs) < 1:
        raise ValueError(f"max_epochs must be at least 1, got {cfg.max_epochs}")
    started = time.monotonic()
    torch.set_num_threads(max(1, int(ctx.threads)))
    torch.manual_seed(ctx.seed)
    device = torch.device(ctx.device)
    net = model if isinstance(model, nn.Module) else model(output_dim(task))
    net = net.to(device)

    xs_train, xs_val = _tensors(X_train, device), _tensors(X_val, device)
    n = len(xs_train[0])
    y_train = np.array(y_train)  # a private, writable copy (torch refuses read-only buffers)
    y_mean, y_std = target_scaling(task, y_train)
    if task.is_classification:
        target = torch.as_tensor(y_train, dtype=torch.long, device=device)
    else:
        target = torch.as_tensor((y_train - y_mean) / y_std, dtype=torch.float32, device=device)
    trained = TrainedNet(net, task, device, int(cfg.eval_batch_size), y_mean, y_std)

    # A binary validation part with one class has no ROC AUC; early-stop on log loss then and do
    # not report (the tuner's direction is that of ROC AUC).
    metric, higher_better, report = task.objective.metric, task.objective.higher_is_better, True
    if task.task_type == "binary" and len(np.unique(y_val)) < 2:
        metric, higher_better, report = "log_loss", False, False

    batch_size = auto_batch_size(n) if cfg.batch_size == "auto" else int(cfg.batch_size)
    optimizer = torch.optim.AdamW(param_groups(net, cfg.weight_decay), lr=cfg.lr)
    generator = torch.Generator().manual_seed(ctx.seed)
    deadline = math.inf if cfg.time_limit_s is None else started + cfg.time_limit_s
    if ctx.deadline is not None:
        deadline = min(deadline, ctx.deadline)

    best_val, best_epoch, best_state, stopped_by, epoch = None, 0, None, "max_epochs", 0
    ctx.info.update(batch_size=batch_size, early_stopping_metric=metric)
    for epoch in range(1, int(cfg.max_epochs) + 1):
        net.train()
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            if len(idx) == 1 and n > 1:
                continue  # a one-row batch breaks BatchNorm (ResNet) and says little; it is reshuffled next epoch
            batch = tuple(x[idx] for x in xs_train)
            if training_loss is None:
                with _autocast(device):
                    out = net(*batch)
                loss = _loss(out, target[idx], task)
            else:
                with _autocast(device):
                    loss = training_loss(net, batch, target[idx], idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            optimizer.step()
            if time.monotonic() > deadline:
                stopped_by = "time_limit"
                break

        pred = trained.outputs_to_predictions(_forward_all(net, xs_val, trained.eval_batch_size, device))
        if not np.all(np.isfinite(pred)):
            stopped_by = "diverged"  # non-finite outputs never recover; keep the best epoch so far
            break
        value = score_predictions(task.task_type, y_val, pred, task.n_classes)[metric]  # the objective
        if best_val is None or (value > best_val if higher_better else value < best_val):
            best_val, best_epoch = value, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        ctx.info.update(epochs=epoch, best_epoch=best_epoch, best_val=best_val)
        if report:
            ctx.report_value(epoch, value)
        if stopped_by == "time_limit":
            break
        if epoch - best_epoch >= cfg.patience:
            stopped_by = "early_stopping"
            break

    if best_state is None:
        raise FloatingPointError(f"training diverged in epoch {epoch} (non-finite outputs) before any "
                                 f"usable epoch; lr={cfg.lr} is likely too high")
    net.load_state_dict(best_state)
    ctx.info.update(epochs=epoch, best_epoch=best_epoch, best_val=best_val, stopped_by=stopped_by,
                    fit_seconds=round(time.monotonic() - started, 3))
    return trained
