"""The fast path of the shared training loop (bench.adapters.framework.torch_fast) on CPU: what it computes is
exactly what the eager loop computes (same seeds, bit-identical here), the switch and its override,
and the fallbacks of a CUDA-graph capture or a torch.compile that fails (simulated: capture itself
needs CUDA, tests/test_fast_path_cuda.py runs it where there is a GPU)."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest
import torch

from bench.adapters import FitContext, get_adapter
from bench.adapters.framework import torch_fast
from bench.adapters.framework.torch_training import FAST_PATH_ENV, TrainConfig, resolve_fast_path
from bench.metrics import epoch_scores, score_predictions

from .adapter_helpers import TASKS, fit_predict, make_data

QUICK = {
    "mlp": {"n_blocks": 2, "d_block": 32},
    "resnet": {"n_blocks": 1, "d_block": 32},  # BatchNorm: running statistics must match too
    "tabm": {"n_blocks": 1, "d_block": 32, "k": 4, "grad_clip": 1.0},  # (batch, k, d_out) loss, clipping
    "ft_transformer": {"n_blocks": 1, "d_block": 16},
    "mlp_plr": {"n_blocks": 1, "d_block": 32, "d_embedding": 4, "n_frequencies": 4},
}


@pytest.fixture(scope="module")
def datasets():
    return {t: make_data(t, n=400, n_features=5) for t in TASKS}


def fit(name, task_type, datasets, fast_path, ctx=None, **params):
    # batch 50 on 240 training rows: 4 full batches (so warm-up, then the capture attempt) + 40 rows
    params = {"max_epochs": 4, "patience": 2, "batch_size": 50, **QUICK[name], **params, "fast_path": fast_path}
    return fit_predict(get_adapter(name), task_type, datasets[task_type], params,
                       ctx=ctx or FitContext(seed=7, threads=1))


@pytest.mark.parametrize("name,task_type", [("mlp", "binary"), ("resnet", "regression"), ("tabm", "multiclass"),
                                            ("ft_transformer", "binary"), ("mlp_plr", "regression")])
def test_fast_path_on_cpu_computes_exactly_what_the_eager_loop_computes(name, task_type, datasets):
    eager_model, eager_pred, _ = fit(name, task_type, datasets, "off")
    fast_model, fast_pred, _ = fit(name, task_type, datasets, "eager")
    assert np.array_equal(eager_pred, fast_pred)  # bit-identical: same permutations, kernels and order
    eager, fast = eager_model.ctx.info, fast_model.ctx.info
    for key in ("stopped_by", "iterations", "best_iteration", "best_val_score", "batch_size"):
        assert eager[key] == fast[key], key
    assert eager["fast_path"] == "off" and fast["fast_path"] == "eager" and "fast_path_fallback" not in fast
    assert fast["train_loss"] > 0 and "train_loss" not in eager  # summed on the device, read once


def test_graph_mode_without_cuda_falls_back_to_eager_and_says_why(datasets):
    _, eager_pred, _ = fit("mlp", "binary", datasets, "eager")
    model, pred, _ = fit("mlp", "binary", datasets, "graph")
    assert np.array_equal(pred, eager_pred)
    assert model.ctx.info["fast_path"] == "eager"
    assert model.ctx.info["fast_path_fallback"] == ("graph capture failed: FastPathUnavailable: "
                                                    "CUDA graphs need a CUDA device")


def test_capture_failing_half_way_restores_weights_and_optimizer_then_trains_eagerly(datasets, monkeypatch):
    """A capture that dies after the step already changed weights and optimizer state (what a real
    capture cannot do, so this is the harder case) must leave no trace: the result equals eager."""
    attempts = []

    def broken_capture(self):
        attempts.append(self.warm)
        self.static_idx.copy_(torch.arange(self.t.batch_size))
        self.t.optimizer.zero_grad(set_to_none=True)
        self.body(self.static_idx)  # really updates weights, BatchNorm statistics, Adam moments, loss sum
        raise RuntimeError("simulated: operation not permitted when stream is capturing")

    monkeypatch.setattr(torch_fast.GraphSteps, "capture", broken_capture)
    _, eager_pred, _ = fit("resnet", "binary", datasets, "eager")
    model, pred, _ = fit("resnet", "binary", datasets, "graph")
    assert attempts == [torch_fast.WARMUP_STEPS]  # once, after the warm-up steps; never again after failing
    assert np.array_equal(pred, eager_pred)
    info = model.ctx.info
    assert info["fast_path"] == "eager"
    assert info["fast_path_fallback"].startswith("graph capture failed: RuntimeError: simulated")


def test_capture_that_works_is_replayed_for_full_batches_only(datasets, monkeypatch):
    """The replay bookkeeping, with a 'graph' that runs the captured step body eagerly: full batches
    replay it from the static index buffer; the last, smaller batch runs eagerly; same result."""
    replays = []

    class FakeGraph:
        def __init__(self, steps):
            self.steps = steps

        def replay(self):
            replays.append(self.steps.static_idx.clone())
            self.steps.t.optimizer.zero_grad(set_to_none=True)
            self.steps.body(self.steps.static_idx)

    monkeypatch.setattr(torch_fast.GraphSteps, "capture", lambda self: FakeGraph(self))
    _, eager_pred, _ = fit("mlp", "binary", datasets, "eager")
    model, pred, _ = fit("mlp", "binary", datasets, "graph")
    assert np.array_equal(pred, eager_pred) and model.ctx.info["fast_path"] == "graph"
    epochs = model.ctx.info["iterations"]
    assert len(replays) == 4 * epochs - torch_fast.WARMUP_STEPS  # 4 full batches of 50 per epoch
    assert all(len(idx) == 50 for idx in replays)


def test_compile_failure_falls_back_to_eager(datasets, monkeypatch):
    class Broken(torch.nn.Module):
        def forward(self, *xs):
            raise RuntimeError("simulated: inductor needs a C++ compiler")

    monkeypatch.setattr(torch_fast.torch, "compile", lambda module, **kw: Broken())
    _, eager_pred, _ = fit("tabm", "regression", datasets, "eager")
    model, pred, _ = fit("tabm", "regression", datasets, "compile")
    assert np.array_equal(pred, eager_pred)
    assert model.ctx.info["fast_path"] == "eager"
    assert "torch.compile failed: RuntimeError: simulated" in model.ctx.info["fast_path_fallback"]


def test_switch_validation_and_environment_override(datasets, monkeypatch):
    with pytest.raises(ValueError, match="fast_path must be one of auto, off, eager, graph, compile, got 'fast'"):
        TrainConfig(fast_path="fast")
    assert resolve_fast_path("auto", torch.device("cpu")) == "off"
    assert resolve_fast_path("auto", torch.device("cuda")) == "graph"  # only the device type is read
    assert resolve_fast_path("compile", torch.device("cpu")) == "compile"
    monkeypatch.setenv(FAST_PATH_ENV, "eager")
    assert resolve_fast_path("off", torch.device("cpu")) == "eager"
    model, _, _ = fit("mlp", "binary", datasets, "off")
    assert model.ctx.info["fast_path"] == "eager"  # the environment beats the parameter
    monkeypatch.setenv(FAST_PATH_ENV, "turbo")
    with pytest.raises(ValueError, match=f"{FAST_PATH_ENV} must be one of .* got 'turbo'"):
        fit("mlp", "binary", datasets, "off")


def test_fast_path_keeps_deadline_pruning_and_early_stopping_semantics(datasets):
    ctx = FitContext(seed=0, threads=1, deadline=time.monotonic() - 1.0)
    model, pred, _ = fit("tabm", "binary", datasets, "eager", ctx=ctx, max_epochs=50)
    assert model.ctx.info["stopped_by"] == "deadline" and model.ctx.info["iterations"] == 1
    assert np.all(np.isfinite(pred))

    seen = []

    def report(step, value):
        seen.append(step)
        if step == 2:
            raise optuna.TrialPruned()

    with pytest.raises(optuna.TrialPruned):
        fit("mlp", "binary", datasets, "graph", ctx=FitContext(seed=0, threads=1, report=report))
    assert seen == [1, 2]

    model, _, _ = fit("mlp", "multiclass", datasets, "eager", max_epochs=60, patience=3, lr=3e-2, dropout=0.0,
                      d_block=128)
    info = model.ctx.info
    assert info["stopped_by"] == "early_stopped"
    assert info["iterations"] == max(info["best_iteration"], 20) + 3  # the shared minimum-epochs rule


def test_epoch_scores_equal_score_predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500), 1)  # many ties
    proba = np.c_[1 - p, p]
    proba[0] = [1.0, 0.0]  # a confident mistake or hit: the clipping matters
    full, fast = score_predictions("binary", y, proba, 2), epoch_scores("binary", y, proba, 2, {"log_loss", "roc_auc"})
    assert fast["log_loss"] == full["log_loss"]  # bit-identical: early stopping decides exactly as before
    assert fast["roc_auc"] == pytest.approx(full["roc_auc"], rel=1e-12)
    assert np.isnan(epoch_scores("binary", np.zeros(5, int), proba[:5], 2, {"roc_auc"})["roc_auc"])

    y3 = rng.integers(0, 4, 300)
    proba3 = rng.dirichlet(np.ones(4), 300)
    assert epoch_scores("multiclass", y3, proba3, 4, {"log_loss"})["log_loss"] == \
        score_predictions("multiclass", y3, proba3, 4)["log_loss"]

    yr, pr = rng.normal(size=300), rng.normal(size=300)
    assert epoch_scores("regression", yr, pr, 0, {"rmse"}) == {"rmse": score_predictions("regression", yr, pr)["rmse"]}
    with pytest.raises(ValueError, match="non-finite"):
        epoch_scores("regression", yr, np.full(300, np.nan), 0, {"rmse"})
