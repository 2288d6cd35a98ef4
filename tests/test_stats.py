"""Statistics on small hand-made result frames with answers worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.analysis import critical_difference, curves, elo, stats
from bench.vocabulary import Status

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


# --- a failure is the worst result on its split (issue 17 item 1) ---------------------------------------------

def _hard_split_run(tmp_path):
    """The issue's case, on hand-made records: model X times out on the hardest split (2) of both datasets,
    model Y finishes everything and beats X on every split both finished. Scores (ROC AUC) per split:
    Y/default .90 .88 .60, Y/tuned .91 .89 .62, X/default .88 .86 timeout, X/tuned .89 .87 timeout.
    Averaging only the finished splits gave X/tuned .88 against Y/tuned's .807: X 'won' everything."""
    from bench.vocabulary import Variant
    from tests.hand_records import record, trial, write_run

    scores = {("Y", Variant.DEFAULT): (0.90, 0.88, 0.60), ("Y", Variant.TUNED): (0.91, 0.89, 0.62),
              ("X", Variant.DEFAULT): (0.88, 0.86, None), ("X", Variant.TUNED): (0.89, 0.87, None)}
    records = []
    for dataset in ("d1", "d2"):
        for split in (0, 1, 2):
            for model in ("X", "Y"):
                default, tuned = scores[(model, Variant.DEFAULT)][split], scores[(model, Variant.TUNED)][split]
                if default is None:
                    records += [record(dataset, model, v, split, status=Status.TIMEOUT)
                                for v in (Variant.DEFAULT, Variant.TUNED)]
                    continue
                trials = [trial(0, default, default), trial(1, default + 0.05, tuned)]
                records += [record(dataset, model, Variant.DEFAULT, split, score=default, trials=trials),
                            record(dataset, model, Variant.TUNED, split, score=tuned, trials=trials, trial_number=1)]
    return write_run(tmp_path / "run", records)


def test_a_model_that_fails_its_hardest_split_scores_worst_there_in_every_view(tmp_path):
    store = _hard_split_run(tmp_path)
    frame = store.frame()
    # the failed split takes the worst score finished there (Y/default's .60): X/tuned (.89 + .87 + .60) / 3
    scores = stats.dataset_scores(frame).set_index(["dataset", "entry"]).score
    assert scores[("d1", "X/tuned")] == pytest.approx((0.89 + 0.87 + 0.60) / 3)
    assert scores[("d1", "Y/tuned")] == pytest.approx((0.91 + 0.89 + 0.62) / 3)
    order = ["Y/tuned", "Y/default", "X/tuned", "X/default"]  # Y's entries beat X's on every split
    summary = stats.entry_summary(frame, n_boot=50).set_index("entry")
    assert list(summary.index) == order
    assert summary.norm_score.is_monotonic_decreasing and summary.norm_minmax.is_monotonic_decreasing
    assert summary.mean_rank.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert summary.wins.tolist() == [2, 0, 0, 0]
    assert summary.loc["X/tuned", "norm_score"] < 1.0 and summary.loc["X/tuned", "failures"] == 2
    ratings = elo.elo_table(frame, n_boot=20).set_index("entry").elo
    assert list(ratings.sort_values(ascending=False).index) == order
    rates = elo.win_rate_matrix(frame)
    assert rates.loc["Y/tuned", "X/tuned"] == 1.0 and rates.loc["Y/default", "X/default"] == 1.0
    cd = critical_difference.critical_difference(frame)
    assert list(cd.mean_ranks.index) == order
    table = curves.tuning_curves(frame, store.load_all(), n_permutations=20)
    for model in ("X", "Y"):  # a curve starts at its default entry's score and ends at its tuned entry's
        curve = table[table.model == model].set_index("n_trials").norm_score
        assert curve[1] == pytest.approx(summary.loc[f"{model}/default", "norm_score"], abs=1e-12)
        assert curve[2] == pytest.approx(summary.loc[f"{model}/tuned", "norm_score"], abs=1e-12)
    x, y = (table[table.model == m].set_index("n_trials").norm_score for m in ("X", "Y"))
    assert (y > x).all()
    for weighting in elo.EloWeighting:  # both weightings agree on the order
        tabled = elo.elo_table(frame, n_boot=5, weighting=weighting).set_index("entry").elo
        assert list(tabled.sort_values(ascending=False).index) == order, weighting
    # the report shows the same: its leaderboard in this order, the failed splits per dataset
    from bench.analysis.analyze import analyze
    from bench.analysis.report import dataset_rows, leaderboard_rows

    a = analyze(store, n_boot=20)
    assert [r[1] for r in leaderboard_rows(a)[1]] == order
    header, rows = dataset_rows(a, lambda path, text: text)
    row = dict(zip(header, next(r for r in rows if r[:2] == ["d1", "X/tuned"])))
    assert row["splits"] == "2" and row["failed splits"] == "1" and row["score"].startswith("0.7867")


