"""Packed training (bench.adapters.framework.packed): K trials' networks trained as one model.

Tiny data (240 training rows, 8 features, batches of 32), tiny networks, CPU. Mode "exact" must give each
member exactly its single fit (train_network with the same seed and configuration): the strongest check
of the per-member optimizer, dropout, early stopping, kept state and end records. Mode "fast" is checked
within a stated tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import torch

from bench.adapters import get_adapter
from bench.adapters.framework.context import FitContext, TaskInfo
from bench.adapters.framework.early_stopping import MIN_ITERATIONS
from bench.adapters.framework.packed.layers import PackedDropout
from bench.adapters.framework.packed.optim import PackedAdamW
from bench.adapters.framework.packed.training import MemberResult, PackedRun, PackMember, train_packed
from bench.adapters.framework.torch_training import TrainConfig, train_network

BINARY, REGRESSION = TaskInfo("binary", 2), TaskInfo("regression")
SEED = 11
FAST_RTOL = 1e-5  # mode "fast", no dropout: best_val_score vs the single fit (measured: < 2e-7 after 30 epochs)


def data(task: TaskInfo, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(320, 8)).astype(np.float32)
    signal = X[:, 0] + X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=320)
    y = (signal > 0.3).astype(int) if task.is_classification else 4 * signal + 2
    return X[:240], y[:240], X[240:], y[240:]


def config(model: str, **params) -> dict:
    base = {"batch_size": 32, "max_epochs": 30, "patience": 4}
    arch = ({"n_blocks": 2, "d_block": 32, "dropout": 0.0} if model == "mlp" else
            {"n_blocks": 1, "d_block": 32, "d_hidden_multiplier": 1.5, "dropout1": 0.0, "dropout2": 0.0})
    return {**base, **arch, **params}


def member(model: str, task: TaskInfo, X, params: dict, **ctx) -> PackMember:
    adapter = get_adapter(model)(task, params)
    return PackMember(lambda d: adapter.build_network(X, d), TrainConfig.from_params(adapter.params),
                      FitContext(seed=ctx.pop("seed", SEED), **ctx), adapter.param_groups)


def single(model: str, task: TaskInfo, parts, params: dict, **ctx):
    m = member(model, task, parts[0], params, **ctx)
    trained = train_network(m.build, task, m.ctx, *parts, m.cfg, param_groups=m.param_groups)
    return trained, m.ctx.info


def packed(model: str, task: TaskInfo, parts, configs: list[dict], mode="exact", on_epoch=None,
           contexts: list[dict] | None = None) -> list[MemberResult]:
    contexts = contexts or [{} for _ in configs]
    members = [member(model, task, parts[0], c, **ctx) for c, ctx in zip(configs, contexts)]
    return train_packed(members, task, *parts, mode=mode, on_epoch=on_epoch)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


RECORDED = ("stopped_by", "iterations", "best_iteration", "iteration_unit", "early_stopping_metric", "best_val_score")


# --- a member is its single fit -------------------------------------------------------------------------

EXACT_CASES = {
    # equal shapes
    "mlp-equal-shapes": ("mlp", BINARY, [config("mlp", lr=1e-3), config("mlp", lr=3e-3, weight_decay=1e-2),
                                         config("mlp", lr=2e-3, dropout=0.2, patience=2)]),
    # different widths and depths (padding), dropout rates, learning rates, weight decays; regression head
    "mlp-padded": ("mlp", REGRESSION, [config("mlp", n_blocks=1, d_block=16, dropout=0.3, lr=3e-3),
                                       config("mlp", n_blocks=3, d_block=48, dropout=0.1, weight_decay=1e-3),
                                       config("mlp", d_block=24, lr=0.0)]),
    # BatchNorm, residual blocks of different depth, both dropouts
    "resnet": ("resnet", BINARY, [config("resnet", dropout1=0.2, lr=2e-3),
                                  config("resnet", n_blocks=2, d_block=24, dropout2=0.1, weight_decay=1e-2)]),
}


def assert_exact_members_are_their_single_fits(model: str, task: TaskInfo, parts, configs: list[dict]) -> None:
    """Mode "exact": every member's weights, end records and predictions are bit for bit its single fit's
    (tests/test_packed_plr.py and test_packed_tabm.py use it too)."""
    results = packed(model, task, parts, configs)
    for params, result in zip(configs, results):
        trained, info = single(model, task, parts, params)
        assert result.error is None and result.trained is not None
        assert same_weights(result.trained.model, trained.model), params
        assert {k: result.info.get(k) for k in RECORDED} == {k: info.get(k) for k in RECORDED}, params
        assert np.array_equal(result.trained.val_predictions, trained.val_predictions)
        assert np.array_equal(result.trained.predict(parts[2]), trained.predict(parts[2]))


@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_exact_member_is_bit_identical_to_its_single_fit(case):
    model, task, configs = EXACT_CASES[case]
    assert_exact_members_are_their_single_fits(model, task, data(task), configs)


def test_fast_member_without_dropout_matches_its_single_fit_within_tolerance():
    parts = data(BINARY)
    configs = [config("mlp", lr=lr, patience=30) for lr in (1e-3, 3e-3, 1e-2)]
    for params, result in zip(configs, packed("mlp", BINARY, parts, configs, mode="fast")):
        _, info = single("mlp", BINARY, parts, params)
        assert result.stopped_by == info["stopped_by"] and result.iterations == info["iterations"]
        assert result.best_val_score == pytest.approx(info["best_val_score"], rel=FAST_RTOL)


def test_fast_dropout_draws_each_members_rate():
    rates = [0.0, 0.1, 0.5]
    layer = PackedDropout(rates, [64] * 3, [True] * 3, "fast", [torch.Generator().manual_seed(0)]).train()
    x = torch.ones(3, 2000, 64)
    out = layer(x)
    assert torch.equal(out[0], x[0])  # rate 0: untouched
    for k, p in enumerate(rates[1:], start=1):
        kept = (out[k] != 0).float().mean().item()
        assert kept == pytest.approx(1 - p, abs=0.01)
        assert out[k].mean().item() == pytest.approx(1.0, abs=0.02)  # scaled to stay unbiased


# --- the optimizer ----------------------------------------------------------------------------------------

def test_packed_adamw_equals_torch_adamw_member_by_member():
    lrs, wds, k = [1e-2, 0.0, 3e-2], [1e-2, 0.5, 0.0], 3
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(k, 5, 4, generator=gen), torch.randn(k, 5, generator=gen)
    packed_params = [torch.nn.Parameter(weight.clone()), torch.nn.Parameter(bias.clone())]
    opt = PackedAdamW(packed_params, [True, False], lrs, wds)
    singles = [[torch.nn.Parameter(weight[m].clone()), torch.nn.Parameter(bias[m].clone())] for m in range(k)]
    torch_opts = [torch.optim.AdamW([{"params": [w], "weight_decay": wds[m]}, {"params": [b], "weight_decay": 0.0}],
                                    lr=lrs[m]) for m, (w, b) in enumerate(singles)]
    for _ in range(6):
        grads = [torch.randn(k, 5, 4, generator=gen), torch.randn(k, 5, generator=gen)]
        for p, g in zip(packed_params, grads):
            p.grad = g.clone()
        opt.step()
        for m, (params, torch_opt) in enumerate(zip(singles, torch_opts)):
            for p, g in zip(params, grads):
                p.grad = g[m].clone()
            torch_opt.step()
    for m, (w, b) in enumerate(singles):
        assert torch.equal(packed_params[0][m], w) and torch.equal(packed_params[1][m], b), m
    assert torch.equal(packed_params[0][1], weight[1])  # lr 0: not moved, whatever its weight decay


@pytest.mark.parametrize("exact", [True, False])
def test_weight_decay_shrinks_only_its_member_and_decayed_parameters(exact):
    weight, bias = torch.ones(2, 3, 3), torch.ones(2, 3)
    params = [torch.nn.Parameter(weight.clone()), torch.nn.Parameter(bias.clone())]
    opt = PackedAdamW(params, [True, False], [0.1, 0.1], [0.5, 0.0], exact=exact)
    for _ in range(3):  # zero gradients: only weight decay moves anything
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()
    assert torch.allclose(params[0][0], weight[0] * (1 - 0.1 * 0.5) ** 3)
    assert torch.equal(params[0][1], weight[1]) and torch.equal(params[1], bias)


def initial_network(model: str, task: TaskInfo, X, params: dict) -> torch.nn.Module:
    """The network a fit with `params` starts from (built as train_network builds it)."""
    torch.manual_seed(SEED)
    return member(model, task, X, params).build(2 if task.is_classification else 1)


def test_member_with_lr_zero_does_not_move():
    parts = data(BINARY)
    configs = [config("mlp", lr=0.0, weight_decay=0.1, dropout=0.2), config("mlp", lr=3e-3)]
    results = packed("mlp", BINARY, parts, configs, mode="fast")
    # never better than after epoch 1: the earliest stop the protocol allows, MIN_ITERATIONS + patience
    assert (results[0].best_iteration, results[0].iterations) == (1, MIN_ITERATIONS + 4)
    assert same_weights(results[0].trained.model, initial_network("mlp", BINARY, parts[0], configs[0]))
    assert not same_weights(results[1].trained.model, initial_network("mlp", BINARY, parts[0], configs[1]))


# --- per-member ends ---------------------------------------------------------------------------------------

def test_early_stopped_member_is_frozen_and_the_others_go_on():
    parts = data(BINARY)
    configs = [config("mlp", lr=3e-3, patience=1), config("mlp", lr=1e-3, patience=100)]
    states: dict[int, tuple[list[int], dict, dict]] = {}
    pack_sizes: dict[int, set[int]] = {}

    def on_epoch(epoch: int, run: PackedRun) -> None:
        states[epoch] = (list(run.live), run.member_state(0), run.member_state(1))
        pack_sizes[epoch] = {p.shape[0] for p in run.packed.parameters()}

    first, second = packed("mlp", BINARY, parts, configs, mode="fast", on_epoch=on_epoch)
    stop = first.iterations
    assert first.stopped_by == "early_stopped" and stop < 30
    assert second.stopped_by == "max_iterations" and second.iterations == 30
    assert states[stop - 1][0] == [0, 1] and states[stop][0] == [1]  # left the pack when it stopped
    # ... and the pack itself: it no longer computes (or trains) the stopped member
    assert pack_sizes[stop - 1] == {2} and all(pack_sizes[e] == {1} for e in range(stop, 31))
    # the member that went on is its single fit (mode "fast" without dropout: within float tolerance)
    _, info = single("mlp", BINARY, parts, configs[1])
    assert second.best_val_score == pytest.approx(info["best_val_score"], rel=FAST_RTOL)
    for epoch in range(stop, 31):
        assert all(torch.equal(v, states[stop][1][k]) for k, v in states[epoch][1].items())
    assert all(torch.equal(v, states[stop][1][k]) for k, v in first.trained.model.state_dict().items())
    assert any(not torch.equal(v, states[stop][2][k]) for k, v in states[30][2].items())  # the other moved


def test_pruned_member_does_not_stop_the_others():
    parts = data(BINARY)
    calls: list[int] = []

    def prune_at_three(step: int, value: float) -> None:
        calls.append(step)
        if step == 3:
            raise optuna.TrialPruned()

    configs = [config("mlp", lr=1e-3, patience=100, max_epochs=8), config("mlp", lr=3e-3, patience=100, max_epochs=8)]
    pruned, other = packed("mlp", BINARY, parts, configs, contexts=[{"report": prune_at_three}, {}])
    assert isinstance(pruned.error, optuna.TrialPruned) and pruned.trained is None and calls == [1, 2, 3]
    assert "stopped_by" not in pruned.info  # as a single fit: pruning is not a fit's end
    assert other.error is None and other.stopped_by == "max_iterations" and other.iterations == 8
    _, info = single("mlp", BINARY, parts, configs[1])
    assert other.best_val_score == info["best_val_score"]


class StepClock:
    """A clock that advances one second per read: the fit's deadline falls at a fixed read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_member_deadline_ends_that_member_exactly_as_its_single_fit():
    parts = data(REGRESSION)
    configs = [config("mlp", patience=100), config("mlp", lr=3e-3, patience=100, max_epochs=12)]
    clock = StepClock()
    results = packed("mlp", REGRESSION, parts, configs, contexts=[{"clock": clock, "deadline": 40.0}, {}])
    single_clock = StepClock()
    _, info = single("mlp", REGRESSION, parts, configs[0], clock=single_clock, deadline=40.0)
    assert results[0].stopped_by == info["stopped_by"] == "deadline"
    assert results[0].iterations == info["iterations"] and results[0].best_iteration == info["best_iteration"]
    assert results[0].best_val_score == info["best_val_score"] and clock.now == single_clock.now
    assert results[1].stopped_by == "max_iterations" and results[1].iterations == 12


