"""GPU checks (issue 12): the CUDA-graph fast path really captures and stays within seed noise of the
eager loop, and the GPU paths of XGBoost (device=cuda) and CatBoost (task_type=GPU) train and agree
with their CPU runs. Skipped without a CUDA device (torch's CPU build, or no GPU): run
`pytest -q tests/test_fast_path_cuda.py` on a GPU machine with a CUDA build of torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bench.adapters import FitContext, get_adapter
from bench.metrics import objective_value

from .adapter_helpers import TASKS, fit_predict, make_data

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device and a CUDA build of torch")

QUICK = {
    "mlp": {"n_blocks": 2, "d_block": 128},
    "resnet": {"n_blocks": 2, "d_block": 128},
    "tabm": {"n_blocks": 2, "d_block": 128, "k": 8},
    "ft_transformer": {"n_blocks": 1, "d_block": 64},
    "mlp_plr": {"n_blocks": 2, "d_block": 128},
}
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def data():
    return {t: make_data(t, n=3000, n_features=8) for t in TASKS}


def _scores(name, task_type, data, fast_path):
    out, infos = [], []
    for seed in SEEDS:
        model, pred, _ = fit_predict(get_adapter(name), task_type, data[task_type],
                                     {"max_epochs": 20, "batch_size": 128, **QUICK[name], "fast_path": fast_path},
                                     ctx=FitContext(seed=seed, device="cuda"))
        out.append(objective_value(task_type, data[task_type][1][data[task_type][4]], pred, TASKS[task_type]))
        infos.append(model.ctx.info)
    return np.array(out), infos


@pytest.mark.parametrize("task_type", ["binary", "regression"])
@pytest.mark.parametrize("name", list(QUICK))
def test_graph_fast_path_captures_and_matches_eager_within_seed_noise(name, task_type, data):
    eager, eager_info = _scores(name, task_type, data, "off")
    fast, fast_info = _scores(name, task_type, data, "graph")
    assert {i["fast_path"] for i in fast_info} == {"graph"}, [i.get("fast_path_fallback") for i in fast_info]
    assert all(i["cuda_peak_bytes"] > 0 for i in fast_info + eager_info)
    # The two loops draw different (equally valid) random streams: their mean test scores must agree
    # within what changing the seed alone does.
    noise = max(eager.std(ddof=1), fast.std(ddof=1), 1e-3 * abs(eager.mean()))
    assert abs(fast.mean() - eager.mean()) <= 3 * noise, (eager, fast)


@pytest.mark.parametrize("task_type", list(TASKS))
def test_xgboost_trains_on_the_gpu_and_agrees_with_cpu(task_type, data):
    params = {"n_estimators": 200}
    scores = {}
    for device in ("cpu", "cuda"):
        model, pred, _ = fit_predict(get_adapter("xgboost"), task_type, data[task_type], params,
                                     ctx=FitContext(seed=0, device=device))
        scores[device] = objective_value(task_type, data[task_type][1][data[task_type][4]], pred, TASKS[task_type])
        config = json.loads(model.booster.save_config())
        assert config["learner"]["generic_param"]["device"].startswith(device)
    assert scores["cuda"] == pytest.approx(scores["cpu"], rel=0.05)


@pytest.mark.parametrize("task_type", list(TASKS))
def test_catboost_trains_on_the_gpu_and_agrees_with_cpu(task_type, data):
    params = {"iterations": 300}
    scores = {}
    for device in ("cpu", "cuda"):
        model, pred, _ = fit_predict(get_adapter("catboost"), task_type, data[task_type], params,
                                     ctx=FitContext(seed=0, device=device))
        scores[device] = objective_value(task_type, data[task_type][1][data[task_type][4]], pred, TASKS[task_type])
        if device == "cuda":
            assert model.model.get_all_params()["task_type"] == "GPU"
            assert model.ctx.info["interruptible"] is False and model.ctx.info["iterations"] >= 1
    assert scores["cuda"] == pytest.approx(scores["cpu"], rel=0.05)
