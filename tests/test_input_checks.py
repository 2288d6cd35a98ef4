"""Validation at the door: unsafe names, tiny datasets, bad --out, broken run.json, failing record
writes, numbers out of range, data warts (issue 10, defects 4, 5, 6 and 9)."""

import errno
import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from bench.cli import build_parser
from tests.cli_helpers import data_file, records, run_cli, suite_file


def _files(root):
    return {p for p in root.rglob("*") if p.is_file()}


def _manifest(folder, datasets, name="local"):
    folder.mkdir(parents=True, exist_ok=True)
    items = [{"name": n, "file": f, "target": "y", "task_type": t} for n, (f, t) in datasets.items()]
    (folder / "manifest.json").write_text(json.dumps({"name": name, "datasets": items}))
    return folder


# --- defect 4: names that would escape the run folder ------------------------------------------------

def test_unsafe_names_are_refused_and_nothing_is_written_outside_run_and_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # a default --out (results/<suite>) would land here
    folder = tmp_path / "in" / "deep" / "suite"
    data_file(folder / "a.parquet", "binary", n=60)
    before = _files(tmp_path)
    for bad in ("../../../x", "a/b", ".hidden"):
        _manifest(folder, {bad: ("a.parquet", "binary")})
        code, text = run_cli(capsys, "run", "--suite", folder, "--models", "dummy", "--trials", 1, "--jobs", 0,
                             "--out", tmp_path / "run", "--quiet")
        assert code == 2 and "not a safe name" in text and "datasets[0].name" in text, text
    _manifest(folder, {"a": ("a.parquet", "binary")}, name="../../x")
    code, text = run_cli(capsys, "run", "--suite", folder, "--models", "dummy", "--jobs", 0, "--quiet")
    assert code == 2 and "suite name" in text and "not a safe name" in text
    suite_file(tmp_path / "in" / "s.toml", {"a": ("deep/suite/a.parquet", "binary")}, name="../../x")
    code, text = run_cli(capsys, "run", "--suite", tmp_path / "in" / "s.toml", "--models", "dummy", "--jobs", 0)
    assert code == 2 and "field 'name'" in text
    new = _files(tmp_path) - before
    assert {p.name for p in new} == {"manifest.json", "s.toml"}, new  # only the inputs this test wrote

    _manifest(folder, {"a": ("a.parquet", "binary")})
    before = _files(tmp_path)
    code, text = run_cli(capsys, "run", "--suite", folder, "--models", "dummy,test_prior", "--trials", 2,
                         "--jobs", 0, "--splits", 1, "--out", tmp_path / "run", "--quiet")
    assert code == 0, text
    outside = [p for p in _files(tmp_path) - before
               if not (p.is_relative_to(tmp_path / "run") or p.is_relative_to(tmp_path / "cache"))]
    assert outside == [] and list((tmp_path / "cwd").iterdir()) == []


# --- defect 5: tracebacks instead of messages --------------------------------------------------------

def test_datasets_too_small_for_the_protocol_are_skipped_records_and_the_suite_goes_on(tmp_path, capsys):
    folder = tmp_path / "suite"  # a folder suite: 5-fold protocol
    data_file(folder / "empty.parquet", frame=pd.DataFrame({"x0": pd.Series([], dtype=float),
                                                            "y": pd.Series([], dtype=float)}))
    data_file(folder / "two.parquet", frame=pd.DataFrame({"x0": [1.0, 2.0], "y": [0.5, 1.5]}))
    # 3 + 2 rows: every 4-row training part with 2 + 2 would need a stratified 1-row validation part
    data_file(folder / "five.parquet", frame=pd.DataFrame({"x0": np.arange(5.0), "y": list("aabab")}))
    data_file(folder / "good.parquet", "binary", n=100)
    _manifest(folder, {"empty": ("empty.parquet", "regression"), "two": ("two.parquet", "regression"),
                       "five": ("five.parquet", "binary"), "good": ("good.parquet", "binary")})
    code, text = run_cli(capsys, "run", "--suite", folder, "--models", "test_prior", "--trials", 1, "--jobs", 0,
                         "--splits", 1, "--out", tmp_path / "run", "--quiet")
    assert code == 0, text
    recs = {r["dataset"]: r for r in records(tmp_path / "run").values()}
    assert recs["good"]["status"] == "ok"
    assert recs["empty"]["status"] == "skipped" and "no rows" in recs["empty"]["reason"]
    assert recs["two"]["status"] == "skipped" and "fewer than protocol.folds = 5" in recs["two"]["reason"]
    assert recs["five"]["status"] == "skipped" and "too small for the protocol" in recs["five"]["reason"]
    assert "skipped five:" in text and "skipped empty:" in text
    assert run_cli(capsys, "verify", tmp_path / "run")[0] == 0


