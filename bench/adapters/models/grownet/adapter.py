"""GrowNet: Badirli, Liu, Xing, Bhowmik, Doan, Keerthi 2020, "Gradient Boosting Neural Networks: GrowNet"
(arXiv 2002.07971). Written here (no package provides it); the authors' code (github.com/sbadirli/GrowNet)
was read for the defaults.

Gradient boosting with shallow networks as weak learners:
  * The model is F(x) = c0 + alpha * sum_k f_k(x): c0 the prior (log class frequencies; 0 for the
    standardized regression target), f_k the stages, alpha a learned boost rate (one for all stages, as
    in the authors' code).
  * Stage k is a network with two hidden layers (Linear -> LeakyReLU -> BatchNorm -> Linear, then ReLU ->
    linear output); its input is the raw features concatenated with stage k-1's penultimate features
    (batch-normalized), so later stages build on what earlier ones learned.
  * A new stage is fit, with the earlier stages fixed, to the second-order (Newton) boosting objective:
    the loss's Taylor expansion around the current F, mean of g * u + h * u^2 / 2 with u = alpha * f_k(x),
    g and h the loss's gradient and Hessian in F. For squared error (regression) h = 1 and this is the
    paper's residual fit; for classification it is the paper's Newton step (targets -g/h weighted by h,
    up to a constant), here for the softmax log loss with its diagonal Hessian p (1 - p), which covers
    binary (as two classes, the harness's convention) and multiclass alike (the paper shows binary only).
  * Corrective step: after each addition all stages and alpha are trained together on the task's own
    loss (log loss / squared error) with the learning rate divided by `lr_scaler`.
  * Stages are iterations of the shared training loop (bench.adapters.framework.torch_training, through a stage
    hook), so validation, early stopping over stages (bench.adapters.framework.early_stopping: validation log loss
    or RMSE, never before 20 stages, then `patience` stages; with the defaults all 40 stages are trained,
    as in the authors' code), pruning reports and the deadline are the loop's: the best stage count and
    its weights are kept.
The previous stages run in eval mode while a new stage is fit (their outputs are the fixed function being
boosted; the authors' code leaves them in training mode, so their BatchNorm statistics drift).
"""

from __future__ import annotations

import numpy as np

from bench.adapters import register_adapter
from bench.adapters.framework.neural_base import NeuralAdapter
from bench.adapters.space import FloatParam, IntParam

LR_HALVING_STAGES = 15  # the authors' code halves the learning rate and weight decay every 15 stages


@register_adapter
class GrowNetAdapter(NeuralAdapter):
    name = "grownet"
    libraries = ("torch",)
    # Defaults: TALENT's model and optimizer defaults for GrowNet (github.com/LAMDA-Tabular/TALENT, commit
    # c9d24c8, TALENT/configs/default/grownet.json; the benchmark of the ModernNCA authors, which ran GrowNet
    # on 300 datasets): hidden width 128, AdamW lr 1e-4, weight decay 2e-4, one epoch per stage and one
    # corrective epoch at lr / 3, boost rate initialized at 1; on the authors' stage protocol
    # (github.com/sbadirli/GrowNet, Classification/train.sh and main_cls_cv.py): 40 stages ("num_nets"),
    # all trained, the best on validation kept (patience 20: the shared rule, never before 20 stages, then
    # cannot stop before stage 40), lr and weight decay halved every 15 stages. Not TALENT's protocol (200
    # stages, stop 21 stages after the best, halving every 30 stages, a corrective step that trains the
    # newest stage only: TALENT/model/methods/grownet.py), whose corrective step is not the paper's.
    # Departures: the best stage by validation log loss / RMSE (the authors: ROC AUC); batches by
    # training-set size as for every neural model (the authors' 2048 and hidden 16-32, lr 0.005 are tuned to
    # million-row data: with the small batches small data gets, lr 0.005 overfits within 2 stages; digits:
    # log loss 0.171 vs 0.117 with these defaults; MLP 0.120); min_stage_steps below.
    # min_stage_steps: their stages see one epoch of hundreds of batches (Higgs: 1M rows / 2048 = 488,
    # YearPredictionMSD: ~215); on small data one epoch is a handful of batches (4 on a 130-row training
    # part), too few for a weak learner to learn anything. A stage (and a corrective step) runs whole
    # epochs until it has taken at least this many optimizer steps.
    defaults = {
        "lr": 1e-4,
        "weight_decay": 2e-4,
        "batch_size": "auto",
        "eval_batch_size": 4096,
        "max_stages": 40,
        "patience": 20,
        "epochs_per_stage": 1,
        "correct_epoch": 1,
        "min_stage_steps": 50,
        "lr_scaler": 3.0,
        "hidden_d": 128,
        "boost_rate": 1.0,
        "time_limit_s": None,
    }
    smoke_params = {"max_stages": 3, "patience": 2, "hidden_d": 8, "min_stage_steps": 5}
    # Search space: TALENT's (github.com/qile2000/LAMDA-TALENT, configs/opt_space/grownet.json), the
    # benchmark that tuned GrowNet across many datasets: hidden width int[32, 512], lr logU[1e-5, 1e-1],
    # weight decay {0, logU[1e-6, 1e-3]} (0 approximated by the lower end), epochs per stage int[1, 2],
    # corrective epochs int[1, 2]. The paper itself gives no search space.
    search_space = {
        "hidden_d": IntParam(32, 512),
        "lr": FloatParam(1e-5, 1e-1, log=True),
        "weight_decay": FloatParam(1e-6, 1e-3, log=True),
        "epochs_per_stage": IntParam(1, 2),
        "correct_epoch": IntParam(1, 2),
    }

    def fit(self, X_train, y_train, X_val, y_val) -> None:
        self._net = train_grownet(self.task, self.ctx, X_train, y_train, X_val, y_val, self.params)
        self.kept_val_predictions = self._net.val_predictions


