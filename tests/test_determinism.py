"""Same command + same seed -> identical numbers on CPU, through the real runner (worker processes)."""

import json

from bench.analysis.analyze import analyze, numbers
from bench.cli import main
from bench.records.store import ResultStore
from tests.cli_helpers import without

TIMING_KEYS = {"fit_seconds", "predict_seconds", "seconds", "finished_at", "tuning_seconds", "job_seconds", "host",
               "cpu_seconds", "device_seconds", "selection_seconds",
               "predictions"}  # predictions names its study by a random uid


def _sweep(suite, out, seed):
    argv = ["run", "--suite", str(suite), "--models", "linear,random_forest,xgboost", "--trials", "3",
            "--seeds", "2", "--splits", "1", "--seed", str(seed), "--jobs", "2", "--threads", "1",
            "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return {p.relative_to(out).as_posix(): json.loads(p.read_text()) for p in sorted((out / "records").rglob("*.json"))}


def _without_timings(value):
    return without(value, TIMING_KEYS)


def test_same_command_and_seed_give_identical_numbers(tmp_path, capsys):
    suite = tmp_path / "det.toml"
    suite.write_text('name = "det"\n[protocol]\nfolds = 3\nseed = 0\n[[datasets]]\nembedded = "wine"\n'
                     '[[datasets]]\nembedded = "diabetes"\n')
    first, second = _sweep(suite, tmp_path / "a", 0), _sweep(suite, tmp_path / "b", 0)
    # 2 datasets x 3 models x (default, tuned, ensemble) + one cross-model ensemble per dataset
    assert first.keys() == second.keys() and len(first) == 2 * 3 * 3 + 2
    for path, record in first.items():
        other = second[path]
        assert record["status"] == "ok", record.get("error")
        assert record["params"] == other["params"], path
        assert _without_timings(record["test_by_seed"]) == _without_timings(other["test_by_seed"]), path
        assert record["test_score"] == other["test_score"] and record["val_score"] == other["val_score"], path
        assert _without_timings(record.get("trials")) == _without_timings(other.get("trials")), path
        assert _without_timings(record.get("ensemble")) == _without_timings(other.get("ensemble")), path
    assert numbers(analyze(ResultStore(tmp_path / "a"), n_boot=20)) == \
        numbers(analyze(ResultStore(tmp_path / "b"), n_boot=20))
    # the comparison is not vacuous: the seeds did change the random forest's scores
    assert any(len({s["log_loss" if "wine" in p else "rmse"] for s in r["test_by_seed"]}) == 2
               for p, r in first.items() if "random_forest" in p)
