"""ModernNCA, ExcelFormer and GrowNet (written here): they learn, and their defining mechanisms hold.

The harness contract (check_adapter) covers them through tests/test_check_adapter.py, which checks every
built-in adapter; this file tests what makes each method what it is.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.adapters import FitContext, TaskInfo, get_adapter
from bench.metrics import objective_value, score_predictions

from .adapter_helpers import TASKS, check_output, fit_predict, make_data

QUICK = {
    "modern_nca": {"max_epochs": 15, "patience": 5, "batch_size": 64, "dim": 32, "lr": 3e-3},
    # the authors' 500-epoch protocol (warm-up, cosine decay, 512-row batches here) is tested on its own below
    "excelformer": {"max_epochs": 10, "patience": 4, "d_token": 32, "n_heads": 4, "n_layers": 2, "lr": 1e-3,
                    "lr_schedule": "constant", "batch_size": "auto"},
    "grownet": {"max_stages": 6, "patience": 3, "hidden_d": 16, "min_stage_steps": 20, "lr": 1e-3},
}


@pytest.fixture(scope="module")
def datasets():
    return {t: make_data(t, n=400, n_features=6) for t in TASKS}


@pytest.mark.parametrize("task_type", list(TASKS))
@pytest.mark.parametrize("name", list(QUICK))
def test_learns_and_outputs_valid_predictions(name, task_type, datasets):
    X, y, tr, va, te = datasets[task_type]
    _, pred, _ = fit_predict(get_adapter(name), task_type, datasets[task_type], QUICK[name])
    check_output(pred, len(te), task_type, TASKS[task_type])
    if task_type == "binary":
        assert objective_value(task_type, y[te], pred, 2) > 0.85  # ROC AUC; chance is 0.5
    elif task_type == "multiclass":
        assert score_predictions(task_type, y[te], pred, 3)["accuracy"] > 0.7
    else:
        assert objective_value(task_type, y[te], pred, 0) < 0.6 * np.std(y[te])  # RMSE well below the mean's


# --- ModernNCA -----------------------------------------------------------------------------------

def _nca_net(task_type="multiclass", n=12, sample_rate=1.0, seed=0):
    from bench.adapters.models.modern_nca.network import ModernNCANet

    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 3)).astype(np.float32), rng.integers(0, 3, size=(n, 1)))
    labels = rng.integers(0, 3, n) if task_type == "multiclass" else rng.normal(size=n)
    torch.manual_seed(seed)
    net = ModernNCANet(X, labels, 3 if task_type == "multiclass" else 0, [3], dim=5, n_blocks=0, d_block=8,
                       dropout=0.0, temperature=0.7, sample_rate=sample_rate, plr=True, d_embedding=4,
                       n_frequencies=4, frequency_init_scale=0.1)
    return net, X, labels


def _brute_force(net, z_query, z_cand, labels, n_classes):
    """The definition: softmax(-distance / T)-weighted average of the candidates' labels."""
    out = []
    for z in z_query.double():
        d = torch.sqrt(((z_cand.double() - z) ** 2).sum(dim=1))
        logits = -d / net.temperature
        w = torch.softmax(logits, dim=0).numpy()
        y = np.eye(n_classes)[labels] if n_classes else labels[:, None]
        avg = w @ y
        out.append(np.log(avg + 1e-7) if n_classes else avg)
    return np.array(out)


@pytest.mark.parametrize("task_type", ["multiclass", "regression"])
def test_modern_nca_training_excludes_the_row_itself(task_type):
    net, X, labels = _nca_net(task_type, sample_rate=1.0)  # neighbourhood: every other training row
    rows = torch.tensor([0, 3, 7, 11])
    xs = tuple(torch.as_tensor(a) for a in X)
    with torch.no_grad():
        out = net.training_forward(tuple(a[rows] for a in xs), rows).numpy()
        z_all = net.encode(*xs)  # no BatchNorm/dropout with n_blocks=0: the same encoder in both modes
    # Excluding row r is the brute force over the training rows without r.
    expected = np.concatenate([_brute_force(net, z_all[[r]], torch.cat([z_all[:r], z_all[r + 1:]]),
                                            np.delete(labels, r), net.n_classes) for r in rows.tolist()])
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # ...and it differs from letting the row be its own (closest) neighbour.
    with_self = _brute_force(net, z_all[rows], z_all, labels, net.n_classes)
    assert not np.allclose(out, with_self, atol=1e-3)


