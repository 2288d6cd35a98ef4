"""Post-hoc ensembles (issue 11 part 2): Caruana selection, the predictions files and their cap,
per-model and cross-model ensembles that never see test labels, records, verify, leaderboard, resume,
and inner cross-validation's out-of-fold predictions."""

import json

import numpy as np
import optuna
import pytest
from scipy.stats import rankdata

from bench.adapters import TaskInfo, get_adapter
from bench.execution.ensembles import load_members, plan_entries, split_test_labels
from bench.metrics import objective_value, score_predictions
from bench.records.schema import validate_record
from bench.records.store import ResultStore
from bench.tuning import Budget, Parts, tune
from bench.tuning import predictions as P
from bench.tuning import study as study_module
from bench.tuning.crossfit import make_folds
from bench.tuning.ensemble import build, caruana
from tests.cli_helpers import data_file, records, run_cli, suite_file
from tests.test_tuning import _parts

REGRESSION = TaskInfo("regression")


def _tune(ds, parts=None, trials=6, model="linear", storage=None, path=None, key="k", inner_folds=1, **kw):
    return tune(get_adapter(model), TaskInfo(ds.task_type, ds.n_classes), parts or _parts(ds),
                Budget(trials, inner_folds=inner_folds), seed=0, threads=1, device="cpu", storage=storage,
                study_name="s", predictions=path, job_key=key, **kw)


def _ensemble(out):
    return next(v for v in out.variants if v.variant == "ensemble")


# --- the selection itself ------------------------------------------------------------------------

def test_caruana_finds_the_known_mix_and_cuts_back_to_its_best_step():
    y = np.array([1.0, -2.0, 0.5, 3.0, 0.0])
    e = np.array([1.0, -1.0, 2.0, 0.5, -0.5])
    # A errs by +2e, B by -e: 1/3 A + 2/3 B is exact. Step 1 picks B (smaller error), step 2 A
    # (error e/2), step 3 B again (error 0); later steps only move away, so the ensemble is cut at 3.
    a, b, worse = y + 2 * e, y - e, y + 5 * e
    sel = caruana([worse, a, b], y, REGRESSION)
    assert sel.weights == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert sel.val_score == pytest.approx(0.0, abs=1e-12) and sel.counts.sum() == 3
    assert len(sel.trajectory) == 40 and sel.trajectory[2] == min(sel.trajectory)
    # Equal candidates: the first one, and an ensemble never worse than its best member on validation.
    sel = caruana([b, b.copy(), y - 3 * e], y, REGRESSION)  # errors of one sign: mixing only hurts
    assert list(sel.weights) == [1.0, 0.0, 0.0] and sel.val_score == pytest.approx(np.sqrt(np.mean(e ** 2)))
    # Binary ROC AUC (maximized): one candidate ranks every row right.
    yb = np.array([0, 1, 0, 1, 1, 0])
    p1 = np.linspace(0.1, 0.9, 6)[[0, 4, 1, 5, 3, 2]]
    good = np.column_stack([1 - p1, p1])
    flat = np.full((6, 2), 0.5)
    sel = caruana([flat, good], yb, TaskInfo("binary", 2))
    assert list(sel.weights) == [0.0, 1.0] and sel.val_score == 1.0


def _near_tie(scale: float):
    """A (RMSE 0.5 * scale) and B (slightly worse alone), whose mean is better than A by about 3e-7 * scale:
    B's error is (1 - 2a) e + g with g orthogonal to e and |g|^2 = 4a |e|^2, a = 1.2e-6."""
    y = np.array([1.0, -2.0, 0.5, 3.0])
    e = scale * 0.5 * np.array([1.0, 1.0, -1.0, -1.0])
    a = 1.2e-6
    g = np.sqrt(4 * a) * scale * 0.5 * np.array([1.0, -1.0, 1.0, -1.0])
    return [y + e, y + (1 - 2 * a) * e + g], y


