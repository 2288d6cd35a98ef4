"""The GBDT-vs-neural headline (bench.analysis.families) and budget adequacy (bench.analysis.budget) on
hand-made records with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from bench.analysis import budget, families
from bench.vocabulary import Status, Variant
from tests.hand_records import record, trial, write_run


def _dataset(name: str, xgb_test: float = 0.80, task_type: str = "binary") -> list[dict]:
    """xgboost is GBDT's best on validation but catboost is better on test; linear (a baseline) beats
    everyone and is on neither side."""
    return [
        record(name, "xgboost", Variant.DEFAULT, score=xgb_test, val_score=0.90, task_type=task_type),
        record(name, "catboost", Variant.DEFAULT, score=0.88, val_score=0.85, task_type=task_type),
        record(name, "mlp", Variant.DEFAULT, score=0.84, val_score=0.80, family="neural", task_type=task_type),
        record(name, "linear", Variant.DEFAULT, score=0.95, val_score=0.99, family="baseline", task_type=task_type),
        record(name, "ensemble_all", Variant.ENSEMBLE, score=0.97, val_score=0.99, family="ensemble",
               task_type=task_type, params={"weights": {"linear/0": 1.0}},
               ensemble={"members": [{"name": "linear/0"}]}),
    ]


def _frame(tmp_path, records):
    return write_run(tmp_path / "run", records).frame()


def test_best_of_family_is_chosen_on_validation_not_test(tmp_path):
    frame = _frame(tmp_path, [r for d in ("d1", "d2", "d3") for r in _dataset(d)])
    pairs = families.pairs(frame)
    best = pairs[pairs.scope == "best"]
    assert list(best.gbdt_entry) == ["xgboost/default"] * 3  # catboost/default would win on test
    assert list(best.neural_entry) == ["mlp/default"] * 3
    assert list(best.outcome) == ["neural"] * 3  # chosen on test, catboost (0.88) would beat mlp (0.84)
    signed = np.array([0.80, 0.88, 0.84, 0.95, 0.97])  # every entry sets the dataset's scale
    span = signed.max() - np.quantile(signed, 0.1)
    assert np.allclose(best.gap, (0.84 - 0.80) / span)
    table = families.headline(frame)
    row = table[(table.scope == "best") & (table.tasks == "all")].iloc[0]
    assert (row.datasets, row.neural_wins, row.ties, row.gbdt_wins) == (3, 3, 0, 0)
    assert row.test == "sign" and np.isclose(row.p_value, 0.25)  # 3 of 3: two-sided binomial
    assert families.excluded_entries(frame) == ["ensemble_all/ensemble", "linear/default"]
    assert set(table.scope) == {"best", "default"}  # no tuned or ensemble entries ran


def test_wilcoxon_with_enough_datasets_failures_and_task_types(tmp_path):
    records = [r for i in range(7) for r in _dataset(f"b{i}", xgb_test=0.80 + 0.001 * i)]
    records += [r for r in _dataset("reg", task_type="regression") if r["model"] != "mlp"]
    records.append(record("reg", "mlp", Variant.DEFAULT, status=Status.FAILED, family="neural",
                          task_type="regression"))
    frame = _frame(tmp_path, records)
    pairs = families.pairs(frame)
    reg = pairs[(pairs.scope == "best") & (pairs.dataset == "reg")].iloc[0]
    assert reg.outcome == "gbdt" and reg.gap < 0  # a neural side that failed every split loses
    table = families.headline(frame)
    overall = table[(table.scope == "best") & (table.tasks == "all")].iloc[0]
    assert (overall.neural_wins, overall.gbdt_wins) == (7, 1)
    gaps = pairs[pairs.scope == "best"].gap.to_numpy()
    assert overall.test == "Wilcoxon" and np.isclose(overall.p_value, scipy_stats.wilcoxon(gaps).pvalue)
    assert list(table[table.scope == "best"].tasks) == ["all", "binary", "regression"]
    binary = table[(table.scope == "best") & (table.tasks == "binary")].iloc[0]
    assert (binary.datasets, binary.neural_wins) == (7, 7)


def test_variant_scopes_pick_within_the_variant_and_say_whether_still_improving(tmp_path):
    improving = [trial(i, 0.70 + 0.05 * i, 0.70 + 0.05 * i) for i in range(4)]  # best keeps rising
    flat = [trial(0, 0.90, 0.82), *[trial(i, 0.80, 0.80) for i in range(1, 4)]]  # best is the first trial
    records = []
    for d in ("d1", "d2"):
        records += _dataset(d)
        records += [record(d, "xgboost", Variant.TUNED, score=0.82, trials=flat, trial_number=0),
                    record(d, "mlp", Variant.TUNED, score=0.81, trials=improving, trial_number=3, family="neural")]
    frame = _frame(tmp_path, records)
    pairs = families.pairs(frame)
    tuned = pairs[pairs.scope == "tuned"]
    assert list(tuned.gbdt_entry) == ["xgboost/tuned"] * 2 and list(tuned.outcome) == ["gbdt"] * 2
    row = families.headline(frame).set_index("scope").loc["tuned"]
    assert (row.gbdt_still_improving, row.gbdt_judged) == (0, 2)
    assert (row.neural_still_improving, row.neural_judged) == (2, 2)
    assert "2/2" == families.cell("neural_still_improving", row)


def _judged(value) -> bool | None:
    return None if pd.isna(value) else bool(value)


def _adequacy(tmp_path, sequences: list[list[float]]) -> pd.Series:
    records = [record("d", "xgboost", Variant.TUNED, split=s, score=0.8, trial_number=0,
                      trials=[trial(i, v, 0.8) for i, v in enumerate(values)])
               for s, values in enumerate(sequences)]
    table = budget.dataset_adequacy(_frame(tmp_path, records))
    return table.iloc[0]


def test_adequacy_improving(tmp_path):
    row = _adequacy(tmp_path, [[0.70, 0.72, 0.75, 0.80], [0.71, 0.73, 0.76, 0.81], [0.69, 0.71, 0.74, 0.79]])
    assert _judged(row.improving) is True and np.isclose(row.gain, 0.08)  # last half: 0.72 -> 0.80 on every split


def test_adequacy_flat(tmp_path):
    row = _adequacy(tmp_path, [[0.80, 0.79, 0.78, 0.80], [0.82, 0.70, 0.75, 0.81]])
    assert _judged(row.improving) is False and row.gain == 0.0


def test_adequacy_noisy(tmp_path):
    # a late improvement of 0.002 while the final best differs by ~0.1 across splits: within the noise
    row = _adequacy(tmp_path, [[0.70, 0.69, 0.702, 0.70], [0.80, 0.79, 0.802, 0.80], [0.60, 0.60, 0.602, 0.59]])
    assert np.isclose(row.gain, 0.002) and row.noise > 0.05 and _judged(row.improving) is False


def test_adequacy_minimize_and_defaults_only_not_judged(tmp_path):
    records = [record("d", "xgboost", Variant.TUNED, score=1.0, task_type="regression", trial_number=3,
                      trials=[trial(i, v, 1.0) for i, v in enumerate([2.0, 1.9, 1.5, 1.0])]),
               record("d", "mlp", Variant.TUNED, score=1.0, task_type="regression", trial_number=0, family="neural",
                      trials=[trial(0, 2.0, 1.0)])]
    table = budget.dataset_adequacy(_frame(tmp_path, records)).set_index("entry")
    assert _judged(table.loc["xgboost/tuned"].improving) is True and np.isclose(table.loc["xgboost/tuned"].gain, 0.9)
    assert pd.isna(table.loc["mlp/tuned"].improving)  # one trial: nothing to judge


def test_headline_comes_first_on_the_console_in_its_csv_and_in_the_report(tmp_path):
    import csv
    import html
    import io
    import re

    from rich.console import Console

    from bench.analysis.analyze import analyze
    from bench.analysis.report import write_report
    from bench.cli import commands
    from bench.cli.main import build_parser

    store = write_run(tmp_path / "run", [r for d in ("d1", "d2", "d3") for r in _dataset(d)])
    console = Console(width=120, record=True, file=io.StringIO())
    assert commands.cmd_leaderboard(build_parser().parse_args(["leaderboard", str(store.run_dir)]), console) == 0
    text = console.export_text()
    assert text.index(families.TITLE) < text.index("Leaderboard: ")
    best = next(line for line in text.splitlines() if line.strip().startswith("best"))
    assert best.split()[:6] == ["best", "all", "3", "3", "0", "0"] and "sign" in best
    with open(store.run_dir / "gbdt-vs-neural.csv") as f:
        rows = list(csv.DictReader(f))
    assert (rows[0]["scope"], rows[0]["tasks"], rows[0]["neural_wins"], rows[0]["test"]) == ("best", "all", "3", "sign")
    with open(store.run_dir / "gbdt-vs-neural-per-dataset.csv") as f:
        assert {r["gbdt_entry"] for r in csv.DictReader(f)} == {"xgboost/default"}
    board = (store.run_dir / "leaderboard.md").read_text()
    assert re.findall(r"^## (.*)$", board, re.M)[0] == families.TITLE and "| best | all | 3 | 3 | 0 | 0 |" in board
    write_report(analyze(store, n_boot=20), store.run_dir, store.run_dir)
    page = (store.run_dir / "report.html").read_text()
    assert html.unescape(re.findall(r"<h2>(.*?)</h2>", page)[0]) == families.TITLE
    assert '<table id="gbdt-vs-neural">' in page
    md = (store.run_dir / "report.md").read_text()
    assert re.findall(r"^## (.*)$", md, re.M)[0] == families.TITLE


def test_budget_warnings_have_denominators_and_flag_short_records_without_a_cut(tmp_path):
    full = [trial(i, 0.8, 0.8) for i in range(5)]
    cut = [*[trial(i, 0.8, 0.8) for i in range(4)], trial(4, 0.8, 0.8, end="deadline")]
    short = [trial(i, 0.8, 0.8) for i in range(4)]  # 4 of 5 declared, no trial cut
    budget_field = {"budget": {"trials": 5, "seconds": None}}
    records = [record("d", "xgboost", Variant.TUNED, split=s, score=0.8, trials=ts, **budget_field)
               for s, ts in enumerate((full, cut, short))]
    records += [record("d", "xgboost", Variant.DEFAULT, split=s, score=0.8, trials=ts, **budget_field)
                for s, ts in enumerate((full, cut, short))]
    frame = _frame(tmp_path, records)
    table = budget.entry_budget(frame).set_index("variant")
    assert (table.loc["tuned", "trials_done"], table.loc["tuned", "trials_declared"]) == (14, 15)
    assert table.loc["tuned", "short_uncut"] == 1 and pd.isna(table.loc["default", "trials_done"])
    assert budget.budget_warnings(frame) == [
        "xgboost/tuned: 1 of 14 trials cut by the tuning clock or the time limit; 1 of 3 records ran fewer trials "
        "than declared with no trial cut (14 of 15 trials ran in all)"]
