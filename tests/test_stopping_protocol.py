"""One stopping protocol, one precedence (bench.adapters.framework.early_stopping): every iterative family ends the
same scripted run the same way.

The scripted run: the validation values of a curve that improves until iteration 25 and then worsens,
and a clock that advances one second per iteration (FitContext.clock). Each family trains for real
(XGBoost, LightGBM, CatBoost, the torch loop and its fast path, GrowNet on the loop's stage hook,
TabNet, TabR) through its own callback path; only the value each iteration hands the monitor is
replaced by the script's. End reason, iterations done and the kept iteration must be the same for all.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from bench.adapters import FitContext, TaskInfo, get_adapter
from bench.adapters.framework.early_stopping import StoppingMonitor, end_reason
from bench.vocabulary import TrialEnd

from .adapter_helpers import fit_predict, make_data

PATIENCE = 5
T0 = 1000.0  # the scripted clock's start


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


# family -> (adapter, its iteration cap's parameter, small settings)
FAMILIES = {
    "xgboost": ("xgboost", "n_estimators", {"early_stopping_rounds": PATIENCE}),
    "lightgbm": ("lightgbm", "n_estimators", {"early_stopping_rounds": PATIENCE}),
    "catboost": ("catboost", "iterations", {"early_stopping_rounds": PATIENCE}),
    "torch loop": ("mlp", "max_epochs", {"patience": PATIENCE, "d_block": 8, "n_blocks": 1}),
    "torch fast path": ("mlp", "max_epochs", {"patience": PATIENCE, "d_block": 8, "n_blocks": 1,
                                              "fast_path": "eager"}),
    "grownet (stage hook)": ("grownet", "max_stages", {"patience": PATIENCE, "hidden_d": 8, "min_stage_steps": 2}),
    "tabnet": ("tabnet", "max_epochs", {"patience": PATIENCE, "n_d": 8, "batch_size": 64,
                                        "virtual_batch_size": 32}),
    "tabr": ("tabr", "n_epochs", {"patience": PATIENCE, "d_main": 16, "context_size": 8}),
}
NEEDS = {"tabnet": ("pytorch_tabnet",), "tabr": ("pytabkit", "skorch")}


def improving_until(best: int):
    """Validation values: falling until `best`, rising after it (lower is better)."""
    return lambda t: 1.0 / t if t <= best else 1.0 / best + 1e-3 * (t - best)


# (curve, cap, deadline after iteration) -> (end, iterations, best iteration), the same for every family
SCENARIOS = {
    # the rule: MIN_ITERATIONS, then patience after the best
    "early stop": (improving_until(25), 100, None, ("early_stopped", 25 + PATIENCE, 25)),
    # the clock runs out at the very iteration the rule stops at: the clock changed nothing
    "early stop as the clock runs out": (improving_until(25), 100, 25 + PATIENCE, ("early_stopped", 30, 25)),
    "deadline before the rule": (improving_until(25), 100, 27, ("deadline", 27, 25)),
    "cap as the clock runs out": (improving_until(25), 28, 28, ("max_iterations", 28, 25)),
    "deadline while improving": (improving_until(100), 100, 24, ("deadline", 24, 24)),
}


class ScriptedRun:
    """Replaces the value each iteration hands StoppingMonitor.after_iteration by the script's, and
    moves the clock to T0 + iterations done."""

    def __init__(self, curve):
        self.curve, self.done = curve, 0

    def clock(self) -> float:
        return T0 + self.done

    def install(self, monkeypatch) -> None:
        real = StoppingMonitor.after_iteration
        run = self

        def after_iteration(monitor, iteration, value, *args, **kwargs):
            run.done = iteration
            return real(monitor, iteration, run.curve(iteration), *args, **kwargs)

        monkeypatch.setattr(StoppingMonitor, "after_iteration", after_iteration)


@pytest.fixture(scope="module")
def data():
    return make_data("binary", n=200, n_features=4)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_ends_a_scripted_run_the_same_way(family, scenario, data, monkeypatch, tmp_path):
    name, cap_key, params = FAMILIES[family]
    if not _have(*NEEDS.get(name, ())):
        pytest.skip(f"{name}'s optional library is not installed")
    monkeypatch.chdir(tmp_path)
    curve, cap, deadline_at, expected = SCENARIOS[scenario]
    run = ScriptedRun(curve)
    run.install(monkeypatch)
    ctx = FitContext(seed=0, threads=1, clock=run.clock, deadline=None if deadline_at is None else T0 + deadline_at)
    adapter, pred, _ = fit_predict(get_adapter(name), "binary", data, {**params, cap_key: cap}, ctx=ctx)
    info = ctx.info
    assert (info["stopped_by"], info["iterations"], info["best_iteration"]) == expected
    # the kept iteration's value (CatBoost reports bench.metrics' value of its kept model, the library's aside)
    assert info["library_best_val_score" if name == "catboost" else "best_val_score"] == curve(expected[2])
    assert np.all(np.isfinite(pred))
    if name in ("xgboost", "lightgbm"):
        assert adapter.kept_rounds == expected[2]  # predictions use the kept rounds
    if name == "catboost":
        assert adapter.model.tree_count_ == expected[2]  # cut to the kept iteration


def test_precedence_of_ends():
    """diverged > deadline that cut the iteration > early stop > cap > deadline after a whole iteration."""
    assert end_reason(diverged=True, interrupted=True, early_stopped=True) == TrialEnd.DIVERGED
    assert end_reason(interrupted=True, early_stopped=True, at_cap=True) == TrialEnd.DEADLINE
    assert end_reason(early_stopped=True, at_cap=True, out_of_time=True) == TrialEnd.EARLY_STOPPED
    assert end_reason(at_cap=True, out_of_time=True) == TrialEnd.MAX_ITERATIONS
    assert end_reason(out_of_time=True) == TrialEnd.DEADLINE
    assert end_reason() is None


def test_an_epoch_cut_by_the_clock_ends_deadline_even_where_the_rule_would_stop(monkeypatch):
    """The clock passes the deadline between two batches of the epoch at which early stopping would
    fire: that epoch is not what an unlimited run trains, so the end is `deadline`."""
    data = make_data("binary", n=200, n_features=4)
    run = ScriptedRun(improving_until(25))
    run.install(monkeypatch)
    reads = {"n": 0}

    def clock() -> float:  # within epoch 30 (after 29 are done) the second read is past the deadline
        if run.done == 29:
            reads["n"] += 1
            return T0 + 100.0 if reads["n"] > 1 else T0
        return T0 + run.done

    ctx = FitContext(seed=0, threads=1, clock=clock, deadline=T0 + 50.0)
    fit_predict(get_adapter("mlp"), "binary", data, {**FAMILIES["torch loop"][2], "max_epochs": 100,
                                                      "batch_size": 16}, ctx=ctx)
    assert (ctx.info["stopped_by"], ctx.info["iterations"], ctx.info["best_iteration"]) == ("deadline", 30, 25)


def test_the_deadline_leaves_room_for_the_prediction_after_the_fit():
    """With rows to predict after the fit, the monitor stops once clock + their measured prediction time
    reaches the deadline, not the deadline itself; boosting's cost grows with the rounds kept."""
    now = {"t": T0}
    ctx = FitContext(seed=0, clock=lambda: now["t"], deadline=T0 + 100.0, predict_rows=1000)
    monitor = StoppingMonitor(ctx, TaskInfo("regression"), np.zeros(10), patience=50, unit="rounds")
    monitor.note_prediction_cost(seconds=1.0, rows=100, iterations=10)  # 10 ms per row at 10 rounds
    for t in range(1, 60):
        now["t"] = T0 + t
        if monitor.after_iteration(t, 1.0 / t):
            break
    # after t rounds (all improving) the reserve is 1000 rows * 1 ms * t: stop at T0 + t + t >= T0 + 100
    assert monitor.end == TrialEnd.DEADLINE and monitor.iterations == 50
    assert math.isclose(monitor.reserve(), 50.0)


