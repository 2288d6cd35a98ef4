"""The command line as a user meets it: bad input exits 2 with a useful message; a real smoke sweep."""

import json

import pytest

from bench.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, " ".join(out.split())  # rich wraps long lines


def test_unknown_model_lists_valid_names(capsys):
    code, out = _run(capsys, "run", "--models", "xgboost,nosuchmodel")
    assert code == 2 and "nosuchmodel" in out and "catboost" in out and "lightgbm" in out


def test_unknown_suite_lists_valid_names(capsys):
    code, out = _run(capsys, "run", "--suite", "nosuchsuite", "--models", "dummy")
    assert code == 2 and "nosuchsuite" in out and "demo" in out


def test_malformed_suite_names_file_and_field(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[protocol]\nfolds = "three"\n[[datasets]]\nembedded = "wine"\n')
    code, out = _run(capsys, "suites", "show", str(bad))
    assert code == 2 and "bad.toml" in out and "folds" in out


def test_models_list_shows_every_builtin(capsys):
    code, out = _run(capsys, "models", "list")
    assert code == 0
    for name in ("dummy", "linear", "random_forest", "xgboost", "lightgbm", "catboost", "mlp"):
        assert name in out


def test_leaderboard_of_a_missing_run_is_a_clear_error(capsys, tmp_path):
    code, out = _run(capsys, "leaderboard", str(tmp_path / "nothing"))
    assert code == 2 and "no records" in out


def test_smoke_sweep_end_to_end_and_resume(capsys, tmp_path):
    """A small real sweep: embedded data, 3 task types, GBDT + NN + baselines, worker processes."""
    suite = tmp_path / "smoke.toml"
    suite.write_text(
        'name = "smoke"\ndescription = "CI smoke"\n[protocol]\nfolds = 2\nseed = 0\n'
        '[[datasets]]\nembedded = "penguins"\n[[datasets]]\nembedded = "breast_cancer"\n'
        '[[datasets]]\nembedded = "cpu"\n')
    out_dir = tmp_path / "run"
    args = ["run", "--suite", str(suite), "--models", "dummy,linear,xgboost,lightgbm,catboost,mlp",
            "--trials", "2", "--splits", "1", "--jobs", "2", "--out", str(out_dir), "--quiet"]
    code, out = _run(capsys, *args)
    assert code == 0, out
    records = [json.loads(p.read_text()) for p in (out_dir / "records").rglob("*.json")]
    # per dataset: dummy (no search space) default only; the others default, tuned and ensemble; and
    # the cross-model ensemble
    assert len(records) == 3 * (1 + 5 * 3 + 1)
    assert {r["status"] for r in records} == {"ok"}, [r.get("error") for r in records if r["status"] != "ok"]
    board = (out_dir / "leaderboard.csv").read_text()
    for model in ("xgboost", "catboost", "mlp", "dummy"):
        assert model in board
    assert (out_dir / "leaderboard.md").exists() and (out_dir / "records.parquet").exists()
    assert (out_dir / "leaderboard-regression.csv").exists()
    # the same command again: nothing recomputed
    code, out = _run(capsys, *args)
    assert code == 0 and "0 jobs run, 18 already done" in out
    # the dummy baseline must be beaten by the tuned GBDTs on every dataset
    by = {(r["dataset"], r["model"], r["variant"]): r for r in records}
    for ds in ("penguins", "breast_cancer", "cpu"):
        dummy = by[(ds, "dummy", "default")]
        better = (lambda a, b: a > b) if dummy["direction"] == "maximize" else (lambda a, b: a < b)
        assert better(by[(ds, "xgboost", "tuned")]["test_score"], dummy["test_score"])


def test_changing_the_budget_into_the_same_directory_is_refused(capsys, tmp_path):
    from bench.records.store import ResultStore

    store = ResultStore(tmp_path / "run")
    store.write_config(store.check_config({"suite": "demo", "trials": 2, "seed": 0, "models": ["dummy"]})[0])
    with pytest.raises(Exception, match="trials: 2 -> 5"):
        store.check_config({"suite": "demo", "trials": 5, "seed": 0, "models": ["dummy"]})


# --- issue 18, item 4: repeated and empty names in --models / --datasets -------------------------------

def test_a_repeated_model_or_dataset_runs_once(capsys, tmp_path):
    from tests.cli_helpers import data_file, records, run_cli, suite_file

    data_file(tmp_path / "d.parquet", "binary", n=80)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    code, out = run_cli(capsys, "run", "--suite", suite, "--models", "test_prior, test_prior,test_prior",
                        "--datasets", "d,d", "--trials", 3, "--jobs", 2, "--out", tmp_path / "run", "--quiet")
    assert code == 0 and "1 dataset, 2 jobs (1 model," in out, out  # 2 splits, not 6 jobs
    recs = records(tmp_path / "run")
    assert len(recs) == 2 * 3 and {r["status"] for r in recs.values()} == {"ok"}  # no IntegrityError failure


@pytest.mark.parametrize("option, value", [("--datasets", ","), ("--datasets", ""), ("--datasets", "d,,d"),
                                           ("--models", ","), ("--models", ""), ("--models", "dummy,")])
def test_an_empty_name_is_an_error_naming_the_option(capsys, tmp_path, option, value):
    from tests.cli_helpers import data_file, run_cli, suite_file

    data_file(tmp_path / "d.parquet", "binary", n=80)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    other = ("--models", "dummy") if option == "--datasets" else ("--datasets", "d")  # (main ran them all)
    code, out = run_cli(capsys, "run", "--suite", suite, option, value, *other, "--trials", 1, "--jobs", 0,
                        "--out", tmp_path / "run", "--quiet")
    assert code == 2 and option in out and "empty name" in out, out
    assert not (tmp_path / "run" / "records").exists()


def test_the_default_sweep_is_a_trial_budget_without_a_clock_the_same_in_make_and_bench_run():
    """`bench run` and `make bench` run the same default sweep: a trial budget and no tuning clock (its
    numbers do not depend on the machine), the regression sweep pinned apart from it."""
    import re as _re
    from pathlib import Path

    from bench.cli.main import DEFAULT_MODELS, build_parser
    from bench.workflows.regress import SMOKE_SWEEP

    args = build_parser().parse_args(["run"])
    assert (args.suite, args.models, args.trials, args.tune_seconds) == ("demo", DEFAULT_MODELS, 4, None)
    make = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    value = {k: _re.search(rf"^{k}\s*\?=[ \t]*(.*)$", make, _re.M).group(1).strip()
             for k in ("SUITE", "MODELS", "TRIALS", "TUNE_SECONDS")}
    assert value == {"SUITE": "demo", "MODELS": DEFAULT_MODELS, "TRIALS": "4", "TUNE_SECONDS": ""}
    assert "mlp" in DEFAULT_MODELS and "xgboost" in DEFAULT_MODELS  # both sides of the question
    assert (SMOKE_SWEEP["trials"], SMOKE_SWEEP["tune_seconds"], SMOKE_SWEEP["inner_folds"]) == (3, None, 1)