def test_out_that_is_a_file_or_cannot_be_made_is_a_clear_error(tmp_path, capsys):
    data_file(tmp_path / "d.parquet", "binary", n=60)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, message in ((afile, "is a file, not a folder"), (afile / "sub", "cannot create the folder")):
        code, text = run_cli(capsys, "run", "--suite", suite, "--models", "dummy", "--jobs", 0, "--out", out)
        assert code == 2 and message in text, text
    code, text = run_cli(capsys, "report", tmp_path, "--out", afile)
    assert code == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_out_that_is_not_writable_is_a_clear_error(tmp_path, capsys):
    data_file(tmp_path / "d.parquet", "binary", n=60)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", "dummy", "--jobs", 0, "--out", locked)
    assert code == 2 and "not writable" in text


@pytest.mark.parametrize("garbage", ["{not json", "[]", "null"])
def test_garbage_run_json_is_named_not_a_traceback(tmp_path, capsys, garbage):
    data_file(tmp_path / "d.parquet", "binary", n=60)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    out = tmp_path / "run"
    assert run_cli(capsys, "run", "--suite", suite, "--models", "dummy", "--jobs", 0, "--out", out, "--quiet")[0] == 0
    (out / "run.json").write_text(garbage)
    for argv in (["run", "--suite", suite, "--models", "dummy", "--jobs", 0, "--out", out, "--quiet"],
                 ["leaderboard", out], ["report", out], ["verify", out]):
        code, text = run_cli(capsys, *argv)
        assert code == 2 and "run.json" in text, (argv, text)


def test_a_record_write_failing_midway_stops_with_a_message_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    import bench.records.store as store_module

    data_file(tmp_path / "d.parquet", "binary", n=60)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    args = ["run", "--suite", suite, "--models", "dummy", "--jobs", 0, "--out", tmp_path / "run", "--quiet"]
    real, written = store_module.write_json_atomic, []

    def disk_full_on_the_second_record(path, obj, root=None):
        if "records" in path.parts:
            written.append(path)
            if len(written) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real(path, obj, root)

    monkeypatch.setattr(store_module, "write_json_atomic", disk_full_on_the_second_record)
    code, text = run_cli(capsys, *args)
    assert code == 2 and "cannot write the record" in text and "No space left on device" in text, text
    monkeypatch.setattr(store_module, "write_json_atomic", real)
    code, text = run_cli(capsys, *args)
    assert code == 0 and "1 jobs run, 1 already done" in text


# --- defect 6: numbers out of range ------------------------------------------------------------------

BAD_NUMBERS = [("--trials", "0"), ("--trials", "-1"), ("--trials", "abc"), ("--tune-seconds", "0"),
               ("--tune-seconds", "-5"), ("--tune-seconds", "nan"), ("--time-limit", "0"), ("--time-limit", "-1"),
               ("--time-limit", "inf"), ("--memory-limit", "0"), ("--memory-limit", "-2"), ("--splits", "0"),
               ("--seed", "-1"), ("--seed", str(2**31)), ("--seeds", "0"), ("--jobs", "-1"), ("--threads", "-1"),
               ("--jobs-per-gpu", "0")]


@pytest.mark.parametrize("option, value", BAD_NUMBERS)
def test_run_numbers_out_of_range_exit_2_naming_the_option(tmp_path, capsys, option, value):
    # (a suite that does not exist: an unchecked number must not start a real sweep)
    code, text = run_cli(capsys, "run", "--suite", tmp_path / "none.toml", "--out", tmp_path / "run",
                         "--models", "dummy", option, value)
    assert code == 2 and option in text and value in text, text


