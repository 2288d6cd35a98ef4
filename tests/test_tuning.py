import numpy as np
import optuna
import pytest

from bench.adapters import TaskInfo, get_adapter
from bench.tuning import Budget, Parts, tune
from tests import fault_adapters


def _parts(ds, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(ds.n_rows)
    a, b = int(0.6 * ds.n_rows), int(0.8 * ds.n_rows)
    take = lambda rows: ds.X.iloc[rows].reset_index(drop=True)  # noqa: E731
    return Parts(take(idx[:a]), ds.y[idx[:a]], take(idx[a:b]), ds.y[idx[a:b]], take(idx[b:]), ds.y[idx[b:]])


def _tune(model, ds, trials, storage=None, name="study"):
    return tune(get_adapter(model), TaskInfo(ds.task_type, ds.n_classes), _parts(ds), Budget(trials),
                seed=0, threads=1, device="cpu", storage=storage, study_name=name)


def test_defaults_are_trial_zero_and_tuned_is_not_worse_on_validation(make_ds):
    ds = make_ds("binary")
    out = _tune("linear", ds, trials=5)
    variants = {v.variant: v for v in out.variants}
    assert set(variants) == {"default", "tuned"}
    assert out.trials[0]["is_default"] and variants["default"].trial_number == 0
    assert variants["default"].params["C"] == get_adapter("linear").defaults["C"]
    assert variants["tuned"].val_score >= variants["default"].val_score  # ROC AUC: maximize
    assert len(out.trials) == 5 and out.objective == "roc_auc"
    assert 0.5 < variants["tuned"].test_metrics["roc_auc"] <= 1.0


def test_single_trial_gives_only_the_default_variant(make_ds):
    out = _tune("linear", make_ds("regression"), trials=1)
    assert [v.variant for v in out.variants] == ["default"]
    assert set(out.variants[0].test_metrics) == {"rmse", "mae", "r2"}


def _numbers(out):
    """Every number a tuning outcome reports, timings and resume counts left out."""
    trials = [{k: t[k] for k in ("number", "state", "value", "params", "is_default", "test_score", "last_step",
                                  "end", "iterations", "best_iteration")} for t in out.trials]
    variants = [(v.variant, v.trial_number, v.params, v.val_score, v.test_metrics, v.fit_info,
                 [{k: x for k, x in s.items() if not k.endswith("_seconds")} for s in v.by_seed]) for v in out.variants]
    return trials, variants


def test_a_resumed_study_draws_what_an_uninterrupted_one_draws(make_ds, tmp_path):
    """Draws are seeded per trial number (bench.tuning.samplers): a study tuned in two processes tries
    exactly the configurations one uninterrupted process tries, and never replays earlier draws."""
    ds = make_ds("binary", n=150)
    storage = f"sqlite:///{tmp_path / 'resumed.db'}"
    _tune("linear", ds, trials=4, storage=storage, name="resumed")
    _tune("linear", ds, trials=7, storage=storage, name="resumed")
    params = [t.params for t in optuna.load_study(study_name="resumed", storage=storage).trials]
    assert len(params) == 7 and all(p not in params[:4] for p in params[4:]), params
    whole = _tune("linear", ds, trials=7, storage=f"sqlite:///{tmp_path / 'whole.db'}", name="whole")
    assert [t["params"] for t in whole.trials] == params  # same seed, no resume: the same draws


def test_study_resumes_from_persistent_storage_with_the_uninterrupted_numbers(make_ds, tmp_path):
    ds = make_ds("multiclass")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = _tune("linear", ds, trials=3, storage=storage)
    out = _tune("linear", ds, trials=5, storage=storage)  # only 2 more trials run
    assert [t["number"] for t in out.trials] == [0, 1, 2, 3, 4]
    assert len(optuna.load_study(study_name="study", storage=storage).trials) == 5
    whole = _tune("linear", ds, trials=5, storage=f"sqlite:///{tmp_path / 'whole.db'}")
    assert {v.variant for v in out.variants} == {"default", "tuned"}
    assert _numbers(out) == _numbers(whole)
    assert len({t["value"] for t in whole.trials}) > 1  # the trials differ: the comparison is not vacuous
    assert (first.resumes, out.resumes, whole.resumes) == (0, 1, 0)


def test_failing_model_yields_failures_not_exceptions(make_ds):
    out = _tune("test_raise", make_ds("binary"), trials=3)
    assert out.variants == []
    assert "injected failure" in out.failures["default"] and "tuned" in out.failures


def test_nan_predictions_are_a_failure(make_ds):
    out = _tune("test_nan", make_ds("regression"), trials=2)
    assert out.variants == [] and "non-finite" in out.failures["default"]


def test_no_test_rows_reach_preprocessing_or_fit(make_ds):
    ds = make_ds("binary", n=200)
    ds.X["row_id"] = np.arange(ds.n_rows, dtype=float)
    parts = _parts(ds)
    fault_adapters.SEEN["pre_rows"].clear()
    tune(get_adapter("test_spy"), TaskInfo("binary", 2), parts, Budget(3), seed=0, threads=1,
         device="cpu", storage=None, study_name="spy")
    test_rows = set(parts.X_test["row_id"].astype(int))
    train_rows = set(parts.X_train["row_id"].astype(int))
    assert fault_adapters.SEEN["pre_rows"] and all(seen == train_rows for seen in fault_adapters.SEEN["pre_rows"])
    assert not any(seen & test_rows for seen in fault_adapters.SEEN["pre_rows"])


@pytest.mark.parametrize("task_type", ["binary", "multiclass", "regression"])
def test_pruning_reports_reach_optuna(make_ds, task_type):
    out = _tune("xgboost", make_ds(task_type), trials=3)
    completed = [t for t in out.trials if t["state"] == "COMPLETE"]
    assert len(completed) == 3, out.failures  # with none completed, the check below would pass vacuously
    # XGBoost reports a value per block of rounds, the last one at or after the rounds it trained
    assert all(t["last_step"] is not None and t["last_step"] >= 1 for t in completed)


def test_each_final_configuration_is_refit_with_every_model_seed(make_ds):
    ds = make_ds("binary")
    out = tune(get_adapter("random_forest"), TaskInfo("binary", 2), _parts(ds), Budget(3), seed=7,
               threads=1, device="cpu", storage=None, study_name="seeds", seeds=3)
    from bench.seeding import refit_seeds as model_seeds

    assert model_seeds(7, 3)[0] == 7 and len(set(model_seeds(7, 3))) == 3 and model_seeds(7, 3) == model_seeds(7, 3)
    for v in out.variants:
        assert [s["seed"] for s in v.by_seed] == model_seeds(7, 3)
        aucs = [s["roc_auc"] for s in v.by_seed]
        assert len(set(aucs)) > 1  # a random forest differs by seed
        assert v.test_metrics["roc_auc"] == pytest.approx(np.mean(aucs))
    single = tune(get_adapter("random_forest"), TaskInfo("binary", 2), _parts(ds), Budget(3), seed=7,
                  threads=1, device="cpu", storage=None, study_name="one")
    by_variant = {v.variant: v for v in single.variants}
    for v in out.variants:  # the first seed is the tuning run itself: N=1 gives exactly that number
        assert by_variant[v.variant].test_metrics["roc_auc"] == v.by_seed[0]["roc_auc"]
        assert len(by_variant[v.variant].by_seed) == 1


def test_per_trial_test_scores_never_change_selection(make_ds):
    """The per-trial test score (for tuning curves) is reporting only: permuting the test labels
    changes it but not a single validation value, chosen trial or parameter."""
    ds = make_ds("multiclass")
    parts = _parts(ds)
    rng = np.random.default_rng(1)
    permuted = Parts(parts.X_train, parts.y_train, parts.X_val, parts.y_val, parts.X_test,
                     rng.permutation(parts.y_test))
    runs = [tune(get_adapter("xgboost"), TaskInfo("multiclass", ds.n_classes), p, Budget(6), seed=0, threads=1,
                 device="cpu", storage=None, study_name="perm") for p in (parts, permuted)]
    a, b = runs
    assert [t["value"] for t in a.trials] == [t["value"] for t in b.trials]
    assert [(v.variant, v.trial_number, v.params) for v in a.variants] == \
        [(v.variant, v.trial_number, v.params) for v in b.variants]
    completed = [t for t in a.trials if t["state"] == "COMPLETE"]
    assert completed and all(t["test_score"] is not None for t in completed)
    assert [t["test_score"] for t in a.trials] != [t["test_score"] for t in b.trials]


def test_a_default_trial_left_running_by_a_killed_process_is_rerun_on_resume(make_ds, tmp_path):
    storage, ds = f"sqlite:///{tmp_path / 's.db'}", make_ds("binary")
    study = optuna.create_study(storage=storage, study_name="killed", direction="maximize")
    study.enqueue_trial({"C": 1.0}, user_attrs={"is_default": True})
    study.ask()  # the defaults trial starts ... and its process dies: the trial stays RUNNING
    out = _tune("linear", ds, trials=3, storage=storage, name="killed")
    assert {v.variant for v in out.variants} == {"default", "tuned"}, out.failures
    trials = optuna.load_study(study_name="killed", storage=storage).trials
    # run again under its own number (not a new trial beside a RUNNING one), and counted as restarted
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3 and trials[0].user_attrs["is_default"]
    assert [t["restarts"] for t in out.trials] == [1, 0, 0] and out.variants[0].trial_number == 0
