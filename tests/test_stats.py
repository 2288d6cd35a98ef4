"""Statistics on small hand-made result frames with answers worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.analysis import critical_difference, curves, elo, stats
from bench.records.schema import Status

META = {"a": (500, 10, 0), "b": (5_000, 10, 6), "c": (50_000, 4, 1)}


def _frame(spec):
    """spec: {(dataset, task_type): {entry: [score per split] or "failed" / "skipped"}}."""
    rows = []
    for (dataset, task_type), entries in spec.items():
        direction = "maximize" if task_type == "binary" else "minimize"
        n_rows, n_features, n_cat = META.get(dataset, (100, 5, 0))
        for entry, values in entries.items():
            model, variant = entry.split("/")
            splits = values if isinstance(values, list) else [None]
            for split, v in enumerate(splits):
                status = Status.OK if isinstance(values, list) else Status(values)
                rows.append({"dataset": dataset, "task_type": task_type, "model": model, "variant": variant,
                             "family": "x", "split": split, "status": status, "test_score": v,
                             "direction": direction, "fit_seconds": 2.0, "predict_seconds": 0.5,
                             "n_rows": n_rows, "n_features": n_features, "n_categorical": n_cat,
                             "test_score_std": 0.01 if status == Status.OK else None})
    return pd.DataFrame(rows)


FIVE = {"m1/default": [0.5], "m2/default": [0.7], "m3/default": [0.8], "m4/default": [0.9], "m5/default": [1.0]}
RMSE = {"m1/default": [10.0], "m2/default": [4.0], "m3/default": [3.0], "m4/default": [2.0], "m5/default": [1.0]}


def _norm(frame, method):
    out = stats.normalize(stats.dataset_scores(frame), method)
    return {(d, e): v for d, e, v in zip(out.dataset, out.entry, out[stats.METHODS[method]])}


def test_min_max_and_grinsztajn_quantile_normalization():
    frame = _frame({("a", "binary"): FIVE, ("b", "regression"): RMSE})
    minmax = _norm(frame, "minmax")
    assert minmax[("a", "m2/default")] == pytest.approx(0.4) and minmax[("a", "m5/default")] == 1.0
    assert minmax[("b", "m4/default")] == pytest.approx(8 / 9)  # -2 on the [-10, -1] scale
    quant = _norm(frame, "quantile")
    # classification: the 10% quantile of [0.5 .. 1.0] is 0.58 (linear) -> 0; below stays negative
    assert quant[("a", "m2/default")] == pytest.approx(0.12 / 0.42)
    assert quant[("a", "m1/default")] == pytest.approx(-0.08 / 0.42)
    # regression: the median (-3) -> 0, best 1, worse than the median truncated to 0
    assert quant[("b", "m4/default")] == pytest.approx(0.5)
    assert quant[("b", "m3/default")] == 0 and quant[("b", "m1/default")] == 0


def test_failures_count_as_worst_not_run_records_are_left_out_and_seed_std_is_rescaled():
    spec = {("a", "binary"): {**FIVE, "bad/default": "failed", "skip/default": "skipped", "na/default": "unavailable"}}
    frame = _frame(spec)
    scores = stats.per_dataset(frame).set_index("entry")
    assert "skip/default" not in scores.index and "na/default" not in scores.index
    assert scores.loc["bad/default", "norm_score"] == pytest.approx(-0.08 / 0.42)  # the worst finisher's value
    assert scores.loc["m3/default", "norm_seed_std"] == pytest.approx(0.01 / 0.42)
    assert scores.loc["bad/default", "rank"] == 6 and scores.loc["m5/default", "win"]
    assert scores.loc["bad/default", "norm_minmax"] == 0
    # skipped and unavailable are the same thing to every statistic: as if the records did not exist
    without = stats.per_dataset(_frame({("a", "binary"): {**FIVE, "bad/default": "failed"}})).set_index("entry")
    pd.testing.assert_frame_equal(scores, without)


def test_summary_counts_failures_but_not_unavailable_records():
    spec = {("a", "binary"): {**FIVE, "bad/default": "failed", "na/default": "unavailable"},
            ("b", "binary"): {**FIVE, "bad/default": [0.6], "na/default": "skipped"}}
    summary = stats.entry_summary(_frame(spec), n_boot=50).set_index("entry")
    assert summary.loc["bad/default", ["failures", "skipped", "unavailable", "datasets"]].tolist() == [1, 0, 0, 1]
    na = summary.loc["na/default"]
    assert [na.failures, na.skipped, na.unavailable, na.datasets, na.wins] == [0, 1, 1, 0, 0]
    assert np.isnan(na.norm_score) and np.isnan(na.mean_rank)
    assert summary.index[-1] == "na/default"  # never ran: listed last, without a score


def test_entry_summary_means_ranks_and_bootstrap_interval():
    spec = {("a", "binary"): FIVE, ("b", "regression"): RMSE, ("c", "binary"): FIVE}
    summary = stats.entry_summary(_frame(spec), n_boot=200).set_index("entry")
    m2 = summary.loc["m2/default"]
    assert m2.norm_score == pytest.approx((2 * 0.12 / 0.42 + 0) / 3)
    assert m2.norm_ci_low <= m2.norm_score <= m2.norm_ci_high
    assert summary.loc["m5/default", "mean_rank"] == 1 and summary.loc["m5/default", "wins"] == 3
    assert summary.index[0] == "m5/default" and summary.loc["m5/default", "median_seconds"] == 2.5
    same = stats.bootstrap_mean_ci(pd.DataFrame({"x": [0.3, 0.3, 0.3]}))
    assert same.loc["x"].tolist() == pytest.approx([0.3, 0.3, 0.3])


def test_slices_group_datasets_by_task_size_and_categorical_share():
    spec = {("a", "binary"): FIVE, ("b", "regression"): RMSE, ("c", "binary"): FIVE}
    frame = _frame(spec)
    by_size = stats.slice_table(frame, "size")
    assert list(by_size.columns) == ["1k-10k rows (n=1)", "< 1k rows (n=1)", ">= 10k rows (n=1)"]
    by_cat = stats.slice_table(frame, "categorical_share")
    assert set(by_cat.columns) == {"no categorical (n=1)", "<= 50% categorical (n=1)", "> 50% categorical (n=1)"}
    by_task = stats.slice_table(frame, "task_type")
    assert by_task.loc["m4/default", "regression (n=1)"] == pytest.approx(0.5)
    assert by_task.loc["m2/default", "binary (n=2)"] == pytest.approx(0.12 / 0.42)
    with pytest.raises(ValueError, match="unknown slice"):
        stats.slice_table(frame, "colour")
    tvs = stats.time_vs_score(stats.entry_summary(frame, n_boot=0)).set_index("entry")
    assert tvs.loc["m1/default", "median_seconds"] == 2.5


def test_bradley_terry_elo_recovers_known_odds_and_anchor():
    # A beats B on 3 of 4 splits of every dataset: odds 3:1 -> 400 * log10(3) = 190.8 Elo points.
    spec = {(d, "binary"): {"A/default": [0.9, 0.9, 0.9, 0.7], "B/default": [0.8, 0.8, 0.8, 0.8]}
            for d in ("a", "b", "c")}
    table = elo.elo_table(_frame(spec), anchor="B/default", n_boot=50).set_index("entry")
    assert table.loc["B/default", "elo"] == pytest.approx(1000.0)
    assert table.loc["A/default", "elo"] - 1000 == pytest.approx(400 * math.log10(3), rel=0.03)
    rates = elo.win_rate_matrix(_frame(spec))
    assert rates.loc["A/default", "B/default"] == pytest.approx(0.75)
    assert np.isnan(rates.loc["A/default", "A/default"])


def test_every_dataset_weighs_the_same_and_ties_are_half():
    # A wins 3 splits on dataset a, B wins the single split of dataset b: equal strength.
    spec = {("a", "binary"): {"A/default": [0.9, 0.9, 0.9], "B/default": [0.8, 0.8, 0.8]},
            ("b", "binary"): {"A/default": [0.7], "B/default": [0.8]},
            ("c", "binary"): {"A/default": [0.8], "B/default": [0.8], "C/default": "failed"}}
    frame = _frame(spec)
    rates = elo.win_rate_matrix(frame)
    assert rates.loc["A/default", "B/default"] == pytest.approx(0.5)
    assert rates.loc["C/default", "A/default"] == 0.0
    table = elo.elo_table(frame, n_boot=20).set_index("entry")
    assert table.loc["A/default", "elo"] == pytest.approx(table.loc["B/default", "elo"], abs=1e-6)
    assert table.loc["C/default", "elo"] < table.loc["A/default", "elo"]
    with pytest.raises(ValueError, match="not an entry"):
        elo.elo_table(frame, anchor="nope/default")


def test_elo_and_win_rates_leave_not_run_records_out_like_the_table():
    # U is unavailable on a and skipped on b, and best on c: it must not lose on a or b (the old rule
    # scored unavailable as -inf, a loss to everyone); the ratings equal those without the records.
    spec = {("a", "binary"): {"A/default": [0.9, 0.8], "B/default": [0.7, 0.85], "U/default": "unavailable"},
            ("b", "binary"): {"A/default": [0.6], "B/default": [0.7], "U/default": "skipped"},
            ("c", "binary"): {"A/default": [0.6], "B/default": [0.7], "U/default": [0.95]}}
    frame = _frame(spec)
    lean = frame[~frame.status.isin([Status.UNAVAILABLE, Status.SKIPPED])]
    rates, lean_rates = elo.win_rate_matrix(frame), elo.win_rate_matrix(lean)
    pd.testing.assert_frame_equal(rates, lean_rates)
    # A over B: a 1/2 (both splits share the dataset's weight), b 0, c 0 -> 0.5 / (0.5 + 0.5 + 1 + 1/3)
    assert rates.loc["U/default", "A/default"] == 1.0 and rates.loc["A/default", "B/default"] == pytest.approx(3 / 14)
    table = elo.elo_table(frame, anchor="A/default", n_boot=20).set_index("entry")
    lean_table = elo.elo_table(lean, anchor="A/default", n_boot=20).set_index("entry")
    pd.testing.assert_frame_equal(table, lean_table)
    assert table.loc["U/default", "elo"] > table.loc["B/default", "elo"]
    # a failure, by contrast, loses every battle of its split
    failed = _frame({**spec, ("a", "binary"): {**spec[("a", "binary")], "U/default": "failed"}})
    # U's failure is on split 0 of a (1 of the 4 battles there); it won c (1 of 3): (1/3) / (1/3 + 1/4)
    assert elo.win_rate_matrix(failed).loc["U/default", "A/default"] == pytest.approx(4 / 7)
    summary = stats.entry_summary(frame, n_boot=0).set_index("entry")
    assert summary.loc["U/default", ["datasets", "failures", "mean_rank"]].tolist() == [1, 0, 1.0]


def test_critical_difference_matches_demsar():
    # Demšar 2006, Table 5(a): q_0.05 = 2.569 for k = 4 -> CD = 2.569 * sqrt(4 * 5 / (6 * 10))
    assert critical_difference.nemenyi_cd(4, 10) == pytest.approx(2.569 * math.sqrt(20 / 60), rel=1e-3)
    assert critical_difference.nemenyi_cd(3, 10) == pytest.approx(2.343 * math.sqrt(12 / 60), rel=1e-3)
    spec = {(f"d{i}", "binary"): {"A/default": [0.9], "B/default": [0.8], "C/default": [0.7 + 0.01 * (i % 2)],
                                  "D/default": [0.6]} for i in range(8)}
    spec[("d8", "binary")] = {"A/default": [0.9], "B/default": "skipped", "C/default": [0.1], "D/default": [0.2]}
    result = critical_difference.critical_difference(_frame(spec))
    assert result.dropped_datasets == ["d8"] and result.n_datasets == 8
    assert list(result.mean_ranks.index) == ["A/default", "B/default", "C/default", "D/default"]
    assert result.significant and result.friedman_p < 1e-3
    assert result.nemenyi_p.loc["A/default", "D/default"] < 0.05
    assert result.nemenyi_p.loc["A/default", "B/default"] > 0.05  # adjacent ranks: within CD
    assert critical_difference.critical_difference(_frame({("a", "binary"): FIVE})) is None


def test_best_so_far_follows_validation_not_test():
    values = np.array([0.7, np.nan, 0.9, 0.8])  # trial 1 was pruned
    tests = np.array([0.6, 0.99, 0.5, 0.95])
    assert curves.best_so_far(values, tests, maximize=True).tolist() == [0.6, 0.6, 0.5, 0.5]
    assert curves.best_so_far(values, tests, maximize=False).tolist() == [0.6, 0.6, 0.6, 0.6]
    # a tie in validation goes to the lower trial number, as the tuner breaks it, whatever the order
    tied = curves.best_so_far(np.array([0.9, 0.9]), np.array([0.5, 0.7]), True, order_numbers=np.array([2, 1]))
    assert tied.tolist() == [0.5, 0.7]


def test_tuning_curves_start_at_the_defaults_and_end_at_the_best_validation_trial():
    frame = _frame({("a", "binary"): {"m/tuned": [0.9], "m/default": [0.7], "z/default": [0.5]}})
    trials = [{"number": 0, "state": "COMPLETE", "value": 0.7, "test_score": 0.7, "is_default": True},
              {"number": 1, "state": "COMPLETE", "value": 0.8, "test_score": 0.9},
              {"number": 2, "state": "PRUNED", "value": None, "test_score": None}]
    records = [{"dataset": "a", "model": "m", "job_id": "a/m/r0f0", "variant": v, "status": "ok",
                "direction": "maximize", "trials": trials} for v in ("default", "tuned")]
    table = curves.tuning_curves(frame, records, n_permutations=50)
    curve = table.set_index("n_trials").norm_score
    # min-max would give the same; quantile: q10 of [0.5, 0.7, 0.9] = 0.54 -> default (0.7-0.54)/0.36
    assert curve[1] == pytest.approx(0.16 / 0.36)
    assert curve[3] == pytest.approx(1.0)  # after all trials: the best validation trial (test 0.9)
    assert 0.16 / 0.36 < curve[2] < 1.0  # half the orders try trial 1 second
    assert list(table.model.unique()) == ["m"] and table.datasets.max() == 1