def test_modern_nca_samples_a_share_of_the_other_rows_per_batch():
    net, X, _ = _nca_net(n=40, sample_rate=0.25)
    seen = []
    original = net.predict_from

    def spy(z, z_cand, y_cand, exclude=None):
        seen.append((len(z_cand), exclude.sum(dim=1)))
        return original(z, z_cand, y_cand, exclude)

    net.predict_from = spy
    rows = torch.arange(8)
    with torch.no_grad():
        net.training_forward(tuple(torch.as_tensor(a)[rows] for a in X), rows)
    n_cand, excluded_per_row = seen[0]
    assert n_cand == 8 + int(32 * 0.25)  # the batch + 25% of the 32 other rows
    assert excluded_per_row.tolist() == [1] * 8  # exactly itself


@pytest.mark.parametrize("task_type", ["multiclass", "regression"])
def test_modern_nca_inference_is_the_softmax_neighbour_average_over_all_training_rows(task_type, monkeypatch):
    import bench.adapters.models.modern_nca.network as nca

    monkeypatch.setattr(nca, "PAIRS_PER_CHUNK", 25)  # 2 query rows per chunk: the chunking is exercised
    net, X, labels = _nca_net(task_type, n=12)
    rng = np.random.default_rng(5)
    query = (torch.as_tensor(rng.normal(size=(7, 3)).astype(np.float32)), torch.as_tensor(rng.integers(0, 3, (7, 1))))
    net.eval()
    with torch.no_grad():
        out = net(*query).numpy()
        expected = _brute_force(net, net.encode(*query), net.encode(*(torch.as_tensor(a) for a in X)),
                                labels, net.n_classes)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # New weights (the loop restores its best epoch with load_state_dict): the cached candidate
    # embeddings must not survive.
    state = {k: v + 0.3 if k.startswith("encoder") else v for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    with torch.no_grad():
        again = net(*query).numpy()
        expected = _brute_force(net, net.encode(*query), net.encode(*(torch.as_tensor(a) for a in X)),
                                labels, net.n_classes)
    np.testing.assert_allclose(again, expected, rtol=1e-4, atol=1e-5)


def test_modern_nca_regression_predictions_are_neighbour_averages_of_the_targets(datasets):
    X, y, tr, va, te = datasets["regression"]
    model, pred, _ = fit_predict(get_adapter("modern_nca"), "regression", datasets["regression"],
                                 {**QUICK["modern_nca"], "max_epochs": 2})
    assert y[tr].min() <= pred.min() and pred.max() <= y[tr].max()  # a convex combination of training targets


# --- ExcelFormer ---------------------------------------------------------------------------------

def test_excelformer_orders_features_by_mutual_information_on_the_training_part():
    from bench.adapters.models.excelformer.adapter import MIOrderedFeatures, feature_order
    from bench.adapters.models.excelformer.network import semi_permeable_mask

    assert feature_order(np.array([0.1, 0.5, 0.0, 0.3])).tolist() == [1, 3, 0, 2]
    allowed = semi_permeable_mask(4).numpy()
    # Feature at rank i attends to rank j only if j is at least as informative (j <= i).
    assert allowed.tolist() == [[j <= i for j in range(4)] for i in range(4)]
    rng = np.random.default_rng(0)
    x_num = rng.normal(size=(300, 4)).astype(np.float32)
    y = (x_num[:, 2] > 0).astype(int)  # only column 2 is informative
    features = MIOrderedFeatures(TaskInfo("binary", 2), seed=0)
    out = features.fit_transform((x_num, np.zeros((300, 0), np.int64)), y)
    assert features.order[0] == 2 and np.array_equal(out[:, 0], x_num[:, 2])
    assert features.mi_weights[0] > 0.5 and np.isclose(features.mi_weights.sum(), 1.0)
    test = rng.normal(size=(5, 4)).astype(np.float32)
    assert np.array_equal(features.transform((test, np.zeros((5, 0), np.int64))), test[:, features.order])


def _excel_net(n_features=5, d_out=3):
    from bench.adapters.models.excelformer.network import ExcelFormerNet

    torch.manual_seed(0)
    return ExcelFormerNet(n_features, d_out, np.array([0.4, 0.3, 0.2, 0.1, 0.0]), n_layers=2, d_token=8, n_heads=2,
                          attention_dropout=0.0, ffn_dropout=0.0, residual_dropout=0.0, init_scale=1.0).eval()


def test_excelformer_attention_is_semi_permeable():
    """A feature's representation depends only on itself and the more informative features."""
    net = _excel_net()
    x = torch.randn(6, 5)
    changed = x.clone()
    changed[:, 3] += 2.0  # the fourth most informative feature
    with torch.no_grad():
        z, z2 = net.blocks(net.tokenizer(x)), net.blocks(net.tokenizer(changed))
    assert torch.allclose(z[:, :3], z2[:, :3])  # more informative features: untouched
    assert not torch.allclose(z[:, 3:], z2[:, 3:])  # itself and the less informative one: changed


def test_mixing_keeps_exact_shares_and_takes_the_rest_from_the_partner():
    from bench.adapters.models.excelformer.network import mix_rows

    torch.manual_seed(1)
    x = torch.arange(40, dtype=torch.float32).reshape(4, 10)
    share = torch.tensor([0.0, 0.26, 0.5, 1.0])
    mixed, kept, partner = mix_rows(x, share)
    assert kept.sum(dim=1).tolist() == [0, 3, 5, 10]  # round(share * 10)
    assert torch.equal(mixed, torch.where(kept, x, x[partner]))
    tokens = torch.randn(4, 3, 10)  # hidden mix: the same dimensions for every feature of a row
    mixed, kept, partner = mix_rows(tokens, share)
    assert torch.equal(mixed, torch.where(kept[:, None, :], tokens, tokens[partner]))


@pytest.mark.parametrize("mix_type", ["feat_mix", "hidden_mix"])
def test_mixed_targets_are_weighted_by_the_kept_information(mix_type):
    from bench.adapters.models.excelformer.network import mix_rows, mixup_loss

    net = _excel_net()
    x, share = torch.randn(6, 5), torch.rand(6)
    torch.manual_seed(3)
    _, weight, partner = net.mixed_forward(x, share, mix_type)
    torch.manual_seed(3)  # the same draws again, to see which features / dims each row kept
    tokens = net.tokenizer(x)
    _, kept, partner2 = mix_rows(tokens.transpose(1, 2) if mix_type == "feat_mix" else tokens, share)
    assert torch.equal(partner, partner2)
    expected = (kept.float() * net.mi_weights).sum(1) if mix_type == "feat_mix" else kept.float().mean(1)
    assert torch.allclose(weight, expected)

    class Fixed:  # a network whose mixed outputs, weights and partners are known
        def mixed_forward(self, x, share, mix_type):
            return out, w, perm

    out, w, perm = torch.randn(4, 3), torch.tensor([1.0, 0.25, 0.5, 0.0]), torch.tensor([1, 2, 3, 0])
    y = torch.tensor([0, 1, 2, 1])
    loss = mixup_loss(Fixed(), (torch.zeros(4, 5),), y, None, mix_type=mix_type, alpha=0.5, classification=True)
    ce = torch.nn.functional.cross_entropy
    expected = (w * ce(out, y, reduction="none") + (1 - w) * ce(out, y[perm], reduction="none")).mean()
    assert torch.allclose(loss, expected)
    out = torch.randn(4, 1)
    y = torch.randn(4)
    loss = mixup_loss(Fixed(), (torch.zeros(4, 5),), y, None, mix_type=mix_type, alpha=0.5, classification=False)
    assert torch.allclose(loss, ((out.squeeze(-1) - (w * y + (1 - w) * y[perm])) ** 2).mean())


# --- GrowNet -------------------------------------------------------------------------------------

def _grownet_fit(task_type, X, y, **params):
    from bench.adapters.models.grownet import GrowNetAdapter
    from bench.adapters.models.grownet.network import train_grownet

    task = TaskInfo(task_type, 3 if task_type == "multiclass" else 0)
    ctx = FitContext(seed=0)
    p = {**GrowNetAdapter.defaults_for(task_type), "hidden_d": 16, "lr": 1e-3, **params}
    return train_grownet(task, ctx, X, y, X, y, p), ctx  # validation = training: the training loss decides


def _toy(task_type, n=300):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    signal = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    y = signal + 0.1 * rng.normal(size=n) if task_type == "regression" else np.digitize(signal, [-0.5, 0.5])
    return X, y


def test_grownet_prediction_is_the_boost_rate_weighted_sum_of_stages():
    X, y = _toy("multiclass")
    trained, ctx = _grownet_fit("multiclass", X, y, max_stages=3, patience=3)
    model = trained.model.eval()
    assert len(model.stages) == ctx.info["best_iteration"] >= 1
    x = torch.as_tensor(X[:20])
    with torch.no_grad():
        total, features = 0, None
        for stage in model.stages:
            features, out = stage(x, features)
            total = total + out
        expected = model.c0 + model.boost_rate * total
        assert torch.allclose(model(x), expected, atol=1e-6)
    np.testing.assert_allclose(trained.predict(X[:20]), torch.softmax(expected.double(), -1).numpy(), atol=1e-6)


@pytest.mark.parametrize("task_type", ["regression", "multiclass"])
def test_grownet_boost_rate_scales_the_stages_and_the_corrective_step_learns_it(task_type):
    """F = c0 + alpha * (sum of stages): F - c0 is linear in alpha and vanishes with it. alpha is trained by
    the corrective step on the task's loss: it moves from its initial 1 in the direction that lowers the
    training loss with the stages fixed, and does not move when the corrective step is switched off."""
    X, y = _toy(task_type)
    metric = "rmse" if task_type == "regression" else "log_loss"
    trained, _ = _grownet_fit(task_type, X, y, max_stages=4, patience=4)
    model = trained.model.eval()
    alpha = model.boost_rate.item()
    x = torch.as_tensor(X)
    learned_loss = score_predictions(task_type, y, trained.predict(X), 3)[metric]
    with torch.no_grad():
        F = model(x)
        model.boost_rate.mul_(2.0)
        F2 = model(x)
        model.boost_rate.zero_()
        F0 = model(x)
        model.boost_rate.fill_(1.0)
    initial_loss = score_predictions(task_type, y, trained.predict(X), 3)[metric]
    c0 = model.c0.expand_as(F)
    assert torch.allclose(F0, c0)  # the stages enter only through the boost rate
    assert torch.allclose(F2 - c0, 2 * (F - c0), atol=1e-5)
    assert abs(alpha - 1.0) > 0.01 and learned_loss < initial_loss
    # lr / 1e12 in the corrective step: nothing else changes the boost rate
    frozen, _ = _grownet_fit(task_type, X, y, max_stages=4, patience=4, lr_scaler=1e12)
    assert frozen.model.boost_rate.item() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("task_type", ["regression", "multiclass"])
def test_grownet_each_added_stage_reduces_the_training_loss(task_type):
    X, y = _toy(task_type)
    metric = "rmse" if task_type == "regression" else "log_loss"
    prior = score_predictions(task_type, y, np.full(len(y), y.mean()) if task_type == "regression"
                              else np.tile(np.bincount(y) / len(y), (len(y), 1)), 3)[metric]
    losses = []
    for stages in (1, 2, 4):  # the same seed: the longer runs start with the same stages
        trained, ctx = _grownet_fit(task_type, X, y, max_stages=stages, patience=stages)
        assert ctx.info["best_iteration"] == stages  # every stage improved on the training loss
        losses.append(score_predictions(task_type, y, trained.predict(X), 3)[metric])
    assert losses[2] < losses[1] < losses[0] < prior
    assert losses[2] < 0.9 * prior


def test_grownet_newton_objective_is_minimized_by_the_newton_step():
    from bench.adapters.models.grownet.network import newton_objective

    F = torch.tensor([[0.2, -0.4, 1.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([1, 2])
    prob = torch.softmax(F, -1)
    g = prob - torch.nn.functional.one_hot(target, 3)
    newton = -g / (prob * (1 - prob))  # the paper's Newton target -g/h
    u = newton.clone().requires_grad_(True)
    newton_objective(u, F, target, classification=True).backward()
    assert torch.allclose(u.grad, torch.zeros_like(u), atol=1e-6)  # the stationary point is -g/h
    ce = torch.nn.functional.cross_entropy
    assert ce(F + 0.1 * newton, target) < ce(F, target)  # a damped Newton step lowers the log loss


def test_grownet_deadline_keeps_a_model_and_says_so(datasets):
    import time

    ctx = FitContext(seed=0, deadline=time.monotonic() - 1.0)
    model, pred, _ = fit_predict(get_adapter("grownet"), "binary", datasets["binary"], QUICK["grownet"], ctx=ctx)
    assert ctx.info["stopped_by"] == "deadline" and ctx.info["iterations"] == 1
    check_output(pred, len(datasets["binary"][4]), "binary", 2)


def test_grownet_keeps_the_stage_with_the_lowest_validation_log_loss(datasets, monkeypatch):
    """Early stopping over stages watches validation log loss (the shared rule), not ROC AUC: on this run the
    two pick different stages, and the kept one is log loss's, its value is best_val_score, and the
    returned model scores it. The validation predictions of every stage are taken where the shared loop
    hands them to the stopping protocol."""
    from bench.adapters.framework.early_stopping import StoppingMonitor

    X, y, tr, va, te = datasets["binary"]
    per_stage = []
    real = StoppingMonitor.after_predictions

    def spy(monitor, iteration, pred, **kwargs):
        per_stage.append(score_predictions("binary", y[va], pred, 2))
        return real(monitor, iteration, pred, **kwargs)

    monkeypatch.setattr(StoppingMonitor, "after_predictions", spy)
    ctx = FitContext(seed=0, threads=1)
    params = {**QUICK["grownet"], "max_stages": 30, "patience": 10, "lr": 1e-2, "min_stage_steps": 2}
    adapter, _, pre = fit_predict(get_adapter("grownet"), "binary", datasets["binary"], params, ctx=ctx)
    info = ctx.info
    assert len(per_stage) == info["iterations"] == 30  # every stage went through the protocol
    log_loss = [s["log_loss"] for s in per_stage]
    auc = [s["roc_auc"] for s in per_stage]
    assert np.argmax(auc) != np.argmin(log_loss)  # the run tells the two metrics apart
    assert info["early_stopping_metric"] == "log_loss"
    assert info["best_iteration"] == np.argmin(log_loss) + 1 and info["best_val_score"] == min(log_loss)
    val = score_predictions("binary", y[va], adapter.predictions(pre.transform(X.iloc[va])), 2)
    assert val["log_loss"] == pytest.approx(min(log_loss), rel=1e-9)


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_excelformer_trains_with_the_authors_schedule_and_batch_size(datasets, monkeypatch):
    """The authors' run_default_config_excel.py: 10 epochs of linear warm-up, then CosineAnnealingLR
    (T_max = 490) stepped once per epoch; batch size by feature count. The loop sets each epoch's lr."""
    from bench.adapters.framework.torch_training import TrainConfig, TrainingRun
    from bench.adapters.models.excelformer.adapter import ExcelFormerAdapter, authors_batch_size

    defaults = ExcelFormerAdapter.defaults
    assert (defaults["max_epochs"], defaults["patience"], defaults["lr"]) == (500, 200, 1e-4)
    cfg = TrainConfig.from_params(defaults)
    # their loop, with torch's scheduler: lr of every epoch
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=500 - 10)
    theirs = []
    for epoch in range(1, 501):
        if epoch <= 10:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * epoch / 10
        else:
            scheduler.step()
        theirs.append(optimizer.param_groups[0]["lr"])
    np.testing.assert_allclose([cfg.lr_at_epoch(e) for e in range(1, 501)], theirs, rtol=1e-9, atol=1e-15)
    assert [authors_batch_size(n) for n in (6, 32, 33, 100, 101, 1000, 1001)] == [512, 512, 128, 128, 32, 32, 16]

    seen = []
    real = TrainingRun.begin_epoch

    def spy(run, epoch):
        real(run, epoch)
        seen.append(run.optimizer.param_groups[0]["lr"])

    monkeypatch.setattr(TrainingRun, "begin_epoch", spy)
    ctx = FitContext(seed=0, threads=1)
    params = {**defaults, **{k: QUICK["excelformer"][k] for k in ("d_token", "n_heads", "n_layers")},
              "max_epochs": 12}
    fit_predict(get_adapter("excelformer"), "binary", datasets["binary"], params, ctx=ctx)
    assert ctx.info["batch_size"] == 512  # 7 features (6 + the encoded categorical)
    expected = TrainConfig.from_params(params)
    np.testing.assert_allclose(seen, [expected.lr_at_epoch(e) for e in range(1, len(seen) + 1)], rtol=1e-12)
    assert seen[:3] == pytest.approx([1e-5, 2e-5, 3e-5]) and seen[10] < seen[9]


@pytest.mark.parametrize("fast_path", ["graph", "compile"])
def test_a_custom_training_loss_trains_on_eager_steps_and_says_why(fast_path, datasets):
    """A training_loss may draw random numbers (mixup, neighbour sampling) that a captured graph would
    freeze, so graph / compile requests run the fast path's eager steps instead."""
    ctx = FitContext(seed=0, threads=1)
    params = {**QUICK["excelformer"], "max_epochs": 2, "fast_path": fast_path}
    fit_predict(get_adapter("excelformer"), "binary", datasets["binary"], params, ctx=ctx)
    assert ctx.info["fast_path"] == "eager"
    assert "training_loss" in ctx.info["fast_path_fallback"]