def test_caruana_rounds_regrets_as_autogluon_so_near_ties_add_no_member():
    # RMSE 0.5 > 1e-4: regrets are rounded to 6 decimals, so B's gain of 3e-7 is a tie and A stays alone
    (a, b), y = _near_tie(1.0)
    mix = np.sqrt(np.mean(((a + b) / 2 - y) ** 2))
    assert 0 < 0.5 - mix < 1e-6  # mixing in B does improve validation, by less than the rounding
    sel = caruana([a, b], y, REGRESSION)
    assert list(sel.weights) == [1.0, 0.0] and sel.counts.sum() == 1 and sel.val_score == pytest.approx(0.5)
    # a near-perfect first member (regret 5e-5 <= 1e-4): AutoGluon does not round, the tiny gain counts
    (a, b), y = _near_tie(1e-4)
    sel = caruana([a, b], y, REGRESSION)
    assert sel.weights[1] > 0 and sel.val_score < 0.5e-4
    # ROC AUC's regret is 1 - AUC (here 0: no rounding); of equal candidates the first stays alone
    yb = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3, 0.6, 0.4])
    perfect = np.column_stack([1 - p, p])
    sel = caruana([perfect, perfect.copy()], yb, TaskInfo("binary", 2))
    assert list(sel.weights) == [1.0, 0.0] and sel.val_score == 1.0


def test_objective_value_is_the_score_predictions_objective():
    rng = np.random.default_rng(0)
    for task_type, k, metric in (("binary", 2, "roc_auc"), ("multiclass", 3, "log_loss"), ("regression", 0, "rmse")):
        y = rng.integers(0, max(k, 2), 50) if k else rng.normal(size=50)
        pred = rng.dirichlet(np.ones(k), 50) if k else rng.normal(size=50)
        assert objective_value(task_type, y, pred, k) == score_predictions(task_type, y, pred, k)[metric]


# --- per-model ensembles -------------------------------------------------------------------------

def test_the_ensemble_variant_selects_on_validation_and_never_reads_test_labels(make_ds, tmp_path):
    ds = make_ds("multiclass")
    parts = _parts(ds)
    permuted = Parts(parts.X_train, parts.y_train, parts.X_val, parts.y_val, parts.X_test,
                     np.random.default_rng(1).permutation(parts.y_test))
    a = _tune(ds, parts, model="xgboost", path=tmp_path / "a.npz")
    b = _tune(ds, permuted, model="xgboost", path=tmp_path / "b.npz")
    ea, eb = _ensemble(a), _ensemble(b)
    assert ea.params == eb.params and ea.val_score == eb.val_score
    assert ea.test_metrics != eb.test_metrics  # the test labels did change the test score
    tuned = next(v for v in a.variants if v.variant == "tuned")
    assert ea.val_score <= tuned.val_score + 1e-6  # log loss: never worse than the best trial on validation
    # the test prediction is the weighted mean of the members' stored test predictions (no refit)
    stored = P.load(tmp_path / "a.npz", "k")
    weights = {int(n): w for n, w in ea.params["weights"].items()}
    mix = sum(w * stored.test[n].astype("float64") for n, w in weights.items())
    assert ea.test_metrics == pytest.approx(score_predictions("multiclass", parts.y_test, mix, ds.n_classes))
    assert set(weights) <= set(stored.numbers) and ea.ensemble["members"]


def test_predictions_files_are_float32_and_bounded_by_the_cap(make_ds, tmp_path, monkeypatch):
    monkeypatch.setattr(P, "MAX_TRIALS", 3)
    ds = make_ds("binary")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    for trials in (7, 9):  # the second call resumes the study: the cap holds over both
        out = _tune(ds, trials=trials, storage=storage, path=tmp_path / "p.npz")
        stored = P.load(tmp_path / "p.npz", "k")
        completed = {t["number"]: t["value"] for t in out.trials if t["state"] == "COMPLETE"}
        best = sorted(completed, key=lambda n: (-completed[n], n))[:3]  # ROC AUC: higher is better
        assert stored.numbers == sorted(best) and len(completed) == trials
        assert out.predictions["cap"]["limit"] == 3 and out.predictions["cap"]["dropped"] == trials - 3
        assert out.predictions["kept"] == 3 and out.predictions["without"] == 0
        assert all(a.dtype == np.float32 for n in best for a in stored.raw[n])  # as the file holds them
        assert not (tmp_path / "p.parts").exists()  # merged into the one file
        assert set(map(int, _ensemble(out).params["weights"])) <= set(best)
    # the byte cap: trials of 30 MB each fit twice into 64 MB; a huge one alone is still kept
    assert P.trial_limit(30_000_000) == 2 and P.trial_limit(10**9) == 1 and P.trial_limit(100) == 3


