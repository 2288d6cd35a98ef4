"""Slow, real sweeps on ../shared/data (run with `make test-all`; CI runs the fast smoke sweep instead).

Sanity against published numbers: tuned XGBoost and CatBoost on adult reach test accuracy >= 0.865
(published ~0.87).
"""

import json

import pytest

from bench.cli import main

from .conftest import shared_data_or_skip

pytestmark = pytest.mark.slow


def test_adult_tuned_gbdts_match_published_accuracy(tmp_path, capsys):
    suite = shared_data_or_skip() / "suites" / "offline-20"
    out_dir = tmp_path / "adult"
    code = main(["run", "--suite", str(suite), "--datasets", "adult", "--models", "xgboost,catboost",
                 "--trials", "8", "--splits", "1", "--jobs", "2", "--out", str(out_dir), "--quiet"])
    assert code == 0, capsys.readouterr().out
    for model in ("xgboost", "catboost"):
        record = json.loads((out_dir / "records" / "adult" / model / "r0f0.tuned.json").read_text())
        assert record["status"] == "ok"
        assert record["test"]["accuracy"] >= 0.865, (model, record["test"])


def test_warty_datasets_run_for_every_builtin_model(tmp_path, capsys):
    """anneal (all-missing nominals, an empty declared class) and ames (many categoricals, missing)."""
    suite = shared_data_or_skip() / "suites" / "offline-20"
    out_dir = tmp_path / "warts"
    code = main(["run", "--suite", str(suite), "--datasets", "anneal,ames,credit-g", "--trials", "2",
                 "--splits", "1", "--jobs", "2", "--tune-seconds", "30", "--out", str(out_dir), "--quiet"])
    assert code == 0, capsys.readouterr().out
    records = [json.loads(p.read_text()) for p in (out_dir / "records").rglob("*.json")]
    assert records and {r["status"] for r in records} == {"ok"}, [
        (r["job_id"], r.get("error")) for r in records if r["status"] != "ok"]
