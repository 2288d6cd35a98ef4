"""Packed MLP-PLR (bench.adapters.models.mlp_plr.packed): K MLP-PLR trials trained as one model.

Tiny data (240 training rows: 6 numerics and 2 categoricals, as NumCatPreprocessor gives them), tiny
networks, CPU, as tests/test_packed_training.py does for MLP and ResNet. Members differ in n_frequencies,
d_embedding, frequency_init_scale, depth, width, dropout, lr and weight decay (all padded into one pack).
Mode "exact" must give each member exactly its single fit; mode "fast" without dropout agrees within FAST_RTOL.
"""

from __future__ import annotations

import copy as copy_module

import numpy as np
import pytest
import torch

from bench.adapters.framework.context import TaskInfo
from bench.adapters.framework.early_stopping import MIN_ITERATIONS
from bench.adapters.framework.packed.nets import pack_networks, padding_cost
from bench.adapters.framework.packed.training import PackedRun
from tests.test_packed_training import (
    assert_exact_members_are_their_single_fits,
    initial_network,
    packed,
    same_weights,
    single,
)

BINARY, MULTICLASS, REGRESSION = TaskInfo("binary", 2), TaskInfo("multiclass", 3), TaskInfo("regression")
# mode "fast" vs the single fit, no dropout, gradient clipping on: best_val_score, relative
FAST_RTOL = 1e-5


def data(task: TaskInfo, seed: int = 0, categoricals: bool = True):
    """(x_num, x_cat) parts as bench.preprocessing.NumCatPreprocessor gives them: float32 and int64 codes."""
    rng = np.random.default_rng(seed)
    x_num = rng.normal(size=(320, 6)).astype(np.float32)
    x_cat = np.stack([rng.integers(0, 3, 320), rng.integers(0, 4, 320)], axis=1) if categoricals else \
        np.empty((320, 0), dtype=np.int64)
    signal = np.sin(2 * x_num[:, 0]) + x_num[:, 1] * x_num[:, 2] + 0.5 * (x_cat[:, 0] == 1 if categoricals else 0)
    signal = signal + 0.3 * rng.normal(size=320)
    if task.task_type == "binary":
        y = (signal > 0.3).astype(int)
    elif task.is_classification:
        y = np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3]))
    else:
        y = 4 * signal + 2
    X = [(x_num[rows], x_cat[rows]) for rows in (slice(0, 240), slice(240, 320))]
    return X[0], y[:240], X[1], y[240:]


def config(**params) -> dict:
    base = {"batch_size": 32, "max_epochs": 30, "patience": 4, "grad_clip": None, "n_blocks": 2, "d_block": 32,
            "dropout": 0.0, "d_embedding": 8, "n_frequencies": 6, "frequency_init_scale": 0.1}
    return {**base, **params}


EXACT_CASES = {
    # embeddings of different widths and frequency counts, backbones of different depths and widths,
    # dropout rates, learning rates, weight decays and initial frequency scales
    "padded-binary": (BINARY, True, [config(lr=3e-3, dropout=0.2),
                                     config(n_frequencies=4, d_embedding=12, frequency_init_scale=1.0, n_blocks=1,
                                            d_block=24, weight_decay=1e-2),
                                     config(n_frequencies=9, d_embedding=4, n_blocks=3, d_block=40, dropout=0.1,
                                            lr=2e-3, patience=2)]),
    "multiclass": (MULTICLASS, True, [config(), config(d_embedding=5, frequency_init_scale=3.0, lr=3e-3)]),
    # numerics only: the embeddings feed the backbone without one-hot columns
    "regression-numeric": (REGRESSION, False, [config(n_frequencies=3, lr=2e-3),
                                               config(d_embedding=10, dropout=0.3, weight_decay=1e-3)]),
}


@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_exact_member_is_bit_identical_to_its_single_fit(case):
    task, categoricals, configs = EXACT_CASES[case]
    assert_exact_members_are_their_single_fits("mlp_plr", task, data(task, categoricals=categoricals), configs)


def test_fast_member_matches_its_single_fit_within_tolerance():
    """Mode "fast" (what tuning runs), with padding and the adapter's gradient clipping, no dropout."""
    assert_fast_members_match_their_single_fits("mlp_plr", REGRESSION, [
        config(lr=1e-3, patience=30, grad_clip=1.0),
        config(n_frequencies=4, d_embedding=12, lr=3e-3, patience=30, grad_clip=1.0),
        config(n_blocks=1, d_block=48, lr=2e-3, patience=30)])


def assert_fast_members_match_their_single_fits(model: str, task: TaskInfo, configs: list[dict]) -> None:
    """Mode "fast": each member ends as its single fit (same end, epochs, kept epoch), scores within FAST_RTOL."""
    parts = data(task)
    for params, result in zip(configs, packed(model, task, parts, configs, mode="fast")):
        _, info = single(model, task, parts, params)
        assert result.stopped_by == info["stopped_by"] and result.iterations == info["iterations"]
        assert result.best_iteration == info["best_iteration"]
        assert result.best_val_score == pytest.approx(info["best_val_score"], rel=FAST_RTOL)