def test_probabilities_are_stored_as_float32_log_probabilities_that_keep_their_ranking():
    p1 = 1 - np.array([1e-9, 2e-9, 5e-9, 1e-6, 0.3])  # float32 would make the first three 1.0
    proba = np.column_stack([1 - p1, p1])
    assert len(set(proba[:, 1].astype(np.float32))) < 5
    stored = P.encode(proba, classification=True)
    back = P.decode(stored, P.LOG_PROBA)
    assert stored.dtype == np.float32 and np.all(np.diff(back[:, 1]) < 0)  # every rank kept
    assert back == pytest.approx(proba, rel=1e-6) and np.allclose(back.sum(axis=1), 1.0)
    values = np.array([1e5 + 0.5, -3.25])
    assert P.decode(P.encode(values, classification=False), P.VALUES) == pytest.approx(values, rel=1e-7)


def test_an_ensemble_of_the_tuned_trial_alone_has_its_scores_bit_for_bit(make_ds, tmp_path):
    """Linear models with 4 trials (seeded, so the same every run): each trial predicts differently, the
    tuned trial is not the defaults one, and Caruana selection keeps it alone. The ensemble then scores
    the float64 predictions its trial was scored with, so its scores are the tuned record's bit for bit
    (the float32 file would move log loss and RMSE in the 8th digit)."""
    for task_type in ("binary", "multiclass", "regression"):
        ds = make_ds(task_type, n=200, seed=1)  # data on which the seed's draws make a non-default trial best
        out = _tune(ds, trials=4, model="linear", path=tmp_path / f"{task_type}.npz")
        by = {v.variant: v for v in out.variants}
        tuned, ensemble = by["tuned"], by["ensemble"]
        assert tuned.trial_number != 0 and ensemble.params == {"weights": {str(tuned.trial_number): 1.0}}
        stored = P.load(tmp_path / f"{task_type}.npz", "k")
        for n in stored.numbers:  # predictions vary across rows and trials: no constant shortcut
            assert np.ptp(stored.test[n], axis=0).max() > 1e-3
        assert len({stored.test[n].tobytes() for n in stored.numbers}) == len(stored.numbers) == 4
        assert ensemble.test_metrics == tuned.test_metrics, task_type
        assert ensemble.val_score == tuned.val_score, task_type


class _Killed(BaseException):
    """Stands for kill -9: Optuna does not catch it, so the trial it hits stays RUNNING forever."""


def test_resume_after_a_kill_keeps_every_completed_trials_predictions(make_ds, tmp_path, monkeypatch):
    ds = make_ds("binary")
    storage, path = f"sqlite:///{tmp_path / 's.db'}", tmp_path / "p.npz"
    keep = study_module._keep_predictions

    def dies_on_trial_3(store, trial, *args):
        keep(store, trial, *args)  # its part is written, then the process "dies" before it completes
        if trial.number == 3:
            raise _Killed()

    monkeypatch.setattr(study_module, "_keep_predictions", dies_on_trial_3)
    with pytest.raises(_Killed):
        _tune(ds, trials=6, storage=storage, path=path)
    assert not path.exists() and sorted(p.name for p in (tmp_path / "p.parts").iterdir()) == \
        ["0.npz", "1.npz", "2.npz", "3.npz"]
    monkeypatch.setattr(study_module, "_keep_predictions", keep)
    out = _tune(ds, trials=6, storage=storage, path=path)  # the same job again: resumes the study
    complete = [t for t in out.trials if t["state"] == "COMPLETE"]
    stored = P.load(path, "k")
    # 3 never completed: the resumed process re-ran it under its own number
    assert [t["number"] for t in complete] == stored.numbers == [0, 1, 2, 3, 4, 5]
    assert [t["restarts"] for t in complete] == [0, 0, 0, 1, 0, 0]
    assert out.predictions["without"] == 0 and not (tmp_path / "p.parts").exists()
    parts = _parts(ds)
    for t in complete:  # each kept prediction is the one its trial's value was computed from
        assert objective_value("binary", parts.y_val, stored.val[t["number"]], 2) == pytest.approx(t["value"], abs=1e-6)
    assert set(map(int, _ensemble(out).params["weights"])) <= set(stored.numbers)


