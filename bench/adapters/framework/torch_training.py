"""One training loop for every neural adapter (MLP here; ResNet, FT-Transformer, TabM build on it).

What it does, and why:
  * AdamW with weight decay on weight matrices only: decaying biases and normalization scales only
    shrinks offsets the model needs (the usual practice in the rtdl / TabM code).
  * Early stopping, pruning reports, the deadline and how the fit ended are the protocol every
    iterative adapter shares (bench.adapters.framework.early_stopping.StoppingMonitor): validation log loss for
    classification and RMSE (original target scale) for regression, never before MIN_ITERATIONS
    epochs, then `patience` epochs without improvement; the weights of the best epoch are restored at
    the end, also after a stop at the epoch cap or the deadline, and that epoch's validation
    predictions are kept (the trial is scored on them, no second pass). Each epoch's validation
    predictions are scored once for both the stopping metric and the objective reported to the pruner.
  * The tuning budget's end (ctx.deadline) or `time_limit_s` is checked before every batch but an
    epoch's first (a host clock read, never a device synchronisation), less the time the test
    prediction after the fit will take (measured on the validation passes); an epoch cut there is
    scored and kept if it is the best, and the fit ends `deadline`. Unit "epochs".
  * Stage-wise models (GrowNet) train on the same loop through a StageHook: an iteration is a stage,
    whose phases (fit the new stage, then the corrective step) the hook supplies.
  * Regression is fit on a standardized target (mean/std of the training y) so one learning rate works
    for targets of any scale; predictions are mapped back.
  * Seeded: torch.manual_seed before the model is built (init, dropout) and a private torch.Generator
    for the epoch permutations, so the same seed and thread count give identical results on CPU.
  * Plain tensor indexing with randperm instead of a DataLoader: tabular batches are tiny and the
    DataLoader's per-item collation would dominate the step time.
  * bf16 autocast on CUDA only; CPU trains in float32 (CPU bf16 is slower and less accurate).
  * Each epoch's validation scores come from bench.metrics.epoch_scores (only the two numbers the loop
    needs, in numpy): scikit-learn's per-call validation cost a tenth of a GPU epoch at batch 1024.
  * Two loops share everything above (class TrainingRun): the eager loop below (`fast_path="off"`) and
    the CUDA fast path in bench.adapters.framework.torch_fast (`"eager"`, `"graph"`, `"compile"`): data and
    batches on the device, fused AdamW, no host synchronisation inside an epoch, and the train step
    captured as a CUDA graph. `"auto"` (the default) is `"graph"` on CUDA and `"off"` elsewhere; the
    environment variable BENCH_FAST_PATH overrides the setting for every fit of a process (and of
    the sweep workers it starts). ctx.info["fast_path"] says which loop really ran, and
    ctx.info["fast_path_fallback"] why a requested graph / compile step fell back to eager.

Inputs may be one array or a tuple of arrays (e.g. numeric matrix + categorical codes for an
FT-Transformer); the model is called as model(*batch). A model may return (batch, d_out) or, for
ensembles trained jointly like TabM, (batch, k, d_out): each member gets the loss, predictions average.
A model whose training objective is not "its outputs vs the targets" (mixup with mixed targets,
neighbourhood-based predictions) passes `training_loss` (see TrainingLoss); everything else (early
stopping, pruning reports, deadline, seeding, prediction) stays the loop's. Such a loss may draw random
numbers or index data-dependently, which a captured CUDA graph would freeze: it trains on the fast
path's eager steps ("graph" and "compile" become "eager", and ctx.info["fast_path_fallback"] says so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import settings
from bench.adapters.framework.context import FitContext, TaskInfo
from bench.adapters.framework.early_stopping import StoppingMonitor
from bench.adapters.framework.neural_base import FAST_PATH_ENV, TrainConfig, auto_batch_size, check_fast_path

Arrays = Union[np.ndarray, tuple]
# training_loss(net, batch_inputs, batch_targets, batch_rows) -> scalar loss, called inside the autocast
# context instead of "net(*batch_inputs) vs batch_targets". batch_rows are the rows' positions in the
# training part (ModernNCA keeps a row out of its own neighbourhood); targets are class codes or the
# standardized regression target (see target_scaling).
TrainingLoss = Callable[[nn.Module, tuple, torch.Tensor, torch.Tensor], torch.Tensor]


def resolve_fast_path(requested: str, device: torch.device) -> str:
    """The loop a fit runs: BENCH_FAST_PATH (when set) beats the configuration; "auto" is the fast
    path with CUDA graphs on CUDA and the eager loop elsewhere."""
    override = settings.FAST_PATH.value().lower()
    mode = check_fast_path(FAST_PATH_ENV, override) if override else requested
    if mode == "auto":
        return "graph" if device.type == "cuda" else "off"
    return mode


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


def autocast_cuda_bf16(device: torch.device, cache: bool = True):
    # cache=False inside CUDA-graph capture: autocast's cast cache must not outlive the captured region.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda", cache_enabled=cache)


@torch.inference_mode()
def _forward_all(model: nn.Module, xs: tuple[torch.Tensor, ...], batch: int, device: torch.device) -> torch.Tensor:
    model.eval()
    n = len(xs[0])
    outs = []
    for start in range(0, n, batch):
        with autocast_cuda_bf16(device):
            out = model(*(x[start:start + batch].to(device, non_blocking=True) for x in xs))
        outs.append(out.double())
    return torch.cat(outs)


def batch_loss(out: torch.Tensor, target: torch.Tensor, task: TaskInfo) -> torch.Tensor:
    out = out.float()
    if out.ndim == 3:  # (batch, k, d_out): every ensemble member is trained on the same target
        k = out.shape[1]
        # expand + reshape = repeat_interleave(k) without its device-to-host size read (CUDA graphs)
        out, target = out.flatten(0, 1), target.unsqueeze(1).expand(-1, k).reshape(-1)
    if task.is_classification:
        return F.cross_entropy(out, target)
    return F.mse_loss(out.squeeze(-1), target)


class TrainedNet:
    """A fitted network plus what is needed to turn its outputs into predictions."""

    def __init__(self, model: nn.Module, task: TaskInfo, device: torch.device, eval_batch_size: int,
                 y_mean: float = 0.0, y_std: float = 1.0):
        self.model, self.task, self.device = model, task, device
        self.eval_batch_size, self.y_mean, self.y_std = eval_batch_size, y_mean, y_std
        self.val_predictions: np.ndarray | None = None  # the kept epoch's, set by the training loop

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


@dataclass
class Phase:
    """Part of one iteration of the loop: `epochs` passes over the training rows in random batches,
    each step minimizing loss(rows) with `optimizer`; `module` is put in training mode for it."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    loss: Callable[[torch.Tensor], torch.Tensor]
    epochs: int = 1


