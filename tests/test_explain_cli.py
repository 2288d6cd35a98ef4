"""`bench explain` end to end on a tiny run: refit of the chosen configuration, files in the run folder,
the report's section; bad input exits 2 naming the option."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    suite = root / "ex.toml"
    suite.write_text('name = "ex"\n[protocol]\nfolds = 2\nseed = 0\n[[datasets]]\nembedded = "breast_cancer"\n')
    out = root / "run"
    assert main(["run", "--suite", str(suite), "--models", "linear,xgboost", "--trials", "2", "--splits", "1",
                 "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    return out


def test_explain_a_gbdt_refits_its_tuned_configuration_and_writes_shap_and_influence(run_dir, capsys):
    assert main(["explain", str(run_dir), "--dataset", "breast_cancer", "--model", "xgboost", "--top", "5"]) == 0
    printed = capsys.readouterr().out
    assert "was refit" in printed and "top features" in printed and "harmful" in printed
    where = run_dir / "explain" / "breast_cancer" / "xgboost"
    summary = json.loads((where / "explain.json").read_text())
    record = json.loads((run_dir / "records" / "breast_cancer" / "xgboost" / "r0f0.tuned.json").read_text())
    assert summary["refit"] is True and summary["variant"] == "tuned" and summary["params"] == record["params"]
    assert summary["refit_test_score"] == pytest.approx(record["test_score"], abs=1e-9)  # the same model again
    assert summary["rows_explained"] == summary["test_rows"] == record["n_test"]
    values = np.load(where / "shap_values.npz")
    assert values["values"].shape == (record["n_test"], record["n_features"], 1)  # binary: one margin
    importance = pd.read_csv(where / "shap_importance.csv")
    assert len(importance) == record["n_features"] and importance["share"].sum() == pytest.approx(1.0)
    influence = pd.read_csv(where / "influence.csv")
    assert set(influence["kind"]) <= {"harmful", "helpful"} and len(influence) <= 10
    assert {"dataset_row", "row", "removal_effect", "label"} <= set(influence.columns)


def test_explain_a_non_tree_model_uses_the_permutation_explainer_and_the_report_shows_both(run_dir, tmp_path):
    pytest.importorskip("shap", reason="the permutation explainer needs the explain extra")
    assert main(["explain", str(run_dir), "--dataset", "breast_cancer", "--model", "xgboost"]) == 0
    assert main(["explain", str(run_dir), "--dataset", "breast_cancer", "--model", "linear", "--rows", "4",
                 "--background", "8"]) == 0
    where = run_dir / "explain" / "breast_cancer" / "linear"
    summary = json.loads((where / "explain.json").read_text())
    assert summary["method"].startswith("PermutationExplainer") and summary["rows_explained"] == 4
    assert not (where / "influence.csv").exists()  # BoostIn is for the GBDTs
    assert main(["report", str(run_dir), "--out", str(tmp_path), "--bootstrap", "20"]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "## Why models win: top features on breast_cancer" in md
    assert "| rank | linear (tuned) | xgboost (tuned) |" in md
    assert "## Influential training rows: xgboost on breast_cancer" in md
    assert 'id="explain-0"' in (tmp_path / "report.html").read_text()


def test_explain_names_what_is_wrong(run_dir, capsys):
    assert main(["explain", str(run_dir), "--dataset", "breast_cancer", "--model", "catboost"]) == 2
    assert "--model 'catboost'" in capsys.readouterr().out
    assert main(["explain", str(run_dir), "--dataset", "breast_cancer", "--model", "xgboost", "--split", "7"]) == 2
    assert "--split 7" in capsys.readouterr().out