def test_curves_charge_a_model_that_failed_a_whole_dataset_the_tables_failure_value(tmp_path):
    """m's tuned job fails on every split of dataset b: the curve there is the table's value for the failure
    (the dataset's lowest normalized score, at most 0), as the tuned entry's, not a missing dataset."""
    from bench.vocabulary import Variant
    from tests.hand_records import record, trial, write_run

    records = []
    for dataset in ("a", "b"):
        for split in (0, 1):
            trials = [trial(0, 0.8, 0.8), trial(1, 0.85, 0.9)]
            if dataset == "a":
                records += [record(dataset, "m", Variant.DEFAULT, split, score=0.8, trials=trials),
                            record(dataset, "m", Variant.TUNED, split, score=0.9, trials=trials, trial_number=1)]
            else:
                records += [record(dataset, "m", v, split, status=Status.TIMEOUT)
                            for v in (Variant.DEFAULT, Variant.TUNED)]
            records += [record(dataset, "z", Variant.DEFAULT, split, score=0.6 + 0.1 * split),
                        record(dataset, "w", Variant.DEFAULT, split, score=0.95)]
    store = write_run(tmp_path / "run", records)
    summary = stats.entry_summary(store.frame(), n_boot=0).set_index("entry").norm_score
    curve = curves.tuning_curves(store.frame(), store.load_all(), n_permutations=10).set_index("n_trials")
    assert curve.datasets.tolist() == [2, 2]
    assert curve.norm_score[1] == pytest.approx(summary["m/default"]) and curve.norm_score[2] == pytest.approx(
        summary["m/tuned"])


# --- what the normalized scores normalize (issue 17 item 7) ---------------------------------------------------

def _metric_run(tmp_path, drop_accuracy=False):
    """Binary: ROC AUC ranks A > B > C, accuracy C > B > A. Regression: RMSE ranks A > B > C, R² A > C > B
    (hand-made numbers: the two metrics need not agree, which is the point)."""
    from bench.vocabulary import Variant
    from tests.hand_records import record, write_run

    binary = {"A": (0.90, 0.70), "B": (0.85, 0.75), "C": (0.80, 0.80)}
    regression = {"A": (1.0, 0.9), "B": (2.0, 0.3), "C": (3.0, 0.5)}
    records = []
    for model, (auc, acc) in binary.items():
        test = {"roc_auc": auc} if drop_accuracy and model == "B" else {"roc_auc": auc, "accuracy": acc}
        records.append(record("bin", model, Variant.DEFAULT, 0, score=auc, test=test))
    for model, (rmse, r2) in regression.items():
        records.append(record("reg", model, Variant.DEFAULT, 0, score=rmse, task_type="regression",
                              test={"rmse": rmse, "r2": r2}))
    return write_run(tmp_path / "run", records)


def test_the_paper_metric_normalizes_accuracy_and_r2_with_the_papers_rules(tmp_path):
    frame = _metric_run(tmp_path).frame()
    objective = stats.per_dataset(frame).set_index(["dataset", "entry"])
    paper = stats.per_dataset(frame, stats.NormalizeMetric.PAPER).set_index(["dataset", "entry"])
    # objective: ROC AUC's 10% quantile of [.8, .85, .9] is .81 -> A 1, C (.8 - .81) / .09
    assert objective.norm_score[("bin", "A/default")] == 1.0
    assert objective.norm_score[("bin", "C/default")] == pytest.approx(-0.01 / 0.09)
    # paper: accuracy's 10% quantile of [.7, .75, .8] is .71 -> C 1, A (.7 - .71) / .09
    assert paper.norm_score[("bin", "C/default")] == 1.0
    assert paper.norm_score[("bin", "A/default")] == pytest.approx(-0.01 / 0.09)
    assert paper.norm_input[("bin", "B/default")] == 0.75
    # R²: median .5 -> 0, best .9 -> 1, B below the median truncated to 0 (the paper's regression rule)
    assert paper.norm_score[("reg", "A/default")] == 1.0 and paper.norm_score[("reg", "B/default")] == 0.0
    assert paper.norm_score[("reg", "C/default")] == 0.0
    assert paper.norm_minmax[("reg", "C/default")] == pytest.approx(1 / 3)
    # only the normalized scores follow the metric: score and ranks stay on the objective
    assert (paper["rank"] == objective["rank"]).all() and (paper.score == objective.score).all()
    table = stats.entry_summary(frame, n_boot=0, metric="paper").set_index("entry")
    assert table.norm_score["C/default"] == pytest.approx(0.5) and table.mean_rank["A/default"] == 1.0