class StageHook(Protocol):
    """Stage-wise training on the shared loop (GrowNet): an iteration is a stage instead of an epoch.
    `phases` yields what the stage trains (a generator: a phase may change the model, e.g. add the new
    stage, before the next is asked for; when the clock interrupts a phase, the rest are not asked for);
    `finish` runs before the best stage's weights are restored. Everything else (validation, early
    stopping, pruning reports, the deadline, the kept state) is the loop's."""

    unit: str

    def phases(self, run: "TrainingRun", iteration: int) -> Iterator[Phase]: ...

    def finish(self, run: "TrainingRun", best_iteration: int) -> None: ...


class TrainingRun:
    """What one fit shares between the eager loop and the fast path: the network, the data on the
    device, the optimizer, the stopping protocol (bench.adapters.framework.early_stopping.StoppingMonitor), and
    the decisions taken once per epoch (end_epoch)."""

    def __init__(self, net: nn.Module, task: TaskInfo, ctx: FitContext, X_train: Arrays, y_train: np.ndarray,
                 X_val: Arrays, y_val: np.ndarray, cfg: TrainConfig, param_groups,
                 optimizer_options: dict, training_loss: TrainingLoss | None = None,
                 stage_hook: StageHook | None = None):
        self.net, self.task, self.ctx, self.cfg, self.stage_hook = net, task, ctx, cfg, stage_hook
        self.device = device = next(net.parameters()).device
        self.xs_train, self.xs_val = _tensors(X_train, device), _tensors(X_val, device)
        self.n = len(self.xs_train[0])
        y_train = np.array(y_train)  # a private, writable copy (torch refuses read-only buffers)
        y_mean, y_std = target_scaling(task, y_train)
        self.training_loss = training_loss
        if task.is_classification:
            self.target = torch.as_tensor(y_train, dtype=torch.long, device=device)
        else:
            self.target = torch.as_tensor((y_train - y_mean) / y_std, dtype=torch.float32, device=device)
        self.trained = TrainedNet(net, task, device, int(cfg.eval_batch_size), y_mean, y_std)
        self.n_val = len(np.asarray(y_val))
        self.batch_size = auto_batch_size(self.n) if cfg.batch_size == "auto" else int(cfg.batch_size)
        # A stage hook brings an optimizer per phase.
        self.optimizer = (None if stage_hook else
                          torch.optim.AdamW(param_groups(net, cfg.weight_decay), lr=cfg.lr, **optimizer_options))
        self.base_lrs = [] if self.optimizer is None else [g["lr"] for g in self.optimizer.param_groups]
        self.generator = torch.Generator().manual_seed(ctx.seed)
        self.monitor = StoppingMonitor(ctx, task, y_val, int(cfg.patience), max_iterations=int(cfg.max_epochs),
                                       time_limit_s=cfg.time_limit_s,
                                       unit=stage_hook.unit if stage_hook else "epochs")
        self.best_state: dict | None = None
        self.val_exact = True  # the validation passes predict as TrainedNet.predict does (same batches)

    def loss(self, module: nn.Module, idx: torch.Tensor, cache: bool = True) -> torch.Tensor:
        """The training loss of the rows `idx` (positions in the training part) through `module`."""
        batch = tuple(x[idx] for x in self.xs_train)
        with autocast_cuda_bf16(self.device, cache):
            if self.training_loss is not None:
                return self.training_loss(module, batch, self.target[idx], idx)
            out = module(*batch)
        return batch_loss(out, self.target[idx], self.task)

    def batches(self):
        """One epoch's batches of row positions (seeded permutation); a one-row batch is skipped (it
        breaks BatchNorm and says little), its row is reshuffled next epoch."""
        order = torch.randperm(self.n, generator=self.generator).to(self.device)
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) > 1 or self.n == 1:
                yield idx

    def phases(self, iteration: int) -> Iterator[Phase]:
        if self.stage_hook is not None:
            return self.stage_hook.phases(self, iteration)
        assert self.optimizer is not None
        return iter([Phase(self.net, self.optimizer, lambda idx: self.loss(self.net, idx))])

    def begin_epoch(self, epoch: int) -> None:
        """The epoch's learning rate (TrainConfig.lr_schedule; param groups keep their ratios)."""
        if self.optimizer is None or self.cfg.lr_schedule == "constant":
            return
        scale = self.cfg.lr_at_epoch(epoch) / float(self.cfg.lr) if self.cfg.lr else 0.0
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * scale

    def train_iteration(self, iteration: int) -> bool:
        """Train iteration `iteration` (an epoch, or a stage of a stage hook); True when the clock
        interrupted it (checked before every batch but the iteration's first)."""
        self.begin_epoch(iteration)
        first = True
        for phase in self.phases(iteration):
            for _ in range(int(phase.epochs)):
                phase.module.train()
                for idx in self.batches():
                    if not first and self.monitor.time_up():
                        return True
                    first = False
                    loss = phase.loss(idx)
                    phase.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if self.cfg.grad_clip:
                        nn.utils.clip_grad_norm_(phase.module.parameters(), self.cfg.grad_clip)
                    phase.optimizer.step()
        return False

    def end_epoch(self, epoch: int, interrupted: bool, eval_batch: int | None = None) -> bool:
        """Score epoch `epoch` on the validation part and run the stopping protocol on it (keep the
        weights if best, report to the pruner: may raise optuna.TrialPruned); True when training ends."""
        if eval_batch not in (None, self.trained.eval_batch_size):
            self.val_exact = False
        start = time.perf_counter()
        out = _forward_all(self.net, self.xs_val, eval_batch or self.trained.eval_batch_size, self.device)
        pred = self.trained.outputs_to_predictions(out)
        self.monitor.note_prediction_cost(time.perf_counter() - start, self.n_val)
        return self.monitor.after_predictions(epoch, pred, keep=self._keep, interrupted=interrupted)

    def _keep(self) -> None:
        self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def finish(self) -> TrainedNet:
        if self.best_state is None:
            raise FloatingPointError(f"training diverged after {self.monitor.iterations} {self.monitor.unit} "
                                     f"(non-finite outputs) before any usable one; lr={self.cfg.lr} is likely "
                                     "too high")
        if self.stage_hook is not None:
            self.stage_hook.finish(self, self.monitor.best_iteration)
        self.net.load_state_dict(self.best_state)
        # The kept epoch's validation predictions, which the trial is scored on (no second pass).
        self.trained.val_predictions = self.monitor.kept_predictions if self.val_exact else None
        if self.device.type == "cuda":  # the per-job GPU memory footprint --jobs-per-gpu auto plans with
            self.ctx.info["cuda_peak_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        self.monitor.finish()
        return self.trained


def _eager_epochs(t: TrainingRun) -> None:
    """The eager loop (fast_path "off"): one optimizer step per batch, as plain torch code."""
    for iteration in range(1, int(t.cfg.max_epochs) + 1):
        if t.end_epoch(iteration, t.train_iteration(iteration)):
            break


def train_network(model: nn.Module | Callable[[int], nn.Module], task: TaskInfo, ctx: FitContext,
                  X_train: Arrays, y_train: np.ndarray, X_val: Arrays, y_val: np.ndarray,
                  cfg: TrainConfig,
                  param_groups: Callable[[nn.Module, float], list[dict]] = default_param_groups,
                  training_loss: TrainingLoss | None = None, stage_hook: StageHook | None = None) -> TrainedNet:
    """Train with the shared stopping protocol; returns the best-epoch network.

    `model` is preferably a factory called with the output width (see output_dim) after seeding, so
    that the initialization is reproducible; a ready module is accepted as is.
    ctx.report_value(epoch, objective value) is called once per epoch and may raise optuna.TrialPruned,
    which propagates. ctx.record_end gets how it ended (early_stopped, max_iterations, deadline,
    diverged), epochs done and the best epoch; ctx.info also gets early_stopping_metric, best_val_score
    (the stopping metric at the best epoch), batch_size, fit_seconds, fast_path (the loop that ran; see
    the module docstring) and, on CUDA, cuda_peak_bytes (peak memory torch allocated during the fit).
    `stage_hook`: stage-wise training (StageHook); it runs the eager loop.
    """
    if int(cfg.max_epochs) < 1:
        raise ValueError(f"max_epochs must be at least 1, got {cfg.max_epochs}")
    torch.set_num_threads(max(1, int(ctx.threads)))
    torch.manual_seed(ctx.seed)
    device = torch.device(ctx.device)
    mode = resolve_fast_path(cfg.fast_path, device)
    fallback = None
    if training_loss is not None and mode in ("graph", "compile"):
        mode, fallback = "eager", f"{mode} not used: the model trains with its own training_loss"
    if cfg.lr_schedule != "constant" and mode == "graph":  # a captured optimizer step keeps its lr
        mode, fallback = "eager", "graph not used: the learning rate changes every epoch (lr_schedule)"
    if stage_hook is not None and mode != "off":
        mode, fallback = "off", f"{mode} not used: stage-wise training (a stage hook) runs the eager loop"
    net = model if isinstance(model, nn.Module) else model(output_dim(task))
    net = net.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # Fused AdamW (one kernel per parameter group) on the CUDA fast path; capturable keeps its step
    # counter on the device so that the step can live inside a CUDA graph. CPU keeps the default
    # implementation, so that the fast path's device-agnostic part computes exactly what "off" does.
    options = {"fused": True, "capturable": mode == "graph"} if mode != "off" and device.type == "cuda" else {}
    t = TrainingRun(net, task, ctx, X_train, y_train, X_val, y_val, cfg, param_groups, options, training_loss,
                    stage_hook)
    ctx.info.update(batch_size=t.batch_size, fast_path=mode)
    if fallback:
        ctx.info["fast_path_fallback"] = fallback
    if mode == "off":
        _eager_epochs(t)
    else:
        from bench.adapters.framework.torch_fast import fast_epochs

        fast_epochs(t, mode)
    return t.finish()