def test_padding_is_exactly_zero_and_a_member_round_trips():
    """A pack of two shapes: storing a member gives back its single network unchanged, and the smaller
    member's padded frequencies, embedding columns and first-layer inputs are zero."""
    parts = data(BINARY)
    nets = [initial_network("mlp_plr", BINARY, parts[0], c) for c in (config(), config(n_frequencies=9, d_embedding=4))]
    pack = pack_networks(nets, "fast", [torch.Generator()])
    frequencies, feature_linear = pack.embeddings.periodic.weight, pack.embeddings.linear.weight
    assert frequencies.shape == (2, 6, 9) and torch.all(frequencies[0, :, 6:] == 0)
    assert torch.all(feature_linear[0, :, 6:9] == 0) and torch.all(feature_linear[0, :, 15:] == 0)
    assert torch.all(feature_linear[1, :, :, 4:] == 0)
    with torch.no_grad():
        embedded = pack.embeddings(torch.as_tensor(parts[0][0][:16]))
    assert torch.all(embedded[1, ..., 4:] == 0)
    assert_member_round_trips(pack, 1, nets[1])
    assert padding_cost(nets) > 1.0


def assert_member_round_trips(pack: torch.nn.Module, k: int, net: torch.nn.Module) -> None:
    """Member k stored into a zeroed copy of its single network `net` gives `net` back exactly."""
    copy = copy_module.deepcopy(net)
    with torch.no_grad():
        for p in copy.parameters():
            p.zero_()
    for layer, own in pack.pairs(k, copy):
        layer.store_member(k, own)
    assert same_weights(copy, net)


def assert_lr_zero_member_does_not_move(model: str, configs: list[dict]) -> None:
    """configs[0] has lr 0 (and weight decay, dropout, padding): never better than after epoch 1, the
    earliest stop the protocol allows, and its weights are its initial ones; configs[1] moves."""
    parts = data(BINARY)
    results = packed(model, BINARY, parts, configs, mode="fast")
    assert (results[0].best_iteration, results[0].iterations) == (1, MIN_ITERATIONS + configs[0]["patience"])
    assert same_weights(results[0].trained.model, initial_network(model, BINARY, parts[0], configs[0]))
    assert not same_weights(results[1].trained.model, initial_network(model, BINARY, parts[0], configs[1]))


def test_member_with_lr_zero_does_not_move():
    assert_lr_zero_member_does_not_move("mlp_plr", [config(lr=0.0, weight_decay=0.1, dropout=0.2, n_frequencies=4),
                                                    config(lr=3e-3, d_embedding=12)])


def assert_early_stopped_member_is_frozen(model: str, configs: list[dict]) -> None:
    """configs[0] stops early (patience 1), configs[1] runs its 30 epochs: the stopped one leaves the pack and
    its weights never change again, the other goes on and ends as its single fit."""
    parts = data(BINARY)
    states: dict[int, tuple[list[int], dict, dict]] = {}

    def on_epoch(epoch: int, run: PackedRun) -> None:
        states[epoch] = (list(run.live), run.member_state(0), run.member_state(1))

    first, second = packed(model, BINARY, parts, configs, mode="fast", on_epoch=on_epoch)
    stop = first.iterations
    assert first.stopped_by == "early_stopped" and stop < 30
    assert second.stopped_by == "max_iterations" and second.iterations == 30
    assert states[stop - 1][0] == [0, 1] and states[stop][0] == [1]
    for epoch in range(stop, 31):
        assert all(torch.equal(v, states[stop][1][k]) for k, v in states[epoch][1].items())
    assert any(not torch.equal(v, states[stop][2][k]) for k, v in states[30][2].items())  # the other moved
    _, info = single(model, BINARY, parts, configs[1])
    assert second.best_val_score == pytest.approx(info["best_val_score"], rel=FAST_RTOL)


def test_early_stopped_member_is_frozen_and_the_others_go_on():
    assert_early_stopped_member_is_frozen("mlp_plr", [config(lr=3e-3, patience=1, n_frequencies=4),
                                                      config(lr=1e-3, patience=100, d_embedding=12)])


def test_mlp_plr_members_pack_through_the_adapters_fit_pack():
    """NeuralAdapter.fit_pack (what tuning calls) packs MLP-PLR adapters and leaves each as its fit would."""
    from bench.adapters import get_adapter
    from bench.adapters.framework.context import FitContext

    parts = data(BINARY)
    cls = get_adapter("mlp_plr")
    assert cls.capabilities.pack
    models = [cls(BINARY, c, FitContext(seed=3)) for c in (config(lr=2e-3), config(n_frequencies=4, d_block=16))]
    assert cls.fit_pack(models, *parts, exact=True) == [None, None]
    for model, params in zip(models, (config(lr=2e-3), config(n_frequencies=4, d_block=16))):
        alone = cls(BINARY, params, FitContext(seed=3))
        alone.fit(*parts)
        assert model.ctx.info["pack"]["size"] == 2 and model.ctx.info["stopped_by"] == alone.ctx.info["stopped_by"]
        assert np.array_equal(model.predict_proba(parts[2]), alone.predict_proba(parts[2]))