def test_the_normalize_metric_is_typed_validated_and_named_in_every_leaderboard_view(tmp_path, capsys):
    from bench.analysis import leaderboard
    from tests.cli_helpers import run_cli

    store = _metric_run(tmp_path)
    with pytest.raises(ValueError, match="--normalize-metric 'accuracy' is not one of: objective, paper"):
        stats.NormalizeMetric.parse("accuracy")
    code, text = run_cli(capsys, "leaderboard", store.run_dir, "--normalize-metric", "accuracy")
    assert code == 2 and "--normalize-metric 'accuracy' is not one of: objective, paper" in text
    code, text = run_cli(capsys, "leaderboard", store.run_dir, "--normalize-metric", "paper")
    assert code == 0 and "Normalized on paper metric: accuracy (classification) / R² (regression)" in text
    csv = (store.run_dir / "leaderboard.csv").read_text().splitlines()
    assert csv[0].endswith(",normalized_on") and all(line.endswith(",paper") for line in csv[1:])
    md = (store.run_dir / "leaderboard.md").read_text()
    assert "Normalized scores on the paper metric: accuracy" in md and "| paper |" in md
    assert leaderboard.compute(store.frame()).normalized_on.unique().tolist() == ["objective"]
    with pytest.raises(ValueError, match="needs each ok record's test accuracy"):
        stats.entry_summary(_metric_run(tmp_path / "old", drop_accuracy=True).frame(), n_boot=0, metric="paper")


# --- Elo weightings (issue 17 item 8) -------------------------------------------------------------------------

def test_tabarena_weighting_fits_without_a_prior_and_weighs_each_pair_per_dataset():
    # A beats B on 3 of 4 splits of every dataset: odds 3:1. Almost without a prior the fit is exact.
    spec = {(d, "binary"): {"A/default": [0.9, 0.9, 0.9, 0.7], "B/default": [0.8, 0.8, 0.8, 0.8]}
            for d in ("a", "b", "c")}
    table = elo.elo_table(_frame(spec), anchor="B/default", n_boot=5, weighting="tabarena").set_index("entry")
    assert table.loc["A/default", "elo"] - 1000 == pytest.approx(400 * math.log10(3), abs=0.05)
    # a: A > B > C; b: B > A only. Dataset weighting gives a's A-B battle a third of a's weight (three
    # pairs share it), b's the whole: B ahead. TabArena's gives each pair weight 1 per dataset: A = B.
    spec = {("a", "binary"): {"A/default": [0.9], "B/default": [0.8], "C/default": [0.7]},
            ("b", "binary"): {"A/default": [0.7], "B/default": [0.8]}}
    frame = _frame(spec)
    dataset = elo.elo_table(frame, n_boot=5).set_index("entry").elo
    tabarena = elo.elo_table(frame, n_boot=5, weighting=elo.EloWeighting.TABARENA).set_index("entry").elo
    assert dataset["B/default"] - dataset["A/default"] > 20
    assert tabarena["B/default"] == pytest.approx(tabarena["A/default"], abs=0.5)
    _, battles = elo.dataset_battles(_frame({("a", "binary"): {"A/default": [0.9, 0.7], "B/default": [0.8, 0.8]}}),
                                     weighting="tabarena")
    assert battles["a"].tolist() == [[0.0, 0.5], [0.5, 0.0]]  # two splits: each battle weighs 1/2
    with pytest.raises(ValueError, match="--elo-weighting 'chess' is not one of: dataset, tabarena"):
        elo.elo_table(frame, weighting="chess")


def test_elo_anchor_stays_random_forest_is_stated_and_can_be_chosen():
    spec = {("a", "binary"): {"random_forest/default": [0.7], "linear/default": [0.8], "ensemble_all/ensemble": [0.9]},
            ("b", "binary"): {"random_forest/default": [0.8], "linear/default": [0.7], "ensemble_all/ensemble": [0.9]}}
    frame = _frame(spec)
    table = elo.elo_table(frame, n_boot=5)
    assert set(table.anchor) == {"random_forest/default"}  # present: always the anchor, whoever else ran
    assert set(table.anchor_note) == {"Elo anchor: random_forest/default = 1000"}
    assert table.set_index("entry").elo["random_forest/default"] == pytest.approx(1000.0)
    chosen = elo.elo_table(frame, anchor="linear/default", n_boot=5)
    assert set(chosen.anchor_note) == {"Elo anchor: linear/default = 1000 (chosen with --elo-anchor)"}
    with pytest.raises(ValueError, match=r"--elo-anchor 'random_forst/default' is not an entry of this run; "
                                         r"did you mean 'random_forest/default'"):
        elo.elo_table(frame, anchor="random_forst/default")
    # without the random forest: a stated fallback, never the cross-model ensemble
    no_rf = frame[frame.model != "random_forest"]
    assert set(elo.elo_table(no_rf, n_boot=5).anchor) == {"linear/default"}
    neural = _frame({(d, "binary"): {"ensemble_all/ensemble": [0.9], "mlp/default": [v], "mlp/tuned": [0.8]}
                     for d, v in (("a", 0.7), ("b", 0.85))})
    table = elo.elo_table(neural, n_boot=5)
    assert set(table.anchor) == {"mlp/default"}  # sorted first is ensemble_all/ensemble: never that
    assert set(table.anchor_note) == {"Elo anchor: mlp/default = 1000 (random_forest/default is not in this run; "
                                      "--elo-anchor picks another entry)"}