def test_trials_finished_without_predictions_are_counted_and_a_fresh_study_never_mixes_in(make_ds, tmp_path):
    ds = make_ds("regression")
    storage, path = f"sqlite:///{tmp_path / 's.db'}", tmp_path / "p.npz"
    _tune(ds, trials=3, storage=storage)  # a study begun by a version that kept no predictions
    out = _tune(ds, trials=5, storage=storage, path=path)
    assert out.predictions["kept"] == 2 and out.predictions["without"] == 3
    assert set(map(int, _ensemble(out).params["weights"])) <= {3, 4}
    optuna.delete_study(study_name="s", storage=storage)  # what --retry-failed does
    again = _tune(ds, trials=2, storage=storage, path=path)
    assert again.predictions["kept"] == 2 and P.load(path, "k").numbers == [0, 1]
    assert P.load(path, "other-settings") is None  # a file made under other settings is never read


def test_inner_cv_ensembles_use_out_of_fold_validation_predictions(make_ds, tmp_path):
    ds = make_ds("multiclass", n=240)
    parts = _parts(ds)
    out = _tune(ds, parts, trials=4, path=tmp_path / "p.npz", inner_folds=3)
    _, y_scored = make_folds(parts, TaskInfo(ds.task_type, ds.n_classes), 3, 0)
    stored = P.load(tmp_path / "p.npz", "k")
    assert np.array_equal(stored.y_val, y_scored) and len(y_scored) == len(parts.y_train) + len(parts.y_val)
    for t in out.trials:  # every outer training row predicted out of fold: the trial's own value
        n = t["number"]
        assert stored.val[n].shape == (len(y_scored), ds.n_classes) and stored.test[n].shape[0] == len(parts.y_test)
        value = objective_value("multiclass", y_scored, stored.val[n], ds.n_classes)
        assert value == pytest.approx(t["value"], rel=1e-5)
    assert _ensemble(out).val_score <= min(t["value"] for t in out.trials) + 1e-6


# --- cross-model ensembles through the sweep -----------------------------------------------------

def _sweep(tmp_path, capsys, models="linear,test_prior", out_name="run"):
    data_file(tmp_path / "b.parquet", "binary", n=160)
    data_file(tmp_path / "r.parquet", "regression", n=160, seed=1)
    suite = suite_file(tmp_path / "s.toml", {"b": ("b.parquet", "binary"), "r": ("r.parquet", "regression")})
    out = tmp_path / out_name
    args = ["run", "--suite", suite, "--models", models, "--trials", 3, "--jobs", 0, "--splits", 1,
            "--out", out, "--quiet"]
    code, text = run_cli(capsys, *args)
    assert code == 0, text
    return out, args


