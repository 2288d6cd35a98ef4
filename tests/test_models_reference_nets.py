"""The neural zoo: ResNet, FT-Transformer, MLP-PLR, TabM on the shared training loop."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from bench.adapters import FitContext, TaskInfo, get_adapter
from bench.adapters.space import invalid_values, suggest_params
from bench.metrics import objective_value, score_predictions
from bench.preprocessing import NumCatPreprocessor

from .adapter_helpers import TASKS, check_output, fit_predict, make_data

ZOO = ["resnet", "ft_transformer", "mlp_plr", "tabm"]
# Small, quick networks that still learn the easy synthetic tasks in a few epochs.
QUICK = {
    "resnet": {"n_blocks": 1, "d_block": 64, "lr": 3e-3},
    "ft_transformer": {"n_blocks": 1, "d_block": 32, "lr": 3e-3},
    "mlp_plr": {"n_blocks": 1, "d_block": 64, "d_embedding": 8, "n_frequencies": 8, "lr": 3e-3},
    "tabm": {"n_blocks": 2, "d_block": 64, "k": 8, "lr": 3e-3},
}


def fit_quick(name, task_type, data, params=None, **kwargs):
    params = {"max_epochs": 10, "patience": 4, **QUICK[name], **(params or {})}
    return fit_predict(get_adapter(name), task_type, data, params, **kwargs)


@pytest.fixture(scope="module")
def datasets():
    return {t: make_data(t, n=500, n_features=6) for t in TASKS}


@pytest.mark.parametrize("task_type", list(TASKS))
@pytest.mark.parametrize("name", ZOO)
def test_learns_and_outputs_valid_predictions(name, task_type, datasets):
    X, y, tr, va, te = datasets[task_type]
    model, pred, _ = fit_quick(name, task_type, datasets[task_type])
    check_output(pred, len(te), task_type, TASKS[task_type])
    score = objective_value(task_type, y[te], pred, TASKS[task_type])
    if task_type == "binary":
        assert score > 0.85  # ROC AUC; chance is 0.5
    elif task_type == "multiclass":
        assert score_predictions(task_type, y[te], pred, 3)["accuracy"] > 0.7
    else:
        assert score < 0.6 * np.std(y[te])  # RMSE well below predicting the mean
    info = model.ctx.info
    assert info["stopped_by"] in ("early_stopped", "max_iterations") and info["iteration_unit"] == "epochs"
    assert 1 <= info["best_iteration"] <= info["iterations"] <= 10


@pytest.mark.parametrize("name", ZOO)
def test_same_seed_same_predictions_other_seed_differs(name, datasets):
    runs = [fit_quick(name, "multiclass", datasets["multiclass"], {"max_epochs": 3},
                      ctx=FitContext(seed=s))[1] for s in (3, 3, 4)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("name", ZOO)
def test_defaults_valid_and_sampled_configs_build_and_fit(name, datasets):
    cls = get_adapter(name)
    assert cls.family == "neural"
    assert invalid_values(cls.search_space, cls.defaults) == []
    assert set(cls.search_space) <= set(cls.defaults)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(3):
        params = suggest_params(study.ask(), cls.search_space)
        assert invalid_values(cls.search_space, params) == []
        # Keep the sampled architecture but cap width so that the test stays quick on CPU.
        params.update(d_block=min(params["d_block"], 64), max_epochs=1)
        _, pred, _ = fit_predict(cls, "binary", datasets["binary"], params)
        assert np.all(np.isfinite(pred))


def test_tabm_trains_k_members_and_averages_their_probabilities(datasets):
    X, y, tr, va, te = datasets["multiclass"]
    model, pred, pre = fit_quick("tabm", "multiclass", datasets["multiclass"], {"k": 4, "max_epochs": 2})
    x_num, x_cat = pre.transform(X.iloc[te])
    net = model._net.model.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(x_num), torch.from_numpy(x_cat)).double()
    assert out.shape == (len(te), 4, 3)  # one prediction per ensemble member
    members = torch.softmax(out, dim=-1)
    assert not torch.allclose(members[:, 0], members[:, 1])  # the members really differ
    np.testing.assert_allclose(pred, members.mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)


def test_numcat_preprocessor_codes_unseen_and_missing_as_zero():
    train = pd.DataFrame({"num": [1.0, 2.0, np.nan, 4.0], "const": [7.0] * 4,
                          "cat": pd.Categorical(["a", "b", None, "a"])})
    test = pd.DataFrame({"num": [3.0, np.nan], "const": [7.0, 8.0],
                         "cat": pd.Categorical(["new", "b"])})
    pre = NumCatPreprocessor().fit(train)
    x_num, x_cat = pre.transform(test)
    assert "const" in pre.plan.dropped and pre.cardinalities == [3]  # a, b + missing/unseen
    assert x_num.dtype == np.float32 and x_num.shape == (2, 2)  # num + its missing indicator
    assert x_cat.dtype == np.int64 and x_cat[:, 0].tolist() == [0, pre.plan.vocab["cat"].index("b") + 1]


def test_only_categorical_and_no_feature_inputs():
    rng = np.random.default_rng(0)
    n = 200
    cat = rng.choice(["a", "b", "c"], n)
    y = (cat == "a").astype(int)
    X = pd.DataFrame({"cat": pd.Categorical(cat), "const": 1.0})
    idx = np.arange(n)
    data = (X, y, idx[:120], idx[120:160], idx[160:])
    for name in ("ft_transformer", "tabm", "mlp_plr"):
        _, pred, _ = fit_quick(name, "binary", data, {"max_epochs": 8})
        assert objective_value("binary", y[160:], pred, 2) > 0.95
    X_empty = pd.DataFrame({"const": np.ones(n)})  # nothing informative: still fits, predicts the prior
    for name in ("ft_transformer", "tabm", "mlp_plr", "resnet"):
        _, pred, _ = fit_quick(name, "binary", (X_empty, y, *data[2:]), {"max_epochs": 2})
        check_output(pred, 40, "binary", 2)


def test_class_missing_from_training_keeps_all_columns(datasets):
    X, y, tr, va, te = datasets["multiclass"]
    tr = tr[y[tr] != 2]
    for name in ZOO:
        _, pred, _ = fit_quick(name, "multiclass", (X, y, tr, va, te), {"max_epochs": 3})
        check_output(pred, len(te), "multiclass", 3)
        assert pred[:, 2].mean() < 0.3


def test_tuning_deadline_stops_training_and_keeps_a_model(datasets):
    """A trial that reaches the tuning budget's end stops inside its epoch instead of overrunning."""
    ctx = FitContext(seed=0, deadline=time.monotonic() - 1.0)
    model, pred, _ = fit_quick("tabm", "binary", datasets["binary"], {"max_epochs": 50}, ctx=ctx)
    assert model.ctx.info["stopped_by"] == "deadline" and model.ctx.info["iterations"] == 1
    check_output(pred, len(datasets["binary"][4]), "binary", 2)


