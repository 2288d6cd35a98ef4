"""`bench reproduce`: published tables as data, the comparison and its verdicts, the command end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.analysis import reproduction
from bench.errors import SuiteFormatError
from bench.published.compare import compare
from bench.published.table import load_table, parse_table
from tests.cli_helpers import run_cli

HEAD = '''name = "tiny"
suite = "tiny-suite.toml"
decimals = 4
std_ddof = 0
cells = [{cells}]
[source]
repository = "someone/paper"
commit = "abc123"
[datasets]
a = {{ metric = "accuracy", file = "results/a.md" }}
b = {{ metric = "accuracy", file = "results/b.md" }}
r = {{ metric = "rmse", file = "results/r.md" }}
[protocols.plain]
split = "the files' split column"
seeds = 5
early_stopping = "none"
[protocols.tuned]
split = "the files' split column"
seeds = 5
trials = 50
max_epochs = 200
early_stopping = "patience 20"
'''


def table_file(tmp_path, cells: list[str]):
    path = tmp_path / "tiny.toml"
    path.write_text(HEAD.format(cells=", ".join("{ " + c + " }" for c in cells)))
    return path


def record(dataset, model, variant, values, metric="accuracy", n_test=400, **extra):
    return {"dataset": dataset, "model": model, "variant": variant, "status": "ok", "n_test": n_test,
            "split": {"index": 0}, "test_by_seed": [{"seed": i, metric: v} for i, v in enumerate(values)], **extra}


def test_verdicts_of_a_made_up_table_with_known_answers(tmp_path):
    table = parse_table(table_file(tmp_path, [
        'dataset = "a", model = "dummy", variant = "default", protocol = "plain", mean = 0.9000, std = 0.0',
        'dataset = "b", model = "dummy", variant = "default", protocol = "plain", mean = 0.9000, std = 0.0',
        'dataset = "r", model = "dummy", variant = "default", protocol = "plain", mean = 2.0000, std = 0.1000',
        'dataset = "a", model = "xgboost", variant = "tuned", protocol = "tuned", mean = 0.9000, std = 0.0030',
        'dataset = "r", model = "xgboost", variant = "tuned", protocol = "tuned", mean = 2.0000, std = 0.0300',
        'dataset = "b", model = "mlp", variant = "tuned", protocol = "tuned", mean = 0.9, std = 0.01',
        'dataset = "a", model = "knn", variant = "default", protocol = "plain", mean = 0.5, std = 0.0',
    ]))
    records = [
        # deterministic, 2 test rows (of 400) below: floor 1/400 -> z = -2.0, agrees; digits differ
        record("a", "dummy", "default", [0.895] * 5),
        # deterministic, 3 rows below: worse
        record("b", "dummy", "default", [0.8925] * 5),
        # rmse 1.5 +- 0 vs 2.0 +- 0.1: 5 sigma lower = better
        record("r", "dummy", "default", [1.5] * 5, metric="rmse"),
        # 0.9040 +- 0.0033 vs 0.9000 +- 0.0030: z = 0.9, agrees; 10 of 50 trials, 3 of 5 seeds
        record("a", "xgboost", "tuned", [0.9, 0.904, 0.908], trial_counts={"completed": 10},
               budget={"trials": 10}),
        # rmse 2.2 vs 2.0, spread 0.05: worse; epoch cap 100 < 200 and a clock-cut trial are named
        record("r", "xgboost", "tuned", [2.2] * 5, metric="rmse", trial_counts={"completed": 50, "deadline": 1},
               budget={"trials": 50}, params={"max_epochs": 100}),
        {"dataset": "b", "model": "mlp", "variant": "tuned", "status": "failed", "split": {"index": 0},
         "error": {"message": "ValueError: boom\nmore"}},
    ]
    rows = {r.cell.key: r for r in compare(table, records)}
    assert {k: r.verdict for k, r in rows.items()} == {
        "a/dummy/default": "agrees", "b/dummy/default": "worse", "r/dummy/default": "better",
        "a/xgboost/tuned": "agrees", "r/xgboost/tuned": "worse", "b/mlp/tuned": "missing", "a/knn/default": "missing"}
    a = rows["a/dummy/default"]
    assert a.sigma == pytest.approx(1 / 400) and a.z == pytest.approx(-2.0) and a.same_digits is False
    assert rows["r/dummy/default"].z == pytest.approx(-5.0)
    x = rows["a/xgboost/tuned"]
    assert x.ours_std == pytest.approx(np.std([0.9, 0.904, 0.908]))  # ddof 0, as the table says
    assert x.z == pytest.approx(0.004 / math.hypot(x.ours_std, 0.003))
    assert x.budget == ["3 of 5 seeds", "10 of 50 trials"]
    assert rows["r/xgboost/tuned"].budget == ["epoch cap 100 < 200", "1 trial(s) cut by a clock"]
    assert rows["b/mlp/tuned"].status == "failed: ValueError: boom"
    assert rows["a/knn/default"].status == "no record (not run)"
    assert compare(table, records, models=["knn"])[0].cell.model == "knn"
    # a run without tuning (--trials 1): our default record stands in for a tuned cell, and the row says so
    [row] = compare(table, [record("b", "mlp", "default", [0.9] * 5, trial_counts={"completed": 1})], ["mlp"])
    assert row.verdict == "agrees" and row.budget == ["our defaults (not tuned; the source tuned 50 trials)"]


def test_exact_agreement_shows_same_digits_and_the_printed_floor(tmp_path):
    table = parse_table(table_file(tmp_path, [
        'dataset = "r", model = "dummy", variant = "default", protocol = "plain", mean = 17.3473, std = 0.0']))
    [row] = compare(table, [record("r", "dummy", "default", [17.347284] * 5, metric="rmse")])
    assert row.verdict == "agrees" and row.same_digits and row.sigma == pytest.approx(0.5e-4)
    [row] = compare(table, [record("r", "dummy", "default", [17.3475] * 5, metric="rmse")])
    assert row.verdict == "worse" and not row.same_digits  # 4 half-units of the last digit off


@pytest.mark.parametrize("cell, field", [
    ('dataset = "a", model = "no_such_model", variant = "default", protocol = "plain", mean = 1, std = 0',
     "cells[0].model"),
    ('dataset = "a", model = "dummy", variant = "tuned", protocol = "plain", mean = 1, std = 0', "cells[0].variant"),
    ('dataset = "zz", model = "dummy", variant = "default", protocol = "plain", mean = 1, std = 0', "cells[0].dataset"),
    ('dataset = "a", model = "dummy", variant = "default", protocol = "plain", mean = nan, std = 0', "cells[0].mean"),
    ('dataset = "a", model = "dummy", variant = "default", protocol = "plain", mean = 1, std = 0, metric = "f1"',
     "cells[0].metric"),
])
def test_malformed_tables_name_the_field(tmp_path, cell, field):
    with pytest.raises(SuiteFormatError) as info:
        parse_table(table_file(tmp_path, [cell]))
    assert info.value.field == field


def test_the_builtin_talent_table_parses_with_every_cell_cited():
    table = load_table("talent")
    assert len(table.cells) == 52 and table.datasets() == ["bank", "mfeat-factors", "cpu_act"]
    assert table.version == "c9d24c8ab44f8fabb1b7213b28a03a107394ce54" and table.std_ddof == 0
    assert {c.metric for c in table.cells if c.dataset == "cpu_act"} == {"rmse"}
    assert all(c.protocol.seeds == 15 for c in table.cells)
    assert all(c.protocol.trials == 100 for c in table.cells if c.variant == "tuned")


def write_tiny_run_inputs(tmp_path):
    """Two binary datasets and a regression one, each with a split column whose test part has known dummy
    answers: a and b predict 'no' (train majority), test 10 of 15 'no' -> accuracy 2/3; r's train mean
    is 0, test targets +-1 -> RMSE 1."""
    rng = np.random.default_rng(0)
    split = np.array(["train"] * 20 + ["val"] * 5 + ["test"] * 15)
    cls = np.array(["no"] * 14 + ["yes"] * 6 + ["no", "yes"] * 2 + ["no"] + ["no"] * 10 + ["yes"] * 5)
    lines = ['name = "tiny-suite"', "[protocol]", 'splits = "predefined"']
    reg = np.r_[np.tile([-1.0, 1.0], 10), np.zeros(5), np.tile([1.0, -1.0], 8)[:15]]
    for name, y in (("a", cls), ("b", cls), ("r", reg)):
        frame = pd.DataFrame({"x": rng.normal(size=40), "y": y, "split": split})
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
        lines += ["[[datasets]]", f'path = "{name}.parquet"', 'target = "y"', f'name = "{name}"',
                  'split_column = "split"', f'task_type = "{"regression" if name == "r" else "binary"}"']
    (tmp_path / "tiny-suite.toml").write_text("\n".join(lines) + "\n")


def test_bench_reproduce_end_to_end_with_known_answers(capsys, tmp_path):
    write_tiny_run_inputs(tmp_path)
    table = table_file(tmp_path, [
        'dataset = "a", model = "dummy", variant = "default", protocol = "plain", mean = 0.6667, std = 0.0',
        'dataset = "b", model = "dummy", variant = "default", protocol = "plain", mean = 0.9333, std = 0.0',
        'dataset = "r", model = "dummy", variant = "default", protocol = "plain", mean = 1.5, std = 0.0',
        'dataset = "a", model = "test_raise", variant = "default", protocol = "plain", mean = 0.6, std = 0.0',
    ])
    out = tmp_path / "run"
    code, text = run_cli(capsys, "reproduce", table, "--models", "dummy,test_raise", "--seeds", "2", "--jobs", "0",
                         "--out", out)
    assert code == 0, text
    frame = pd.read_csv(out / "reproduce.csv")
    assert frame.set_index("dataset").query("model == 'dummy'").verdict.to_dict() == \
        {"a": "agrees", "b": "worse", "r": "better"}
    assert frame.ours_mean.tolist()[:3] == pytest.approx([2 / 3, 2 / 3, 1.0])
    assert frame.verdict.tolist()[3] == "missing" and frame.budget.tolist()[0] == "2 of 5 seeds"
    assert "Reproduction of tiny" in (out / "reproduce.md").read_text() and "verdicts:" in text
    assert reproduction.section(out).rows[1][8] == "worse"
    code, text = run_cli(capsys, "verify", out)  # an ordinary run folder: whole, reproduce.* are no foreign files
    assert code == 0, text
    code, text = run_cli(capsys, "report", out, "--bootstrap", "20")  # the report has the section too
    assert code == 0, text
    assert "## Reproduction of published results" in (out / "report.md").read_text()
    assert 'id="reproduce"' in (out / "report.html").read_text()
    # --strict: a `worse` cell is exit 1; the sweep itself is resumed, nothing runs again
    code, text = run_cli(capsys, "reproduce", table, "--models", "dummy,test_raise", "--seeds", "2", "--jobs", "0",
                         "--out", out, "--strict")
    assert code == 1 and "1 cell(s) worse than published" in text and "0 jobs run" in text
    code, text = run_cli(capsys, "reproduce", table, "--models", "knn", "--out", out)
    assert code == 2 and "has no cells for knn" in text