def test_sweep_records_verify_and_leaderboard_with_per_model_and_cross_model_ensembles(tmp_path, capsys):
    out, args = _sweep(tmp_path, capsys)
    recs = records(out)
    assert {p for p in recs if "ensemble" in p} == {
        "records/b/linear/r0f0.ensemble.json", "records/b/test_prior/r0f0.ensemble.json",
        "records/b/ensemble_all/r0f0.ensemble.json", "records/r/linear/r0f0.ensemble.json",
        "records/r/test_prior/r0f0.ensemble.json", "records/r/ensemble_all/r0f0.ensemble.json"}
    for path, r in recs.items():
        assert validate_record(r) == [], path
        assert r["status"] == "ok", (path, r.get("error"))
    cross = recs["records/b/ensemble_all/r0f0.ensemble.json"]
    assert cross["family"] == "ensemble" and cross["ensemble"]["models"] == ["linear", "test_prior"]
    assert all(m["job_key"] == recs[f"records/b/{m['model']}/r0f0.default.json"]["job_key"]
               for m in cross["ensemble"]["members"])
    assert abs(sum(cross["params"]["weights"].values()) - 1) < 1e-9
    # bad weights are an invalid record
    assert validate_record({**cross, "params": {"weights": {"linear/0": 0.7}}})
    plan = json.loads((out / "plan.json").read_text())
    assert plan["jobs"]["b/ensemble_all/r0f0"]["variants"] == ["ensemble"]
    assert plan["jobs"]["b/linear/r0f0"]["variants"] == ["default", "tuned", "ensemble"]
    code, text = run_cli(capsys, "verify", out)
    assert code == 0 and "no problems" in text, text
    code, text = run_cli(capsys, "leaderboard", out)
    assert code == 0 and "ensemble_all/ensemble" in text and "linear/ensemble" in text, text
    from bench.analysis.analyze import analyze, numbers

    analysis = analyze(ResultStore(out), n_boot=20)
    compared = numbers(analysis)  # what `bench regress` compares: each number worked out from the records
    tested = {(r["dataset"], f"{r['model']}/{r['variant']}"): r["test_score"] for r in recs.values()}
    assert compared["score b ensemble_all/ensemble"] == cross["test_score"]
    assert compared["score r linear/ensemble"] == tested[("r", "linear/ensemble")]
    entries = sorted({e for _, e in tested})
    norm, ranks = {e: [] for e in entries}, {e: [] for e in entries}
    for dataset, quantile, sign in (("b", 0.1, 1.0), ("r", 0.5, -1.0)):  # ROC AUC up; RMSE down, truncated
        signed = np.array([sign * tested[(dataset, e)] for e in entries])
        low, span = np.quantile(signed, quantile), signed.max() - np.quantile(signed, quantile)
        scaled = (signed - low) / span if span > 0 else (signed >= low).astype(float)  # ties at the top: 1
        for e, v, rank in zip(entries, np.maximum(scaled, 0) if dataset == "r" else scaled, rankdata(-signed)):
            norm[e].append(v)
            ranks[e].append(rank)
    assert compared["norm_score linear/ensemble"] == pytest.approx(np.mean(norm["linear/ensemble"]), abs=1e-12)
    assert compared["mean_rank test_prior/ensemble"] == np.mean(ranks["test_prior/ensemble"])
    assert compared["elo linear/default"] == 1000.0  # the anchor
    elo = analysis.summary.set_index("entry").elo
    assert compared["elo ensemble_all/ensemble"] == elo["ensemble_all/ensemble"] and np.isfinite(elo).all()

    # resume: the cross-model record is made again from the same stored predictions, identically
    ens, other = out / "records/b/ensemble_all/r0f0.ensemble.json", out / "records/r/ensemble_all/r0f0.ensemble.json"
    before, other_bytes = json.loads(ens.read_text()), other.read_bytes()
    ens.unlink()
    code, text = run_cli(capsys, *args)
    assert code == 0 and "0 jobs run, 4 already done" in text, text
    after = json.loads(ens.read_text())
    assert after["params"] == before["params"] and after["test_score"] == before["test_score"]
    assert other.read_bytes() == other_bytes  # its inputs did not change: not made again

    # a member whose settings change makes the cross-model record stale
    plan["jobs"]["b/linear/r0f0"]["job_key"] = "changed"
    plan["jobs"].update(plan_entries(plan["jobs"]))
    (out / "plan.json").write_text(json.dumps(plan))
    code, text = run_cli(capsys, "verify", out)
    assert code == 1 and "b/ensemble_all/r0f0.ensemble.json: made with other settings" in text, text


