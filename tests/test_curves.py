"""Tuning curves aggregate exactly like the leaderboard: hand-made records with worked-out answers."""

import pytest

from bench.analysis import curves, plots, stats
from bench.vocabulary import Status, Variant
from tests.hand_records import record, trial, write_run


def _curve(store, model):
    table = curves.tuning_curves(store.frame(), store.load_all(), n_permutations=200)
    return table[table.model == model].set_index("n_trials")


def _table(store):
    return stats.entry_summary(store.frame(), n_boot=0).set_index("entry").norm_score


def test_regression_curves_normalize_the_mean_over_splits_like_the_table(tmp_path):
    # RMSE per split: m's defaults 3.0 and 1.0 (mean 2.0), x 1.0, y 3.0; m's tuning picks trial 1 on
    # split 1, whose seed-mean test score in the record (0.8) differs from the trial's own (0.85).
    split_trials = [[trial(0, 1.0, 3.0), trial(1, 2.0, 5.0)], [trial(0, 1.0, 1.0), trial(1, 0.5, 0.85)]]
    records = []
    for split, (ts, default, tuned, tuned_trial) in enumerate(zip(split_trials, (3.0, 1.0), (3.0, 0.8), (0, 1))):
        records += [record("r", "m", Variant.DEFAULT, split, score=default, task_type="regression", trials=ts),
                    record("r", "m", Variant.TUNED, split, score=tuned, task_type="regression", trials=ts,
                           trial_number=tuned_trial),
                    record("r", "x", Variant.DEFAULT, split, score=1.0, task_type="regression"),
                    record("r", "y", Variant.DEFAULT, split, score=3.0, task_type="regression")]
    store = write_run(tmp_path / "run", records)
    table, curve = _table(store), _curve(store, "m")
    # signed means: m/default -2, m/tuned -1.9, x -1, y -3 -> median -1.95 -> 0, best -1 -> 1, truncated at 0
    assert table["m/default"] == 0.0 and table["m/tuned"] == pytest.approx(0.05 / 0.95)
    assert curve.norm_score[1] == table["m/default"]  # not 0.5, what clipping each split first would give
    assert curve.norm_score[2] == pytest.approx(table["m/tuned"])
    assert list(curve.index) == [1, 2] and set(curve.datasets) == {1}


def test_a_job_with_one_finished_trial_stays_in_the_curve_flat_at_its_defaults(tmp_path):
    full = [trial(0, 0.8, 0.75), trial(1, 0.9, 0.85), trial(2, 0.85, 0.9)]
    only = [trial(0, 0.8, 0.7)]  # the tuning clock left no other trial
    records = [record("b", "t", Variant.DEFAULT, 0, score=0.7, trials=only),
               record("b", "t", Variant.TUNED, 0, score=0.7, trials=only, only_defaults=True),
               record("b", "t", Variant.DEFAULT, 1, score=0.75, trials=full),
               record("b", "t", Variant.TUNED, 1, score=0.85, trials=full, trial_number=1, only_defaults=False)]
    for split in (0, 1):
        records += [record("b", "z", Variant.DEFAULT, split, score=0.5, family="baseline"),
                    record("b", "w", Variant.DEFAULT, split, score=0.95),
                    record("b", "u", Variant.DEFAULT, split, status=Status.UNAVAILABLE)]
    store = write_run(tmp_path / "run", records)
    table, curve = _table(store), _curve(store, "t")
    assert list(curve.index) == [1, 2, 3] and set(curve.datasets) == {1}
    assert curve.norm_score[1] == pytest.approx(table["t/default"])  # mean(0.7, 0.75), normalized
    assert curve.norm_score[3] == pytest.approx(table["t/tuned"])  # mean(0.7, 0.85): split 0 stayed flat
    assert table["t/default"] < curve.norm_score[2] < curve.norm_score[3] + 0.1
    assert set(curves.tuning_curves(store.frame(), store.load_all()).model) == {"t"}  # untuned: no curve
    jobs = curves.curve_jobs(store.load_all())
    assert jobs.set_index("model").loc["t"].tolist() == [2, 1, 3, 1]
    assert plots.curve_label("t", jobs) == "t (1-3 trials, 1 of 2 jobs defaults-only)"