@pytest.mark.parametrize("option, value", [("--bootstrap", "0"), ("--bootstrap", "-3"), ("--bootstrap", "10000000"),
                                           ("--seed", "-1"), ("--seed", "x")])
def test_report_numbers_out_of_range_exit_2_naming_the_option(tmp_path, capsys, option, value):
    code, text = run_cli(capsys, "report", tmp_path, option, value)
    assert code == 2 and option in text and value in text, text


def test_no_limit_is_spelled_none():
    args = build_parser().parse_args(["run", "--time-limit", "none", "--tune-seconds", "None",
                                      "--memory-limit", "none"])
    assert args.time_limit is None and args.tune_seconds is None and args.memory_limit is None
    assert build_parser().parse_args(["run"]).time_limit == 3600.0


@pytest.mark.parametrize("field, value", [("trials", 0), ("seeds", 0), ("workers", -1), ("threads", -1),
                                          ("jobs_per_gpu", 0), ("seed", -1), ("max_splits", 0),
                                          ("tune_seconds", 0), ("time_limit", -1.0), ("time_limit", math.inf),
                                          ("memory_limit_gb", 0), ("trials", 1.5), ("trials", True)])
def test_sweep_config_range_checks_every_number(field, value):
    from bench.errors import BenchError
    from bench.execution.sweep import SweepConfig

    with pytest.raises(BenchError, match="must be"):
        SweepConfig(suite="demo", models=["dummy"], **{field: value})


# --- defect 9: data warts ----------------------------------------------------------------------------

def test_load_time_checks_count_what_loading_changed():
    from bench.datasets import data_warnings, make_dataset

    X = pd.DataFrame({"a": [1.0, np.inf, 3.0, -np.inf] * 30, "b": np.arange(120.0)})
    y = pd.Series([0.5, np.nan, 1.5, np.inf] * 30)
    ds = make_dataset("warty", X, y, task_type="regression")
    assert not np.isinf(ds.X.to_numpy()).any() and ds.n_rows == 60
    assert ds.checks == {"inf_values": 60, "inf_columns": ["a"], "missing_targets_dropped": 30,
                         "inf_targets_dropped": 30}
    text = " ".join(data_warnings(ds))
    assert "60 infinite feature value(s) set to missing (columns a)" in text
    assert "30 row(s) with a missing target dropped" in text and "only 60 rows" in text
    empty = make_dataset("nofeatures", pd.DataFrame(index=range(5)), pd.Series(list("ababa")), task_type="binary")
    warnings = " ".join(data_warnings(empty))
    assert "no features" in warnings and "only 5 rows" in warnings


def test_run_prints_data_warnings_and_the_report_lists_them(tmp_path, capsys):
    from bench.analysis.report import data_check_rows

    X, _ = pd.DataFrame({"x0": np.arange(150.0), "x1": np.tile([0.0, 1.0, np.inf], 50)}), None
    frame = X.assign(y=np.where(np.arange(150) % 2, "a", "b").astype(object))
    frame.loc[:9, "y"] = None
    data_file(tmp_path / "w.parquet", frame=frame)
    suite = suite_file(tmp_path / "s.toml", {"w": ("w.parquet", "binary")})
    out = tmp_path / "run"
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", "dummy,test_prior", "--trials", 2, "--jobs", 0,
                         "--out", out, "--quiet")
    assert code == 0, text
    assert "data w:" in text and "infinite feature value(s) set to missing" in text
    assert "10 row(s) with a missing target dropped" in text
    plan = json.loads((out / "plan.json").read_text())
    assert plan["datasets"]["w"]["checks"]["missing_targets_dropped"] == 10
    header, rows = data_check_rows(out)
    assert rows and rows[0][0] == "w" and "missing target" in rows[0][1]
    code, text = run_cli(capsys, "report", out, "--bootstrap", 20)
    assert code == 0, text
    assert "## Data checks" in (out / "report.md").read_text()