def test_cross_model_weights_never_depend_on_test_labels(tmp_path, capsys):
    out, _ = _sweep(tmp_path, capsys)
    store = ResultStore(out)
    jobs = store.plan()["jobs"]
    entry = jobs["b/ensemble_all/r0f0"]
    from bench.execution.ensembles import _member_records

    candidates, y_val, left_out = load_members(store, _member_records(store, jobs, entry))
    y_test, ds = split_test_labels(store, entry)
    task = TaskInfo(ds.task_type, ds.n_classes)
    a = build(candidates, y_val, y_test, task)
    b = build(candidates, y_val, np.random.default_rng(0).permutation(y_test), task)
    assert a.weights == b.weights and a.val_score == b.val_score and a.test_metrics != b.test_metrics
    recorded = store.read("b/ensemble_all/r0f0", "ensemble")
    assert recorded["params"]["weights"] == a.weights and recorded["test_score"] == a.test_metrics["roc_auc"]
    assert not left_out and {c.about["model"] for c in candidates} == {"linear", "test_prior"}


def test_one_model_gets_no_cross_model_entry(tmp_path, capsys):
    out, _ = _sweep(tmp_path, capsys, models="linear")
    assert not list((out / "records").rglob("ensemble_all/*"))
    assert "b/ensemble_all/r0f0" not in json.loads((out / "plan.json").read_text())["jobs"]


def test_models_left_out_of_the_cross_model_ensemble_are_named_in_the_leaderboard_and_report(tmp_path, capsys):
    """test_raise fails every job, so the cross-model ensembles select over linear and test_prior only: the
    leaderboard notes (console and Markdown) and the report name it, not only the records."""
    out, _ = _sweep(tmp_path, capsys, models="linear,test_prior,test_raise")
    cross = records(out)["records/b/ensemble_all/r0f0.ensemble.json"]
    assert cross["status"] == "ok" and cross["ensemble"]["left_out"] == {"test_raise": "no ok record (failed)"}
    line = "ensemble_all/ensemble: test_raise left out of 2 of 2 records (b/0, r/0): no ok record (failed)"
    code, text = run_cli(capsys, "leaderboard", out)
    assert code == 0 and "Left out of cross-model ensembles" in text and line in text, text
    assert line in (out / "leaderboard.md").read_text()
    code, text = run_cli(capsys, "report", out, "--bootstrap", 20)
    assert code == 0, text
    assert line in (out / "report.md").read_text()
    assert line in (out / "report.html").read_text().replace("&#x27;", "'")
    # a run where every member made it has no such note
    full, _ = _sweep(tmp_path, capsys, out_name="full")
    code, text = run_cli(capsys, "leaderboard", full)
    assert code == 0 and "Left out" not in text and "Left out" not in (full / "leaderboard.md").read_text()


def test_a_splits_cross_model_ensemble_is_written_when_its_last_member_finishes(tmp_path):
    """Not after the whole sweep: when the wine split's last model job is done, its ensemble_all record is
    on disk before the next dataset's jobs finish (a stopped sweep keeps it), and the pass after the
    executor finds it current (it is written once)."""
    from bench.execution.sweep import SweepConfig, execute_sweep, prepare_sweep

    out = tmp_path / "run"
    plan = prepare_sweep(SweepConfig(suite="demo", models=["dummy", "linear"], datasets=["wine", "cpu"],
                                     trials=1, max_splits=1, out=out, workers=0))
    seen = []

    def progress(job, records):
        seen.append((job.job_id, (out / "records/wine/ensemble_all/r0f0.ensemble.json").exists()))

    result = execute_sweep(plan, progress)
    order = [job_id for job_id, _ in seen]
    last_wine = max(i for i, job_id in enumerate(order) if job_id.startswith("wine/"))
    assert [there for _, there in seen[last_wine:]] == [True] * (len(seen) - last_wine)
    assert not any(there for _, there in seen[:last_wine])
    written = json.loads((out / "records/wine/ensemble_all/r0f0.ensemble.json").read_text())
    assert written["status"] == "ok" and written["ensemble"]["models"] == ["dummy", "linear"]
    files = list((out / "records").rglob("*.json"))
    assert sum(result.summary.statuses.values()) == len(files)  # each record counted once, ensembles included
    assert sum("ensemble_all" in str(p) for p in files) == 2
