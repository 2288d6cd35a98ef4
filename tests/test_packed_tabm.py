"""Packed TabM (bench.adapters.framework.packed.tabm): K TabM trials of k ensemble members each trained as one
model, K x k networks.

The data and the checks of tests/test_packed_plr.py: members of different depths, widths, dropout rates,
learning rates and weight decays in one pack; mode "exact" gives each member exactly its single fit, mode
"fast" without dropout agrees within FAST_RTOL.
"""

from __future__ import annotations

import pytest
import torch

from bench.adapters.framework.packed.fitting import packs
from bench.adapters.framework.packed.nets import pack_networks
from bench.adapters.framework.packed.training import packed_loss, train_packed
from bench.adapters.framework.torch_training import batch_loss
from tests.test_packed_plr import (
    BINARY,
    MULTICLASS,
    REGRESSION,
    assert_early_stopped_member_is_frozen,
    assert_fast_members_match_their_single_fits,
    assert_lr_zero_member_does_not_move,
    assert_member_round_trips,
    data,
)
from tests.test_packed_training import (
    assert_exact_members_are_their_single_fits,
    initial_network,
    member,
)

FAST_RTOL = 1e-5  # mode "fast" vs the single fit, no dropout: best_val_score, relative


def config(**params) -> dict:
    base = {"batch_size": 32, "max_epochs": 30, "patience": 4, "grad_clip": None, "k": 4, "n_blocks": 2,
            "d_block": 32, "dropout": 0.0}
    return {**base, **params}


EXACT_CASES = {
    "binary": (BINARY, True, [config(lr=3e-3, dropout=0.2), config(n_blocks=1, d_block=24, weight_decay=1e-2),
                              config(n_blocks=3, d_block=40, dropout=0.1, lr=2e-3, patience=2)]),
    "multiclass": (MULTICLASS, True, [config(), config(d_block=20, lr=3e-3)]),
    "regression-numeric": (REGRESSION, False, [config(lr=2e-3), config(d_block=48, dropout=0.3, weight_decay=1e-3)]),
}


@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_exact_member_is_bit_identical_to_its_single_fit(case):
    task, categoricals, configs = EXACT_CASES[case]
    assert_exact_members_are_their_single_fits("tabm", task, data(task, categoricals=categoricals), configs)


@pytest.mark.parametrize("task", [BINARY, REGRESSION])
def test_fast_member_matches_its_single_fit_within_tolerance(task):
    assert_fast_members_match_their_single_fits("tabm", task, [
        config(lr=1e-3, patience=30, grad_clip=1.0), config(d_block=24, lr=3e-3, patience=30, grad_clip=1.0),
        config(n_blocks=1, d_block=48, lr=2e-3, patience=30)])


@pytest.mark.parametrize("task", [BINARY, REGRESSION])
def test_packed_loss_gives_each_member_its_ensembles_loss(task):
    out = torch.randn(3, 8, 4, 2 if task.is_classification else 1)
    target = torch.randint(0, 2, (8,)) if task.is_classification else torch.randn(8)
    expected = sum(batch_loss(out[m], target, task) for m in range(3))
    assert packed_loss(out, target, task).item() == pytest.approx(float(expected), rel=1e-6)


def test_padded_units_stay_zero_and_members_round_trip():
    parts = data(BINARY)
    nets = [initial_network("tabm", BINARY, parts[0], c) for c in (config(), config(d_block=20, n_blocks=1))]
    pack = pack_networks(nets, "fast", [torch.Generator()])
    first = pack.linears[0]
    assert torch.all(first.weight[1, 20:] == 0) and torch.all(first.s[1, :, 20:] == 0)
    assert torch.all(first.bias[1, :, 20:] == 0) and torch.all(pack.output.weight[1, :, 20:] == 0)
    with torch.no_grad():
        out = pack(*(torch.as_tensor(x[:16]) for x in parts[0]))
        alone = [net(*(torch.as_tensor(x[:16]) for x in parts[0])) for net in nets]
    assert out.shape == (2, 16, 4, 2)
    for m in range(2):
        assert torch.allclose(out[m], alone[m], rtol=1e-5, atol=1e-6)
    assert_member_round_trips(pack, 1, nets[1])


def test_member_with_lr_zero_does_not_move():
    assert_lr_zero_member_does_not_move("tabm", [config(lr=0.0, weight_decay=0.1, dropout=0.2, d_block=24),
                                                 config(lr=3e-3)])


def test_early_stopped_member_is_frozen_and_the_others_go_on():
    assert_early_stopped_member_is_frozen("tabm", [config(lr=3e-3, patience=1, d_block=24),
                                                   config(lr=1e-3, patience=100)])


def test_members_with_another_ensemble_size_are_refused():
    parts = data(BINARY)
    members = [member("tabm", BINARY, parts[0], config()), member("tabm", BINARY, parts[0], config(k=8))]
    with pytest.raises(ValueError, match="must share k"):
        train_packed(members, BINARY, *parts)
    assert sorted(packs(members, BINARY, 240)) == [[0], [1]]  # tuning never puts them in one pack


def test_tabm_trains_in_packs_of_one_on_cpu_where_packing_is_slower():
    """fitting.SLOWER_PACKED: on CPU a TabM pack costs more than its members one after another (perf-pack), so
    tuning's packs (mode "fast") hold one TabM each; grouping by padding cost alone or mode "exact" pack them."""
    parts = data(BINARY)
    members = [member("tabm", BINARY, parts[0], config(lr=lr)) for lr in (1e-3, 2e-3)]
    assert sorted(packs(members, BINARY, 240)) == [[0], [1]]
    assert packs(members, BINARY, 240, mode="exact") == [[0, 1]]
    assert packs(members, BINARY, 240, max_padding=4.0) == [[0, 1]]