def test_diverged_member_fails_alone():
    parts = data(REGRESSION)
    configs = [config("mlp", lr=1e12, patience=100, max_epochs=5), config("mlp", patience=100, max_epochs=5)]
    bad, good = packed("mlp", REGRESSION, parts, configs, mode="fast")
    assert isinstance(bad.error, FloatingPointError) and bad.trained is None
    assert good.error is None and good.iterations == 5 and math.isfinite(good.best_val_score)


def test_members_that_cannot_share_a_pack_are_refused():
    parts = data(BINARY)
    mixed = [member("mlp", BINARY, parts[0], config("mlp")), member("resnet", BINARY, parts[0], config("resnet"))]
    with pytest.raises(TypeError, match="cannot pack"):
        train_packed(mixed, BINARY, *parts)
    batches = [member("mlp", BINARY, parts[0], config("mlp")),
               member("mlp", BINARY, parts[0], config("mlp", batch_size=64))]
    with pytest.raises(ValueError, match="batch_size"):
        train_packed(batches, BINARY, *parts)


def test_packs_group_by_batch_size_and_padding():
    from bench.adapters.framework.packed.fitting import packs

    parts = data(BINARY)
    shapes = [config("mlp", d_block=32), config("mlp", d_block=24), config("mlp", d_block=512, n_blocks=3),
              config("mlp", d_block=32, batch_size=64)]
    members = [member("mlp", BINARY, parts[0], c) for c in shapes]
    # small networks share a pack though their widths differ (the padding costs less than the per-step
    # cost a member saves); the large one trains alone; another batch size never shares a pack
    assert sorted(packs(members, BINARY, 240)) == [[0, 1], [2], [3]]
    assert sorted(packs(members, BINARY, 240, max_padding=1.0)) == [[0], [1], [2], [3]]  # equal shapes only


def test_packs_advance_together_so_a_shared_deadline_cuts_them_alike():
    from bench.adapters.framework.packed.fitting import train_packs

    parts = data(REGRESSION)
    clock = StepClock()  # one clock for both packs (the tuning clock), read before every batch
    configs = [config("mlp", patience=100), config("mlp", patience=100, batch_size=64)]  # two packs
    members = [member("mlp", REGRESSION, parts[0], c, clock=clock, deadline=120.0) for c in configs]
    first, second = train_packs(members, REGRESSION, *parts)
    assert first.stopped_by == second.stopped_by == "deadline"
    # trained side by side: neither pack got the clock to itself while the other waited
    assert first.iterations > 2 and second.iterations > 2