def test_networks_reserve_the_measured_validation_pass_per_row():
    now = {"t": T0}
    ctx = FitContext(seed=0, clock=lambda: now["t"], deadline=T0 + 10.0, predict_rows=500)
    monitor = StoppingMonitor(ctx, TaskInfo("regression"), np.zeros(100), patience=50, unit="epochs")
    monitor.note_prediction_cost(seconds=0.4, rows=100)  # a fixed-size network: 4 ms per row
    assert math.isclose(monitor.reserve(), 2.0)
    now["t"] = T0 + 7.9
    assert not monitor.time_up()
    now["t"] = T0 + 8.0
    assert monitor.time_up()


def test_boosting_reserve_grows_at_the_marginal_cost_of_later_rounds():
    """Later trees cost more than the average one: beyond the last probe the reserve grows at the cost per
    round between the last two probes (here 3.5 us per row and round), not at the average (3 us)."""
    ctx = FitContext(seed=0, predict_rows=1000)
    monitor = StoppingMonitor(ctx, TaskInfo("regression"), np.zeros(10), patience=500, unit="rounds")
    monitor.note_prediction_cost(seconds=64 * 2.5e-6 * 10, rows=10, iterations=64)  # 2.5 us per row and round
    monitor.note_prediction_cost(seconds=128 * 3e-6 * 10, rows=10, iterations=128)  # 3 us: later rounds cost more
    for t in range(1, 201):
        monitor.after_iteration(t, 1.0 / t)
    assert monitor.best_iteration == 200
    assert math.isclose(monitor.reserve(), 1000 * (128 * 3e-6 + 3.5e-6 * 72))
