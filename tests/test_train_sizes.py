"""Learning curves (`--train-sizes`, bench.train_sizes): nested stratified subsets of a split's learning
data, option checks, and a tiny real sweep: records, leaderboards and the curve per size, skipped sizes,
per-size cross-model ensembles, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from bench.splits import Split, split_hash
from bench.train_sizes import TrainSize, parse_train_sizes, subsample, too_small
from tests.cli_helpers import records, run_cli

FRACTIONS = [0.1, 0.25, 0.5, 1.0]


def _split(repeat: int = 0, fold: int = 0, n: int = 200, seed: int = 0) -> tuple[Split, np.ndarray]:
    """A split of n rows with an imbalanced 3-class target (50% / 33% / 17%): 60% train, 20% val, 20% test."""
    y = np.repeat([0, 1, 2], [n // 2, n // 3, n - n // 2 - n // 3])
    rows = np.random.default_rng(seed).permutation(n)
    train, val, test = (np.sort(p) for p in np.split(rows, [int(0.6 * n), int(0.8 * n)]))
    return Split(repeat, fold, train, val, test, split_hash(train, val, test), "kfold"), y


def _cut(split, y, size, classification=True, seed=0):
    return subsample(split, y, classification, TrainSize.parse(size), seed)


def test_subsets_are_nested_with_the_same_test_part_and_keep_the_class_balance():
    split, y = _split()
    cuts = [_cut(split, y, f) for f in FRACTIONS]
    for small, large in zip(cuts, cuts[1:]):
        assert set(small.train) < set(large.train) and set(small.val) < set(large.val)
    for f, cut in zip(FRACTIONS, cuts):
        assert np.array_equal(cut.test, split.test)
        assert len(cut.train) == round(f * len(split.train)) and len(cut.val) == round(f * len(split.val))
        for part, full in ((cut.train, split.train), (cut.val, split.val)):
            for c in range(3):  # within one row of the class's share, every class present
                share = f * (y[full] == c).sum()
                assert abs((y[part] == c).sum() - share) <= 1, (f, c)
                assert (y[part] == c).sum() >= 1
    assert np.array_equal(cuts[-1].train, split.train) and cuts[-1].hash == split.hash


def test_row_counts_are_shared_in_proportion_and_nested():
    split, y = _split()
    counts = [_cut(split, y, n) for n in (20, 40, 100)]
    for n, cut in zip((20, 40, 100), counts):
        assert len(cut.train) + len(cut.val) == n
        assert abs(len(cut.train) / n - 0.75) <= 1 / n  # train : val = 120 : 40 in the split
    for small, large in zip(counts, counts[1:]):
        assert set(small.train) < set(large.train) and set(small.val) < set(large.val)


def test_regression_subsets_are_nested_too():
    split, _ = _split()
    y = np.random.default_rng(1).normal(size=200)
    cuts = [_cut(split, y, f, classification=False) for f in FRACTIONS]
    for small, large in zip(cuts, cuts[1:]):
        assert set(small.train) < set(large.train) and set(small.val) < set(large.val)


def test_the_subset_is_deterministic_for_a_seed_and_differs_between_splits_and_seeds():
    split, y = _split()
    again = _cut(split, y, 0.25)
    assert np.array_equal(again.train, _cut(split, y, 0.25).train) and again.hash == _cut(split, y, 0.25).hash
    other_split = Split(0, 1, split.train, split.val, split.test, split.hash, "kfold")  # same rows, fold 1
    assert not np.array_equal(_cut(other_split, y, 0.25).train, again.train)
    assert not np.array_equal(_cut(split, y, 0.25, seed=1).train, again.train)


def test_sizes_too_small_for_the_protocol_have_a_reason():
    split, y = _split()
    assert too_small(split, _cut(split, y, 0.5), y, True, TrainSize.parse(0.5)) is None
    reason = too_small(split, _cut(split, y, 0.05), y, True, TrainSize.parse(0.05))
    assert reason and "train size 0.05 on split r0f0: 6 rows each model is fit on, fewer than 10" in reason
    reason = too_small(split, _cut(split, y, 500), y, True, TrainSize.parse(500))
    assert reason and "asks for 500 rows, the split has 160" in reason
    reason = too_small(split, _cut(split, y, 0.1), y, True, TrainSize.parse(0.1), inner_folds=10)
    assert reason and "inner_folds = 10" in reason
    reason = too_small(split, _cut(split, y, 0.08), y, True, TrainSize.parse(0.08), inner_folds=3)
    assert reason and "9 rows each model is fit on (inner 3-fold), fewer than 10" in reason  # 2/3 of 10 + 3 rows
    rare = np.where(np.arange(200) < 4, 2, np.arange(200) % 2)  # class 2: rows 0-3, all in the training part
    rare_split = Split(0, 0, np.r_[np.arange(0, 4), np.arange(8, 160)], np.r_[np.arange(4, 8), np.arange(160, 180)],
                       np.arange(180, 200), "h", "kfold")
    reason = too_small(rare_split, _cut(rare_split, rare, 0.2), rare, True, TrainSize.parse(0.2))
    assert reason and "training rows of class 2, fewer than 2 per class" in reason


@pytest.mark.parametrize("given, message", [
    ("0.5,abc", "'abc' is neither a fraction in (0, 1] nor a whole number of rows > 1"),
    ("1.5", "'1.5' is neither"), ("0", "'0' is neither"), ("-0.5", "'-0.5' is neither"), ("nan", "'nan'"),
    ("0.5,0.5", "0.5 given more than once"), ("0.5,100", "mixes fractions and row counts"),
    ("0.5,", "an empty size"),
])
def test_bad_sizes_are_refused_naming_the_option_and_value(given, message, capsys):
    with pytest.raises(BenchError, match="--train-sizes") as exc:
        parse_train_sizes(given)
    assert message in str(exc.value)
    from bench.execution.sweep import SweepConfig

    with pytest.raises(BenchError, match="--train-sizes"):
        SweepConfig(suite="demo", models=["dummy"], train_sizes=given)
    code, text = run_cli(capsys, "run", "--suite", "demo", "--models", "dummy", "--train-sizes", given)
    assert code == 2 and "--train-sizes" in text and message in text, text


def test_sizes_parse_to_fractions_or_row_counts_smallest_first():
    assert [s.label for s in parse_train_sizes("1.0,0.10,0.5")] == ["0.1", "0.5", "1"]
    assert [(s.label, s.rows) for s in parse_train_sizes([1000, 100])] == [("100", True), ("1000", True)]
    assert TrainSize.parse("1").full and TrainSize.parse(1.0).full and not TrainSize.parse("2").full
    assert TrainSize.parse("0.25").suffix == "-size0.25" and TrainSize.parse("500").suffix == "-rows500"


def _sweep(capsys, out, *extra):
    return run_cli(capsys, "run", "--suite", "demo", "--datasets", "wine,cpu", "--models", "linear,dummy",
                   "--trials", 1, "--splits", 1, "--jobs", 0, "--out", out, "--quiet", *extra)


def test_a_sweep_with_sizes_gives_records_leaderboards_and_a_curve_per_size_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    code, text = _sweep(capsys, out, "--train-sizes", "0.05,0.5,1.0")
    assert code == 0, text
    recs = list(records(out).values())
    by = {(r["dataset"], r["model"], r["variant"], r.get("train_size")): r for r in recs}
    assert {r.get("train_size") for r in recs} == {"0.05", "0.5", "1"}
    for dataset in ("wine", "cpu"):
        full, half = by[(dataset, "linear", "default", "1")], by[(dataset, "linear", "default", "0.5")]
        assert full["status"] == half["status"] == "ok" and half["inner_folds"] == 3  # demo: inner 3-fold CV
        # inner folds are cut from the subsampled training + validation rows (n_val: all of them, out of fold)
        assert abs(half["n_val"] - full["n_val"] / 2) <= 1 and half["n_train"] == round(half["n_val"] * 2 / 3)
        assert half["n_test"] == full["n_test"]
        assert half["job_id"] == f"{dataset}/linear/r0f0-size0.5" and half["job_key"] != full["job_key"]
        tiny = by[(dataset, "linear", "default", "0.05")]
        assert tiny["status"] == "skipped" and "train size 0.05 on split r0f0" in tiny["reason"], tiny
        for size in ("0.5", "1"):  # the cross-model ensemble of each size, from that size's members only
            ens = by[(dataset, "ensemble_all", "ensemble", size)]
            assert ens["status"] == "ok" and ens["n_train"] == by[(dataset, "linear", "default", size)]["n_train"]
            assert ens["job_id"].endswith(f"-size{size}")
    assert "skipped wine at train size 0.05: train size 0.05 on split r0f0" in text
    assert "train sizes in this run: 0.05, 0.5, 1; the tables below are for train size 1" in text
    # one size per leaderboard: one split of 2 datasets each (mixing sizes would count 4 splits)
    for name in ("leaderboard.csv", "leaderboard-size-1.csv", "leaderboard-size-0.5.csv"):
        table = pd.read_csv(out / name).set_index(["model", "variant"])
        assert table.loc[("linear", "default"), "splits"] == 2, name
    assert not (out / "leaderboard-size-0.05.csv").exists()  # nothing finished at that size
    curve = pd.read_csv(out / "learning-curve.csv", dtype={"train_size": str})
    assert sorted(curve.train_size.unique()) == ["0.5", "1"]
    assert set(curve[curve["level"] == "family"]["name"]) >= {"baseline", "ensemble"}
    entry = curve[(curve["level"] == "entry") & (curve["name"] == "linear/default")].set_index("train_size")
    assert entry.loc["1", "norm_score"] == pytest.approx(
        pd.read_csv(out / "leaderboard.csv").set_index(["model", "variant"]).loc[("linear", "default"), "norm_score"],
        abs=1e-5)
    assert entry.loc["0.5", "median_n_train"] < entry.loc["1", "median_n_train"]
    assert run_cli(capsys, "verify", out)[0] == 0

    before = {p: p.read_text() for p in (out / "records").rglob("*.json")}
    code, text = _sweep(capsys, out, "--train-sizes", "0.05,0.5,1.0")
    assert code == 0 and "0 jobs run, 12 already done" in text and "no new records" in text, text
    assert {p: p.read_text() for p in (out / "records").rglob("*.json")} == before

    code, text = run_cli(capsys, "leaderboard", out, "--train-size", "0.50")
    assert code == 0 and "Leaderboard: demo (train size 0.5)" in text, text
    code, text = run_cli(capsys, "leaderboard", out, "--train-size", "0.3")
    assert code == 2 and "--train-size 0.3: the run has no records of that size; its sizes: 0.05, 0.5, 1" in text
    code, text = run_cli(capsys, "report", out, "--bootstrap", 10)
    assert code == 0, text
    html = (out / "report.html").read_text()
    assert "Who wins as data grows" in html and "train size 1" in html
    assert (out / "report-plots" / "learning-curve.png").exists()


def test_the_curve_plot_is_log_scale_per_family():
    from bench.analysis.learning_curves import COLUMNS, figure

    rows = [{"train_size": s, "size": float(s), "kind": "fraction", "level": "family", "name": f, "family": f,
             "norm_score": v, "datasets": 2, "median_n_train": 10, "normalized_on": "objective"}
            for s, f, v in (("0.1", "gbdt", 0.4), ("1", "gbdt", 0.9), ("0.1", "neural", 0.6), ("1", "neural", 0.7))]
    fig = figure(pd.DataFrame(rows, columns=COLUMNS))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and [line.get_label() for line in ax.get_lines()] == ["gbdt", "neural"]
    assert figure(pd.DataFrame(rows[:1] + rows[2:3], columns=COLUMNS)) is None  # one size: no curve


def test_without_sizes_job_ids_and_keys_are_what_they_were_and_a_size_changes_both():
    import hashlib
    import json
    from dataclasses import replace

    from bench.execution.jobs import Job
    from bench.tuning.budget import Budget

    job = Job(run_dir="r", suite="s", dataset="d", dataset_dir="x", dataset_hash="dh", split_file="f", split_index=0,
              repeat=0, fold=1, split_hash="sh", model="m", budget=Budget(3), seed=7)
    # the key's formula before --train-sizes existed: inputs and keyed settings only
    text = json.dumps({"dataset_hash": "dh", "split_hash": "sh", "model": "m", "trials": 3, "tune_seconds": None,
                       "seed": 7, "seeds": 1}, sort_keys=True, default=str)
    assert job.job_id == "d/m/r0f1" and job.key == hashlib.sha256(text.encode()).hexdigest()[:10]
    assert "train_size" not in job.header().fields("default")
    sized = replace(job, train_size=TrainSize.parse("0.5"))
    assert sized.job_id == "d/m/r0f1-size0.5" and sized.key != job.key
    assert sized.study_name.startswith("d__m__r0f1-size0.5__") and sized.predictions_path.name == "r0f1-size0.5.npz"
    assert sized.header().fields("default")["train_size"] == "0.5"
