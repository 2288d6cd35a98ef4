"""Tuning K trials at a time (--pack K, bench.tuning.packing): each trial of a pack gets its own result.

A tiny MLP without dropout (packing's "fast" mode then matches a single fit within float tolerance), random
search (trial n's configuration depends on the seed and n only, so a --pack 1 run of the same study draws
the same configurations: the reference every packed trial is compared with).
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from bench.adapters import FloatParam, IntParam, TaskInfo, get_adapter
from bench.adapters.models.mlp import MLPAdapter
from bench.adapters.models.mlp_plr import MLPPLRAdapter
from bench.adapters.models.tabm import TabMAdapter
from bench.errors import BenchError
from bench.records.identity import changed_settings
from bench.tuning import Budget, tune
from bench.tuning import study as study_module
from tests.test_tuning import _parts

RTOL = 1e-5  # a packed member without dropout vs its single fit (tests/test_packed_training.py: < 2e-7)
RECORDED = ("end", "iterations", "best_iteration", "iteration_unit")


class TinyMLP(MLPAdapter):
    defaults = {**MLPAdapter.defaults, "n_blocks": 1, "d_block": 16, "dropout": 0.0, "batch_size": 32,
                "max_epochs": 24, "patience": 2}
    search_space = {"n_blocks": IntParam(1, 2), "d_block": IntParam(8, 24), "lr": FloatParam(1e-3, 3e-2, log=True),
                    "weight_decay": FloatParam(1e-6, 1e-3, log=True)}


def run(ds, tmp_path, pack: int, trials: int = 7, adapter=TinyMLP, name: str = "s"):
    return tune(adapter, TaskInfo(ds.task_type, ds.n_classes), _parts(ds), Budget(trials, sampler="random", pack=pack),
                seed=0, threads=1, device="cpu", predictions=tmp_path / f"{name}{pack}.npz", job_key="k")


def test_each_packed_trial_gets_the_result_it_gets_alone(make_ds, tmp_path):
    ds = make_ds("binary", n=200)
    alone, packed = run(ds, tmp_path, pack=1), run(ds, tmp_path, pack=4)
    assert [t["pack"] for t in packed.trials] == [1, 4, 4, 4, 4, 2, 2]  # defaults alone; 6 left: 4 + 2
    assert [t["pack"] for t in alone.trials] == [1] * 7
    for one, many in zip(alone.trials, packed.trials):
        assert one["params"] == many["params"] and one["state"] == many["state"] == "COMPLETE"
        assert many["value"] == pytest.approx(one["value"], rel=RTOL), many["number"]
        assert {k: many[k] for k in RECORDED} == {k: one[k] for k in RECORDED}
        assert many["test_score"] == pytest.approx(one["test_score"], rel=1e-4)
        assert many["fits"] == 1 and many["seconds"] > 0 and many["cpu_seconds"] > 0
    # every trial's predictions are kept (ensembles and curves read them), and the variants come out
    assert packed.predictions["kept"] == alone.predictions["kept"] == 7
    assert [v.variant for v in packed.variants] == [v.variant for v in alone.variants]
    tuned = {v.variant: v for v in packed.variants}["tuned"]
    assert tuned.val_score == pytest.approx({v.variant: v for v in alone.variants}["tuned"].val_score, rel=RTOL)


class TinyPLR(MLPPLRAdapter):
    defaults = {**MLPPLRAdapter.defaults, "n_blocks": 1, "d_block": 16, "dropout": 0.0, "d_embedding": 4,
                "n_frequencies": 4, "batch_size": 32, "max_epochs": 24, "patience": 2}
    search_space = {"d_embedding": IntParam(2, 6), "n_frequencies": IntParam(2, 6),
                    "lr": FloatParam(1e-3, 3e-2, log=True)}


class TinyTabM(TabMAdapter):
    defaults = {**TabMAdapter.defaults, "k": 4, "n_blocks": 1, "d_block": 16, "dropout": 0.0, "batch_size": 32,
                "max_epochs": 24, "patience": 2}
    search_space = {"n_blocks": IntParam(1, 2), "d_block": IntParam(8, 24), "lr": FloatParam(1e-3, 3e-2, log=True)}


@pytest.mark.parametrize("adapter", [TinyPLR, TinyTabM], ids=["mlp_plr", "tabm"])
def test_numcat_models_tune_packed_with_each_trials_own_result(adapter, make_ds, tmp_path):
    """MLP-PLR and TabM (numeric + categorical inputs, gradient clipping on) through the tuner's packed path
    (fit_pack with 4 models; TabM's train one at a time on CPU, fitting.SLOWER_PACKED)."""
    ds = make_ds("regression", n=200)
    alone, packed = run(ds, tmp_path, pack=1, trials=5, adapter=adapter), run(ds, tmp_path, pack=4, trials=5,
                                                                                 adapter=adapter)
    assert [t["pack"] for t in packed.trials] == [1, 4, 4, 4, 4]
    for one, many in zip(alone.trials, packed.trials):
        assert one["params"] == many["params"] and one["state"] == many["state"] == "COMPLETE"
        assert many["value"] == pytest.approx(one["value"], rel=RTOL), many["number"]
        assert {k: many[k] for k in RECORDED} == {k: one[k] for k in RECORDED}


def test_a_pruned_member_ends_alone_and_its_pack_goes_on(make_ds, tmp_path, monkeypatch):
    report = study_module._report

    def prune_trial_two(trial, already, step, value):
        report(trial, already, step, value)
        if trial.number == 2 and step == 3:
            raise optuna.TrialPruned()

    monkeypatch.setattr(study_module, "_report", prune_trial_two)
    ds = make_ds("regression", n=200)
    alone, packed = run(ds, tmp_path, pack=1, trials=5), run(ds, tmp_path, pack=4, trials=5)
    states = [t["state"] for t in packed.trials]
    assert states == [t["state"] for t in alone.trials] == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"]
    pruned = packed.trials[2]
    assert pruned["end"] == "pruned" and pruned["iterations"] == pruned["last_step"] == 3 and pruned["pack"] == 4
    for one, many in zip(alone.trials, packed.trials):
        if many["state"] == "COMPLETE":
            assert many["value"] == pytest.approx(one["value"], rel=RTOL)
            assert many["iterations"] == one["iterations"] and many["end"] == one["end"]
    assert packed.predictions["kept"] == 4  # the pruned trial has none


class LosesATrial(TinyMLP):
    @classmethod
    def fit_pack(cls, models, X_train, y_train, X_val, y_val, *, exact=False):
        return super().fit_pack(models, X_train, y_train, X_val, y_val, exact=exact)[:-1]


def test_a_fit_pack_that_returns_too_few_results_fails_its_pack_visibly(make_ds, tmp_path):
    out = run(make_ds("binary", n=150), tmp_path, pack=3, trials=4, adapter=LosesATrial)
    assert [t["state"] for t in out.trials] == ["COMPLETE", "FAIL", "FAIL", "FAIL"]
    assert all("fit_pack returned 2 results for 3 models" in t["error"] for t in out.trials[1:])


def test_a_model_that_cannot_pack_tunes_one_trial_at_a_time(make_ds, tmp_path):
    ds = make_ds("binary", n=150)
    assert not get_adapter("linear").capabilities.pack and TinyMLP.capabilities.pack
    out = run(ds, tmp_path, pack=4, trials=4, adapter=get_adapter("linear"))
    assert [t["pack"] for t in out.trials] == [1, 1, 1, 1]


def test_pack_is_validated_and_part_of_the_run_identity():
    with pytest.raises(BenchError, match="--pack must be an integer >= 1, got 0"):
        Budget(3, pack=0)
    assert Budget(3, pack=8).record()["pack"] == Budget(3, pack=8).settings()["pack"] == 8
    old = {"trials": 3}  # a run.json written before --pack existed: the run used 1
    assert changed_settings(old, {"trials": 3, "pack": 1}) == {}
    assert changed_settings(old, {"trials": 3, "pack": 8}) == {"pack": (1, 8)}


def test_trial_seconds_add_up_to_the_packs(make_ds, tmp_path):
    out = run(make_ds("binary", n=200), tmp_path, pack=3, trials=4)
    packed = out.trials[1:]
    assert {t["pack"] for t in packed} == {3}
    assert np.all([t["seconds"] > 0 for t in packed])
    # the members' shares of one pack sum to about its wall time, not K times it
    assert sum(t["seconds"] for t in packed) <= out.tuning_seconds
