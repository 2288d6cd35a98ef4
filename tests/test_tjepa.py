"""T-JEPA pretraining (bench/adapters/framework/tjepa.py) and mlp_tjepa: what it sees, the EMA target, the
latent targets, stopping."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from bench.adapters import FitContext, TaskInfo
from bench.adapters.framework.tjepa import (
    JEPA,
    TJEPAConfig,
    _Clock,
    _momenta,
    _train_epoch,
    ema_update_,
    encode,
    gather_tokens,
    pretrain,
    sample_masks,
)
from bench.adapters.models.mlp_tjepa.adapter import MLPTJEPAAdapter
from bench.preprocessing import NumCatPreprocessor
from bench.tuning import Budget, Parts, tune

from .adapter_helpers import make_data

TINY = TJEPAConfig(d_token=8, n_layers=1, n_heads=2, d_ff=16, pred_d=4, pred_layers=1, pred_heads=2,
                   batch_size=64, max_epochs=3, patience=2, n_targets=2)


def _jepa(n_num: int = 4, cards: tuple[int, ...] = (3, 2), seed: int = 0) -> tuple[JEPA, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = JEPA(n_num, list(cards), TINY)
    x_num = torch.randn(10, n_num)
    x_cat = torch.stack([torch.randint(0, c, (10,)) for c in cards], dim=1)
    return model.eval(), x_num, x_cat


def test_pretraining_takes_no_labels_and_no_other_rows():
    assert list(inspect.signature(pretrain).parameters) == ["X_train", "config", "ctx"]


def _pretrained_on_training_part(X, y, train, test, seed=0):
    pre = NumCatPreprocessor().fit(X.iloc[train])
    return pretrain(pre.transform(X.iloc[train]), TINY, FitContext(seed=seed, threads=1)).state


def test_permuting_test_labels_and_rows_leaves_the_pretrained_weights_identical():
    X, y, train, val, test = make_data("binary", n=200)
    first = _pretrained_on_training_part(X, y, train, test)
    rng = np.random.default_rng(1)
    y2, X2 = y.copy(), X.copy()
    y2[test] = rng.permutation(y2[test])
    X2.iloc[test, 1:5] = X2.iloc[rng.permutation(test), 1:5].to_numpy()  # test rows scrambled too
    second = _pretrained_on_training_part(X2, y2, train, test)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    # The comparison can fail: a different training part gives different weights.
    other = _pretrained_on_training_part(X, y, np.sort(np.concatenate([train[5:], test[:5]])), test)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_the_target_encoder_is_an_ema_of_the_context_encoder_and_gets_no_gradient():
    model, x_num, x_cat = _jepa()
    model.context_encoder.tail[1].weight.data.add_(1.0)  # the two encoders start apart
    before = [p.detach().clone() for p in model.target_encoder.parameters()]
    assert not any(p.requires_grad for p in model.target_encoder.parameters())
    params = list(model.context_encoder.parameters()) + list(model.predictor.parameters())
    opt = torch.optim.SGD(params, lr=0.1)

    def constant():
        while True:
            yield 0.9


    rows = torch.arange(10)  # one batch: exactly one optimizer step, then one EMA update
    _train_epoch(model, opt, (x_num, x_cat), rows, TINY, torch.Generator().manual_seed(0), constant(),
                 _Clock(FitContext(), None))
    for b, t, c in zip(before, model.target_encoder.parameters(), model.context_encoder.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * c)
        assert t.grad is None
    assert not torch.equal(before[-3], list(model.target_encoder.parameters())[-3])
    # The momentum rises linearly from ema[0] to ema[1] over the planned steps, then stays.
    m = _momenta(TJEPAConfig(ema=(0.99, 1.0)), total_steps=4)
    assert [round(next(m), 4) for _ in range(6)] == [0.99, 0.9925, 0.995, 0.9975, 1.0, 1.0]
    ema_update_(model.target_encoder, model.context_encoder, 0.0)  # momentum 0: a copy
    assert all(torch.equal(t, c) for t, c in zip(model.target_encoder.parameters(), model.context_encoder.parameters()))


def test_predictor_targets_are_the_target_encoders_representations_of_the_masked_features():
    model, x_num, x_cat = _jepa()
    context, targets = sample_masks(10, 6, TINY, torch.Generator().manual_seed(0))
    for t in targets:  # target features are never context features
        assert not (context[:, :, None] == t[:, None, :]).any()
    with torch.no_grad():
        _, wanted = model.predictions_and_targets(x_num, x_cat, context, targets)
        full = model.target_encoder(x_num, x_cat)[:, TINY.n_reg_tokens:]
    expected = torch.cat([gather_tokens(full, t) for t in targets], dim=1)
    torch.testing.assert_close(wanted, expected)
    # The context encoder sees the context features only: changing every other feature changes nothing.
    x2 = x_num.clone()
    outside = torch.ones(10, 6, dtype=torch.bool).scatter_(1, context, False)
    x2[outside[:, :4]] += 5.0
    with torch.no_grad():
        z1 = model.context_encoder(x_num, x_cat, keep=context)
        z2 = model.context_encoder(x2, x_cat, keep=context)
        f2 = model.target_encoder(x2, x_cat)[:, TINY.n_reg_tokens:]
    torch.testing.assert_close(z1, z2)
    assert not torch.allclose(full, f2)  # ...while the target encoder sees the whole row


def test_masks_follow_the_configured_shares():
    cfg = TJEPAConfig(context_share=(0.2, 0.2), target_share=(0.5, 0.5), n_targets=3)
    context, targets = sample_masks(7, 10, cfg, torch.Generator().manual_seed(0))
    assert context.shape == (7, 2) and [t.shape for t in targets] == [(7, 5)] * 3
    assert all(len(set(row.tolist())) == 2 for row in context)
    with pytest.raises(ValueError, match="at least 2 features"):
        sample_masks(3, 1, cfg, torch.Generator())
    with pytest.raises(ValueError, match="context_share"):
        TJEPAConfig(context_share=(0.5, 0.2))


def test_pretraining_stops_at_the_deadline_early_or_at_the_cap_and_encodes_every_row():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(200, 4)).astype(np.float32), rng.integers(0, 3, size=(200, 1)))
    late = FitContext(seed=0, deadline=0.0, clock=lambda: 1.0)  # already past: one batch, then stop
    cut = pretrain(X, TINY, late)
    assert cut.info["stopped_by"] == "deadline" and cut.info["epochs"] == 1
    done = pretrain(X, TINY, FitContext(seed=0))
    assert done.info["stopped_by"] in ("early_stopped", "max_iterations") and done.info["holdout_rows"] == 20
    assert 1 <= done.info["best_epoch"] <= done.info["epochs"] <= TINY.max_epochs
    z = encode(done, X)
    assert z.shape == (200, done.width) and np.isfinite(z).all()
    np.testing.assert_array_equal(z, encode(done, X))  # frozen: no dropout, no state


class _SmallTJEPA(MLPTJEPAAdapter):
    """mlp_tjepa at its smoke size (its defaults are the authors' 16-layer encoder)."""

    defaults = {**MLPTJEPAAdapter.defaults, **MLPTJEPAAdapter.smoke_params, "pretrain_max_epochs": 3}


def _pretraining_of_a_tuning_job(X, y, train, val, test) -> dict:
    """What the harness's tuning job (the defaults trial of mlp_tjepa) says its pretraining was."""
    take = X.iloc
    parts = Parts(take[train].reset_index(drop=True), y[train], take[val].reset_index(drop=True), y[val],
                  take[test].reset_index(drop=True), y[test])
    outcome = tune(_SmallTJEPA, TaskInfo("binary", 2), parts, Budget(trials=1), seed=0)
    (default,) = outcome.variants
    # Pretraining runs inside the fit: its seconds are part of the trial's fit seconds (and so of the budget).
    assert 0 < default.fit_info["pretraining"]["seconds"] <= default.fit_seconds
    return default.fit_info["pretraining"]


def test_in_a_tuning_job_permuting_test_labels_and_rows_leaves_the_pretrained_weights_identical():
    X, y, train, val, test = make_data("binary", n=160)
    first = _pretraining_of_a_tuning_job(X, y, train, val, test)
    assert first["epochs"] >= 1 and len(first["weights_sha256"]) == 64
    rng = np.random.default_rng(1)
    y2, X2 = y.copy(), X.copy()
    y2[test], y2[val] = rng.permutation(y2[test]), 1 - y2[val]  # test labels permuted, validation labels flipped
    X2.iloc[test, :4] = X2.iloc[rng.permutation(test), :4].to_numpy()  # test rows scrambled
    X2.iloc[val, :4] = X2.iloc[val, :4].to_numpy()[::-1]  # and validation rows
    assert _pretraining_of_a_tuning_job(X2, y2, train, val, test)["weights_sha256"] == first["weights_sha256"]
    # The comparison can fail: one training row changed gives other weights.
    X3 = X.copy()
    X3.iloc[train[0], 1] += 1.0
    assert _pretraining_of_a_tuning_job(X3, y, train, val, test)["weights_sha256"] != first["weights_sha256"]