def test_repeated_rows_and_values_beyond_float32_are_counted_and_warned():
    """Issue 18 item 10 (thresholds: bench.datasets.DUPLICATE_SHARE, DUPLICATE_COPIES, FLOAT32_MAX)."""
    from bench.datasets import DUPLICATE_COPIES, data_warnings, make_dataset

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "c": pd.Categorical(["u", "v"] * 100)})
    y = pd.Series(rng.normal(size=200))
    X.loc[1:DUPLICATE_COPIES - 1, ["a", "b", "c"]] = X.loc[0, ["a", "b", "c"]].to_list()  # row 0, 10 times
    y.loc[1:DUPLICATE_COPIES - 1] = y[0]
    X.loc[20, "a"], X.loc[21, "b"], X.loc[22, "b"] = 1e308, -1e300, 3e38  # the last fits float32
    y[30] = 5e38
    ds = make_dataset("warty", X, y, task_type="regression")
    assert ds.checks == {"huge_values": 2, "huge_columns": ["a", "b"], "huge_targets": 1,
                         "duplicate_rows": DUPLICATE_COPIES - 1, "max_copies": DUPLICATE_COPIES}
    text = " ".join(data_warnings(ds))
    assert "2 finite feature value(s) beyond float32's range" in text and "columns a, b" in text
    assert "1 target value(s) beyond float32's range" in text
    assert "9 row(s) (4.5%) repeat another row exactly" in text and f"one occurs {DUPLICATE_COPIES} times" in text
    # a few repeated rows (under 5% of the rows, none 10 times) are counted but not warned about
    few = make_dataset("few", X.iloc[DUPLICATE_COPIES - 3:], y.iloc[DUPLICATE_COPIES - 3:], task_type="regression")
    assert few.checks["duplicate_rows"] == 2 and "repeat another row" not in " ".join(data_warnings(few))
    # the same values with another target are not copies (label noise, not memory)
    noisy = make_dataset("noisy", X, pd.Series(rng.normal(size=200)), task_type="regression")
    assert "duplicate_rows" not in noisy.checks


def test_run_and_report_show_repeated_rows_and_huge_values(tmp_path, capsys):
    from bench.analysis.report import data_check_rows

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x0": rng.normal(size=150), "x1": rng.normal(size=150),
                          "y": np.where(np.arange(150) % 2, "a", "b").astype(object)})
    frame.iloc[1:30] = frame.iloc[0].to_list()  # one row 30 times
    frame.loc[40, "x1"] = 1e308
    data_file(tmp_path / "w.parquet", frame=frame)
    suite = suite_file(tmp_path / "s.toml", {"w": ("w.parquet", "binary")})
    out = tmp_path / "run"
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", "dummy", "--jobs", 0, "--out", out, "--quiet")
    assert code == 0, text
    assert "data w:" in text and "29 row(s) (19.3%) repeat another row exactly" in text
    assert "1 finite feature value(s) beyond float32's range" in text
    checks = json.loads((out / "plan.json").read_text())["datasets"]["w"]["checks"]
    assert checks["duplicate_rows"] == 29 and checks["max_copies"] == 30 and checks["huge_values"] == 1
    rows = data_check_rows(out)[1]
    assert "repeat another row" in rows[0][1] and "float32" in rows[0][1]


def test_records_are_strict_json(tmp_path):
    from bench.json_files import write_json_atomic

    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": float("nan"), "b": [np.float32("inf"), 1.5], "c": {"d": -math.inf}})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text

    def refuse(token):
        raise ValueError(token)

    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": [None, 1.5], "c": {"d": None}}


def test_a_run_that_fails_before_starting_leaves_nothing_that_blocks_the_next(tmp_path, capsys):
    data_file(tmp_path / "d.parquet", "binary", n=60)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    out = tmp_path / "run"
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", "dummy", "--datasets", "typo", "--trials", 5,
                         "--jobs", 0, "--out", out)
    assert code == 2 and "typo" in text
    assert not (out / "run.json").exists() and not (out / "plan.json").exists()
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", "dummy", "--trials", 1, "--jobs", 0,
                         "--out", out, "--quiet")
    assert code == 0, text
