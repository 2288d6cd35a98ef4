"""The GPU paths of XGBoost (device=cuda) and CatBoost (task_type=GPU), checked as far as a machine
without a GPU allows (issue 12): the libraries' own parameter validation accepts every configuration
the harness can send to a GPU (defaults and the corners of the search space, every task type), and
XGBoost trains with device=cuda (it falls back to the CPU when no GPU is visible, so the parameter set
is exercised end to end). tests/test_fast_path_cuda.py trains both on a real GPU where there is one."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bench.adapters import FitContext, TaskInfo, get_adapter
from bench.adapters.space import FloatParam, IntParam

from .adapter_helpers import TASKS, fit_predict, make_data


def _corners(space: dict) -> list[dict]:
    """Every tuned parameter at its low end, then at its high end."""
    def end(p, high):
        if isinstance(p, (IntParam, FloatParam)):
            return p.high if high else p.low
        raise TypeError(f"unexpected parameter {p!r}")
    return [{k: end(p, high) for k, p in space.items()} for high in (False, True)]


@pytest.mark.parametrize("task_type", list(TASKS))
def test_catboost_gpu_parameters_pass_catboosts_own_gpu_checks(task_type):
    catboost_core = pytest.importorskip("catboost.core")
    check = getattr(pytest.importorskip("catboost._catboost"), "_check_train_params", None)
    if check is None or not hasattr(catboost_core, "_process_synonyms"):
        pytest.skip("this CatBoost version has no parameter check to call")
    import numpy as np

    from bench.adapters.framework.early_stopping import StoppingMonitor

    cls = get_adapter("catboost")
    for params in [{}, *_corners(cls.search_space_for(task_type))]:
        ctx = FitContext(seed=0, threads=2, device="cuda")
        adapter = cls(TaskInfo(task_type, TASKS[task_type]), params, ctx)
        task = TaskInfo(task_type, TASKS[task_type])
        y_val = np.arange(20) % max(TASKS[task_type], 2) if task_type != "regression" else np.linspace(0, 1, 20)
        monitor = StoppingMonitor(ctx, task, y_val, int(adapter.params["early_stopping_rounds"]), unit="rounds")
        gpu = adapter._model_params(monitor, int(adapter.params["iterations"]))
        assert gpu["task_type"] == "GPU" and gpu["devices"] == "0"
        options = dict(gpu)
        catboost_core._process_synonyms(options)  # what CatBoost's fit does before its C++ checks
        check(options)  # raises CatBoostError for options the GPU does not support (e.g. rsm)
        with pytest.raises(Exception, match="rsm on GPU"):  # the check does look at GPU limits
            bad = {**gpu, "rsm": 0.5}
            catboost_core._process_synonyms(bad)
            check(bad)


@pytest.mark.parametrize("task_type", list(TASKS))
def test_xgboost_device_cuda_parameters_are_accepted_and_train(task_type):
    cls = get_adapter("xgboost")
    adapter = cls(TaskInfo(task_type, TASKS[task_type]), {}, FitContext(seed=0, device="cuda"))
    params = adapter._booster_params(["logloss"])
    assert params["device"] == "cuda" and params["tree_method"] == "hist"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No visible GPU is found, setting device to CPU"
        for corner in _corners(cls.search_space_for(task_type)):
            model, pred, _ = fit_predict(cls, task_type, make_data(task_type, n=200),
                                         {**corner, "n_estimators": 25, "early_stopping_rounds": 25},
                                         ctx=FitContext(seed=0, device="cuda"))
            assert np.all(np.isfinite(pred)) and model.ctx.info["iterations"] >= 1