def test_epoch_reports_reach_the_pruner(datasets):
    seen = []

    def report(step, value):
        seen.append(step)
        if step == 2:
            raise optuna.TrialPruned()

    with pytest.raises(optuna.TrialPruned):
        fit_quick("ft_transformer", "binary", datasets["binary"], ctx=FitContext(seed=0, report=report))
    assert seen == [1, 2]


def test_ft_transformer_does_not_decay_embeddings_or_norms():
    cls = get_adapter("ft_transformer")
    model = cls(TaskInfo("binary", 2), cls.smoke_params)
    x = (np.zeros((4, 3), np.float32), np.zeros((4, 1), np.int64) + np.array([[0], [1], [2], [1]]))
    net = model.build_network(x, 2)
    groups = model.param_groups(net, 0.5)
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.5 for p in g["params"]}
    for name, p in net.named_parameters():
        if "embeddings" in name or "normalization" in name or name.endswith(".bias"):
            assert id(p) not in decayed, name
    assert decayed  # the attention and FFN weights are decayed


def test_the_training_parameters_are_train_configs_fields_with_its_defaults():
    """TrainingParams (the params type every neural adapter extends) and TrainConfig (what the loop reads)
    name the same settings, and TRAINING_DEFAULTS are TrainConfig's defaults."""
    from dataclasses import fields

    from bench.adapters.framework.neural_base import TRAINING_DEFAULTS, TrainConfig, TrainingParams

    assert set(TrainingParams.__required_keys__) <= {f.name for f in fields(TrainConfig)}
    assert set(TRAINING_DEFAULTS) == set(TrainingParams.__required_keys__)
    assert TrainConfig.from_params(TRAINING_DEFAULTS) == TrainConfig()

