"""Hopular (bench/adapters/models/hopular/): its defining mechanisms and a short fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.adapters import FitContext, TaskInfo
from bench.adapters.models.hopular.adapter import HopularAdapter
from bench.adapters.models.hopular.network import (
    HopularLoss,
    HopularNet,
    Masked,
    MaskingConfig,
    corrupt,
    feature_loss,
    feature_weight,
)
from bench.adapters.models.hopular.training import fit_hopular
from bench.metrics import score_predictions


def _data(n: int = 40, n_classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x_num = rng.normal(size=(n, 3)).astype(np.float32)
    x_cat = rng.integers(0, 4, size=(n, 2))
    y = rng.integers(0, n_classes, size=n) if n_classes else rng.normal(size=n)
    return x_num, x_cat, y


def _net(n_classes: int = 3, n: int = 40, **kw) -> tuple[HopularNet, tuple]:
    torch.manual_seed(0)
    x_num, x_cat, y = _data(n, n_classes)
    net = HopularNet(x_num, x_cat, y, n_classes, [4, 4], d_token=8, n_blocks=2, n_heads=2, input_dropout=0.0,
                     lookup_dropout=0.0, output_dropout=0.0, **kw)
    return net, (x_num, x_cat, y)


def _clean(x_num, x_cat, y, rows) -> Masked:
    xn, xc = torch.as_tensor(x_num[rows]), torch.as_tensor(x_cat[rows])
    return Masked(xn, torch.zeros_like(xn, dtype=torch.bool), xc, torch.zeros(0), torch.as_tensor(y[rows]))


@pytest.mark.parametrize("n_classes", [3, 0])
def test_the_stored_patterns_are_the_training_rows_with_their_targets(n_classes):
    net, (x_num, x_cat, y) = _net(n_classes)
    np.testing.assert_array_equal(net.memory_num.numpy(), x_num)
    np.testing.assert_array_equal(net.memory_cat.numpy(), x_cat)
    np.testing.assert_allclose(net.memory_y.numpy(), y, rtol=1e-6)
    assert not any(k.startswith("memory_") for k in net.state_dict())  # data, not weights
    # Prediction retrieves from them: changing the stored targets changes every prediction.
    query = (torch.as_tensor(x_num[:5]), torch.as_tensor(x_cat[:5]))
    net.eval()
    with torch.no_grad():
        before = net(*query)
        net.memory_y.copy_(torch.as_tensor((y + 1) % 3 if n_classes else y * -3.0))
        after = net(*query)
    assert (before - after).abs().amax(dim=1).min() > 1e-4


@pytest.mark.parametrize("memory_ratio", [1.0, 0.5])
def test_a_training_row_never_retrieves_itself(memory_ratio):
    net, (x_num, x_cat, y) = _net(memory_ratio=memory_ratio)
    net.train()  # dropout is 0: training mode changes only the lookup mask
    rows = torch.tensor([3, 8])
    b = _clean(x_num, x_cat, y, rows.numpy())
    seen = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        seen.append(attn_mask)
        return original(q, k, v, attn_mask=attn_mask, **kw)

    torch.manual_seed(1)
    with torch.no_grad():
        out = net.training_outputs(b, rows)
        # Changing row 3's stored target changes nothing for row 3 (it cannot read it) but changes row 8.
        net.memory_y[3] = (net.memory_y[3] + 1) % 3
        torch.manual_seed(1)
        out2 = net.training_outputs(b, rows)
    assert torch.allclose(out[0], out2[0], atol=1e-6)
    if memory_ratio == 1.0:  # with a sampled memory, row 3 may not be among this step's stored rows
        assert not torch.allclose(out[1], out2[1], atol=1e-4)
    # The mask handed to the sample-sample lookups: each row excluded from exactly its own pattern.
    torch.manual_seed(1)
    torch.nn.functional.scaled_dot_product_attention = spy
    try:
        with torch.no_grad():
            net.training_outputs(b, rows)
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
    sample_masks = [m for m in seen if m is not None]
    assert len(sample_masks) == 2  # one per block; the feature-feature lookups have none
    blocked = (~sample_masks[0][0, 0]).sum(dim=1)
    if memory_ratio == 1.0:
        assert blocked.tolist() == [1, 1]
        assert not sample_masks[0][0, 0, 0, 3] and not sample_masks[0][0, 0, 1, 8]
    else:
        assert sample_masks[0].shape[-1] == 20  # half the 40 stored rows per step
        assert blocked.max() <= 1  # at most its own pattern, when drawn


def test_prediction_masks_the_target_and_reads_every_stored_row():
    net, (x_num, x_cat, y) = _net()
    net.eval()
    with torch.no_grad():
        # A query that is training row 0 retrieves from all rows at prediction (no exclusion): its output
        # moves when row 0's stored target does.
        q = (torch.as_tensor(x_num[:1]), torch.as_tensor(x_cat[:1]))
        before = net(*q)
        net.memory_y[0] = (net.memory_y[0] + 1) % 3
        assert not torch.allclose(before, net(*q), atol=1e-5)


def test_corruption_masks_and_replaces_only_selected_entries():
    g = torch.Generator().manual_seed(0)
    x_num, x_cat = torch.randn(4000, 3), torch.randint(0, 5, (4000, 2))
    cards = torch.tensor([5, 5])
    b = corrupt(x_num, x_cat, cards, select_probability=0.5, mask_probability=0.2, replace_probability=0.3,
                generator=g)
    assert abs(b.selected.float().mean().item() - 0.5) < 0.02
    changed_num = b.x_num != x_num
    masked_cat = b.x_cat == cards
    # Nothing outside the selection changes; masked numerics are 0 with the indicator on.
    assert not (changed_num & ~b.selected[:, :3]).any() and not (b.num_masked & ~b.selected[:, :3]).any()
    assert not ((b.x_cat != x_cat) & ~b.selected[:, 3:]).any()
    assert (b.x_num[b.num_masked] == 0).all()
    share_masked = torch.cat([b.num_masked, masked_cat], dim=1)[b.selected].float().mean().item()
    assert abs(share_masked - 0.2) < 0.02
    # Replaced entries: changed but not masked, about 30% of the selected numerics.
    replaced = changed_num & ~b.num_masked
    assert abs(replaced[b.selected[:, :3]].float().mean().item() - 0.3) < 0.03


def test_the_feature_loss_covers_the_selected_entries_only():
    x_num, x_cat = torch.randn(6, 2), torch.randint(0, 3, (6, 1))
    selected = torch.tensor([[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]], dtype=torch.bool)
    original = Masked(x_num, torch.zeros_like(selected[:, :2]), x_cat, selected, torch.zeros(6))
    outs = [torch.randn(6, 1), torch.randn(6, 1), torch.randn(6, 3)]
    loss = feature_loss(outs, original, n_num=2)
    expected = (((outs[0][:2, 0] - x_num[:2, 0]) ** 2).mean()
                + torch.nn.functional.cross_entropy(outs[2][2:4], x_cat[2:4, 0])) / 2
    assert torch.allclose(loss, expected)
    outs[1] = outs[1] + 100.0  # column 1 has no selected entry: it cannot move the loss
    outs[0][3:] += 100.0  # nor can unselected rows of column 0
    assert torch.allclose(feature_loss(outs, original, n_num=2), expected)


def test_the_feature_weight_anneals_by_half_cosine_and_weighs_the_losses():
    assert feature_weight(1, 100, 1.0, 0.0) == 1.0
    assert feature_weight(100, 100, 1.0, 0.0) == pytest.approx(0.0)
    assert feature_weight(50, 99, 1.0, 0.2) == pytest.approx(0.6)
    assert feature_weight(500, 100, 1.0, 0.0) == pytest.approx(0.0)
    net, (x_num, x_cat, y) = _net()
    net.train()
    batch, rows = (torch.as_tensor(x_num[:8]), torch.as_tensor(x_cat[:8])), torch.arange(8)
    target = torch.as_tensor(y[:8])
    values = {}
    for w in (0.0, 1.0, 0.25):
        loss = HopularLoss(MaskingConfig(), initial_weight=w, final_weight=w)
        loss.begin_epoch(1)
        torch.manual_seed(3)
        values[w] = float(loss(net, batch, target, rows).detach())
    assert values[0.25] == pytest.approx(0.25 * values[1.0] + 0.75 * values[0.0], rel=1e-5)
    assert values[1.0] != pytest.approx(values[0.0], rel=1e-3)  # the two losses are weighed, not added


def test_options_are_validated_with_their_names():
    with pytest.raises(ValueError, match="mask_probability \\+ replace_probability"):
        MaskingConfig(mask_probability=0.6, replace_probability=0.6)
    with pytest.raises(ValueError, match="memory_ratio"):
        _net(memory_ratio=0.0)


@pytest.mark.parametrize("task_type", ["binary", "regression"])
def test_hopular_trains_on_the_shared_loop_and_beats_the_prior(task_type):
    rng = np.random.default_rng(0)
    n = 160
    x_num = rng.normal(size=(n, 3)).astype(np.float32)
    x_cat = rng.integers(0, 3, size=(n, 1))
    signal = x_num[:, 0] + (x_cat[:, 0] == 1)
    y = (signal > 0.5).astype(int) if task_type == "binary" else signal + 0.1 * rng.normal(size=n)
    tr, va = np.arange(120), np.arange(120, n)
    task = TaskInfo(task_type, 2 if task_type == "binary" else 0)
    params = {**HopularAdapter.defaults, **HopularAdapter.smoke_params, "max_epochs": 25, "patience": 25, "n_blocks": 2,
              "feature_loss_anneal_epochs": 5, "lr": 3e-3}
    ctx = FitContext(seed=0, threads=1)
    trained = fit_hopular(params, task, ctx, (x_num[tr], x_cat[tr]), y[tr], (x_num[va], x_cat[va]), y[va])
    assert ctx.info["iteration_unit"] == "epochs" and ctx.info["iterations"] >= 20
    pred = trained.predict((x_num[va], x_cat[va]))
    if task_type == "binary":
        assert score_predictions(task_type, y[va], pred, 2)["roc_auc"] > 0.8
    else:
        assert np.sqrt(np.mean((pred - y[va]) ** 2)) < 0.8 * np.std(y[va])
