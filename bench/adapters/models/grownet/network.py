"""GrowNet's training on the shared loop and its network (bench.adapters.models.grownet.adapter says what the
model is and why): the stage hook (fit a new stage to the Newton objective, then the corrective step), the
weak learner and the ensemble module.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench.adapters.framework.torch_training import (
    Phase,
    TrainConfig,
    TrainedNet,
    autocast_cuda_bf16,
    output_dim,
    train_network,
)
from bench.adapters.models.grownet.adapter import GrowNetParams

LR_HALVING_STAGES = 15  # the authors' code halves the learning rate and weight decay every 15 stages


def train_grownet(task, ctx, X_train, y_train, X_val, y_val, params: GrowNetParams) -> TrainedNet:
    """Grow stages on the shared training loop (bench.adapters.framework.torch_training, through GrowNetStages)
    until the shared stopping protocol ends training; returns a torch_training.TrainedNet."""
    p = params
    if int(p["max_stages"]) < 1:
        raise ValueError(f"max_stages must be at least 1, got {p['max_stages']}")
    y_train = np.asarray(y_train)
    d_out = output_dim(task)
    if task.is_classification:
        counts = np.bincount(y_train.astype(int), minlength=d_out)
        c0 = np.log((counts + 1.0) / (counts.sum() + d_out))  # smoothed: a class absent from training stays finite
    else:
        c0 = np.zeros(1)  # the loop standardizes the regression target
    d_in, hidden = np.shape(X_train)[1], int(p["hidden_d"])
    # An iteration of the loop is a stage; the loop's epoch cap is the stage cap.
    cfg = TrainConfig(lr=float(p["lr"]), weight_decay=float(p["weight_decay"]), batch_size=p["batch_size"],
                      eval_batch_size=int(p["eval_batch_size"]), max_epochs=int(p["max_stages"]),
                      patience=int(p["patience"]), time_limit_s=p["time_limit_s"], fast_path="off")
    hook = GrowNetStages(p)
    trained = train_network(lambda d: GrowNetModel(d_in, d, hidden, c0, float(p["boost_rate"])), task, ctx,
                            np.asarray(X_train, dtype=np.float32), y_train, np.asarray(X_val, dtype=np.float32),
                            y_val, cfg, stage_hook=hook)
    ctx.info.update(boost_rate=_grownet(trained.model).boost_rate.item())
    return trained


class GrowNetStages:
    """The torch loop's StageHook for GrowNet: stage k of the loop fits a new weak learner to the Newton
    objective with the earlier stages fixed, adds it, then (from stage 2) runs the corrective step over
    all stages and the boost rate. Validation, early stopping over stages, the kept stage, pruning
    reports and the deadline are the loop's (bench.adapters.framework.early_stopping)."""

    unit = "stages"

    def __init__(self, params: GrowNetParams):
        self.p = params
        self.lr, self.wd = float(params["lr"]), float(params["weight_decay"])

    def phases(self, run, iteration: int):
        p, model = self.p, _grownet(run.net)
        if iteration > 1 and (iteration - 1) % LR_HALVING_STAGES == 0:
            self.lr, self.wd = self.lr / 2, self.wd / 2
        learner = model.new_stage().to(run.device)
        loss = self.stage_loss(run, learner)  # from the stages so far, before the new one joins
        model.stages.append(learner)
        # foreach: one multi-tensor update instead of a Python loop over the parameters (on CPU the
        # default is that loop, and with many small stages it dominated the fit time).
        yield Phase(learner, torch.optim.AdamW(learner.parameters(), lr=self.lr, weight_decay=self.wd, foreach=True),
                    loss, self.epochs(run, p["epochs_per_stage"]))
        if iteration > 1:  # the corrective step: every stage and the boost rate together
            lr = self.lr / float(p["lr_scaler"])
            yield Phase(model, torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=self.wd, foreach=True),
                        lambda idx: run.loss(model, idx), self.epochs(run, p["correct_epoch"]))

    def epochs(self, run, epochs) -> int:
        """At least `epochs`, and on small data enough whole epochs for min_stage_steps optimizer steps."""
        steps_per_epoch = max(1, sum(1 for start in range(0, run.n, run.batch_size)
                                     if min(run.batch_size, run.n - start) > 1))
        return max(int(epochs), -(-int(self.p["min_stage_steps"]) // steps_per_epoch))

    def stage_loss(self, run, learner):
        """The Newton objective of a new stage. The earlier stages are fixed while it is fit (eval mode, no
        gradients): their output F and penultimate features for every training row are computed once per
        stage, not per batch (which made a stage cost grow with the number of stages before it)."""
        model, (x,) = _grownet(run.net), run.xs_train
        model.eval()
        chunk = int(self.p["eval_batch_size"])
        with torch.no_grad(), autocast_cuda_bf16(run.device):
            parts = [model(x[i:i + chunk], with_features=True) for i in range(0, run.n, chunk)]
        prev = torch.cat([f for f, _ in parts]).float()
        feat = None if parts[0][1] is None else torch.cat([h for _, h in parts])
        boost_rate = model.boost_rate.detach()
        classification = run.task.is_classification

        def loss_fn(idx):
            with autocast_cuda_bf16(run.device):
                out = learner(x[idx], None if feat is None else feat[idx])[1]
            return newton_objective(boost_rate * out.float(), prev[idx], run.target[idx], classification)
        return loss_fn

    def finish(self, run, best_iteration: int) -> None:
        del _grownet(run.net).stages[best_iteration:]  # the kept stages; their weights are restored next


def newton_objective(u, F, target, classification: bool):
    """Second-order expansion of the loss at the current prediction F for the step u = alpha * f(x):
    mean over rows of sum_k g_k u_k + h_k u_k^2 / 2 (the Newton step's weighted least squares up to a
    constant). Classification: softmax log loss, g = p - onehot(y), h = p (1 - p) (diagonal Hessian);
    regression: squared error / 2, g = F - y, h = 1."""
    if classification:
        prob = torch.softmax(F, dim=-1)
        g = prob - torch.nn.functional.one_hot(target, F.shape[-1]).to(prob.dtype)
        h = prob * (1 - prob)
    else:
        g, h = F - target.reshape(F.shape), torch.ones_like(F)
    return (g * u + 0.5 * h * u * u).sum(dim=-1).mean()


class Stage(nn.Module):
    """One weak learner (the authors' MLP_2HL): returns (penultimate features, output)."""

    def __init__(self, d_features: int, d_previous: int, hidden_d: int, d_out: int):
        super().__init__()
        self.input_norm = nn.BatchNorm1d(d_features + d_previous) if d_previous else nn.Identity()
        self.hidden = nn.Sequential(nn.Linear(d_features + d_previous, hidden_d), nn.LeakyReLU(0.1),
                                    nn.BatchNorm1d(hidden_d), nn.Linear(hidden_d, hidden_d))
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(hidden_d, d_out))

    def forward(self, x, previous_features=None):
        if previous_features is not None:
            x = self.input_norm(torch.cat([x, previous_features], dim=1))
        features = self.hidden(x)
        return features, self.out(features)


class GrowNetModel(nn.Module):
    """The ensemble: F(x) = c0 + boost_rate * sum of the stages' outputs; stages are added by new_stage."""

    c0: torch.Tensor

    def __init__(self, d_in: int, d_out: int, hidden_d: int, c0, boost_rate: float):
        super().__init__()
        self.d_in, self.d_out, self.hidden_d = d_in, d_out, hidden_d
        self.stages = nn.ModuleList()
        self.boost_rate = nn.Parameter(torch.tensor(float(boost_rate)))
        self.register_buffer("c0", torch.as_tensor(np.asarray(c0), dtype=torch.float32))

    def new_stage(self) -> Stage:
        """A stage for the features plus the previous stage's penultimate features (none for the first)."""
        return Stage(self.d_in, self.hidden_d if len(self.stages) else 0, self.hidden_d, self.d_out)

    def forward(self, x, with_features: bool = False):
        """F(x) = c0 + boost_rate * sum of the stages' outputs (and the last stage's features)."""
        total, features = None, None
        for stage in self.stages:
            features, out = stage(x, features)
            total = out if total is None else total + out
        F = self.c0.expand(len(x), -1) if total is None else self.c0 + self.boost_rate * total
        return (F, features) if with_features else F


def _grownet(module: nn.Module) -> GrowNetModel:
    """The loop's network, which for GrowNet is always a GrowNetModel (train_grownet builds it)."""
    if not isinstance(module, GrowNetModel):
        raise TypeError(f"GrowNet's stage hook needs a GrowNetModel, got {type(module).__name__}")
    return module