def train_grownet(task, ctx, X_train, y_train, X_val, y_val, params: dict):
    """Grow stages on the shared training loop (bench.adapters.framework.torch_training, through GrowNetStages)
    until the shared stopping protocol ends training; returns a torch_training.TrainedNet."""
    from bench.adapters.framework.torch_training import TrainConfig, output_dim, train_network

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
    ctx.info.update(boost_rate=trained.model.boost_rate.item())
    return trained


class GrowNetStages:
    """The torch loop's StageHook for GrowNet: stage k of the loop fits a new weak learner to the Newton
    objective with the earlier stages fixed, adds it, then (from stage 2) runs the corrective step over
    all stages and the boost rate. Validation, early stopping over stages, the kept stage, pruning
    reports and the deadline are the loop's (bench.adapters.framework.early_stopping)."""

    unit = "stages"

    def __init__(self, params: dict):
        self.p = params
        self.lr, self.wd = float(params["lr"]), float(params["weight_decay"])

    def phases(self, run, iteration: int):
        import torch

        from bench.adapters.framework.torch_training import Phase

        p, model = self.p, run.net
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
        import torch

        from bench.adapters.framework.torch_training import autocast_cuda_bf16

        model, (x,) = run.net, run.xs_train
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
        del run.net.stages[best_iteration:]  # the kept stages; their weights are restored next


def newton_objective(u, F, target, classification: bool):
    """Second-order expansion of the loss at the current prediction F for the step u = alpha * f(x):
    mean over rows of sum_k g_k u_k + h_k u_k^2 / 2 (the Newton step's weighted least squares up to a
    constant). Classification: softmax log loss, g = p - onehot(y), h = p (1 - p) (diagonal Hessian);
    regression: squared error / 2, g = F - y, h = 1."""
    import torch

    if classification:
        prob = torch.softmax(F, dim=-1)
        g = prob - torch.nn.functional.one_hot(target, F.shape[-1]).to(prob.dtype)
        h = prob * (1 - prob)
    else:
        g, h = F - target.reshape(F.shape), torch.ones_like(F)
    return (g * u + 0.5 * h * u * u).sum(dim=-1).mean()


def GrowNetModel(d_in: int, d_out: int, hidden_d: int, c0, boost_rate: float):
    """The ensemble module; torch is imported on first use only."""
    import torch
    from torch import nn

    class Stage(nn.Module):
        """One weak learner (the authors' MLP_2HL): returns (penultimate features, output)."""

        def __init__(self, d_features: int, d_previous: int):
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

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.ModuleList()
            self.boost_rate = nn.Parameter(torch.tensor(float(boost_rate)))
            self.register_buffer("c0", torch.as_tensor(np.asarray(c0), dtype=torch.float32))

        def new_stage(self) -> nn.Module:
            return Stage(d_in, hidden_d if len(self.stages) else 0)

        def forward(self, x, with_features: bool = False):
            """F(x) = c0 + boost_rate * sum of the stages' outputs (and the last stage's features)."""
            total, features = None, None
            for stage in self.stages:
                features, out = stage(x, features)
                total = out if total is None else total + out
            F = self.c0.expand(len(x), -1) if total is None else self.c0 + self.boost_rate * total
            return (F, features) if with_features else F

    return Model()
