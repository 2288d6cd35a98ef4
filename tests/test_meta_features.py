"""Dataset meta-features on small known frames, and the report's "when do neural models win?" section on
hand-made records with known gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import meta_features
from bench.analysis import when_neural_wins
from bench.datasets import make_dataset, save_dataset
from tests.hand_records import record, write_run


def _classification():
    # 8 rows, 4 features (1 categorical), 2 missing cells of 32, classes 6 : 2.
    X = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6, 7, np.nan], "b": [0.0, 0, 0, 0, 0, 0, 1, 1],
                      "c": ["x", "y", "x", None, "x", "y", "x", "y"], "d": np.arange(8.0)})
    y = pd.Series(["no"] * 6 + ["yes"] * 2)
    return make_dataset("small", X, y, categorical=["c"])


def test_meta_features_of_a_known_classification_frame():
    got = meta_features.compute(_classification())
    assert got["n_rows"] == 8 and got["n_features"] == 4 and got["n_classes"] == 2
    assert got["categorical_share"] == pytest.approx(0.25)
    assert got["missing_share"] == pytest.approx(2 / 32)
    assert got["class_imbalance"] == pytest.approx(3.0)
    assert got["target_skew"] is None
    assert got["mi_mean"] is None  # fewer than 10 rows: no neighbour estimate


def test_meta_features_of_a_regression_frame_and_mutual_information():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    noise = rng.normal(size=400)
    y = np.exp(x)  # right-skewed target, fully determined by x
    ds = make_dataset("reg", pd.DataFrame({"x": x, "noise": noise}), pd.Series(y))
    got = meta_features.compute(ds)
    from scipy.stats import skew

    assert got["target_skew"] == pytest.approx(float(skew(y)))
    assert got["target_skew"] > 1 and got["class_imbalance"] is None and got["n_classes"] == 0
    mi = meta_features.mutual_information(ds)
    assert mi[0] > 1.0 and mi[1] < 0.1  # the informative feature, then the noise
    assert got["mi_max"] == pytest.approx(mi.max()) and got["mi_mean"] == pytest.approx(mi.mean())


def test_meta_features_are_written_once_and_recomputed_for_other_data(tmp_path, monkeypatch):
    ds = _classification()
    first = meta_features.write(ds, tmp_path)
    assert meta_features.read(tmp_path, ds.content_hash) == first
    calls = []
    monkeypatch.setattr(meta_features, "compute", lambda d, seed=0: calls.append(d) or {"n_rows": -1})
    assert meta_features.write(ds, tmp_path) == first and not calls  # kept: same data
    assert meta_features.read(tmp_path, "another hash") is None
    other = make_dataset("small", ds.X.assign(d=ds.X.d + 1), pd.Series(["no"] * 6 + ["yes"] * 2), categorical=["c"])
    assert meta_features.write(other, tmp_path) == {"n_rows": -1} and calls  # other data: computed again


def test_a_new_run_folder_on_the_same_data_reads_the_cached_meta_features(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    ds = _classification()
    first = meta_features.write(ds, tmp_path / "run1")
    calls = []
    monkeypatch.setattr(meta_features, "compute", lambda d, seed=0: calls.append(d) or {"n_rows": -1})
    assert meta_features.write(ds, tmp_path / "run2") == first and not calls  # from the cache, not computed
    assert meta_features.read(tmp_path / "run2", ds.content_hash) == first  # and recorded in the new run
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "empty cache"))
    assert meta_features.write(ds, tmp_path / "run3") == {"n_rows": -1} and calls  # no cache: computed


def _run(tmp_path):
    """Three datasets, two splits each: neural clearly ahead on 'wide', GBDT clearly on 'tall', a tie on
    'mixed' (its split differences change sign)."""
    scores = {"wide": ((0.90, 0.91), (0.80, 0.81)), "tall": ((0.70, 0.71), (0.90, 0.92)),
              "mixed": ((0.80, 0.85), (0.85, 0.80))}
    records = []
    for ds, (neural, gbdt) in scores.items():
        for split in (0, 1):
            records += [record(ds, "mlp", "default", split, score=neural[split], family="neural"),
                        record(ds, "xgboost", "default", split, score=gbdt[split], family="gbdt"),
                        record(ds, "dummy", "default", split, score=0.5, family="baseline")]
    store = write_run(tmp_path / "run", records)
    rows = {"wide": 100, "tall": 10000, "mixed": 1000}
    for ds, n in rows.items():
        rng = np.random.default_rng(n)
        frame = pd.DataFrame({"f": rng.normal(size=n)})
        data = make_dataset(ds, frame, pd.Series(rng.integers(0, 2, n).astype(str)))
        save_dataset(data, store.run_dir / "data" / ds)  # a run from before meta_features.json: computed
    return store


def test_gaps_verdicts_and_correlation(tmp_path):
    store = _run(tmp_path)
    found = when_neural_wins.findings(store.frame(), store.run_dir)
    gaps = found.gaps.set_index("dataset")
    assert gaps.loc["wide", "gap"] > 0 > gaps.loc["tall", "gap"]
    assert gaps.verdict.to_dict() == {"mixed": "tie", "tall": "gbdt", "wide": "neural"}
    assert gaps.loc["wide", "difference"] == pytest.approx(0.10)
    assert gaps.loc["wide", "standard_error"] == pytest.approx(0.0)
    corr = found.correlations.set_index("meta_feature")
    assert corr.loc["n_rows", "rho"] == pytest.approx(-1.0)  # the more rows, the smaller the gap
    assert corr.loc["n_rows", "datasets"] == 3
    summary = found.summary()
    assert summary[0] == "neural ahead beyond noise (1): wide" and summary[1] == "GBDT ahead beyond noise (1): tall"


def test_one_split_needs_seeds_for_the_noise(tmp_path):
    records = [record("d", "mlp", "default", score=0.9, family="neural"),
               record("d", "xgboost", "default", score=0.8, family="gbdt")]
    store = write_run(tmp_path / "one", records)
    assert when_neural_wins.side_gaps(store.frame()).verdict.tolist() == ["unknown"]
    seeded = [dict(r, test_score_std=0.01, test_by_seed=[{"seed": s} for s in range(4)]) for r in records]
    store = write_run(tmp_path / "seeded", seeded)
    gaps = when_neural_wins.side_gaps(store.frame())
    assert gaps.verdict.tolist() == ["neural"]
    assert gaps.standard_error.iloc[0] == pytest.approx(np.sqrt(2 * 0.01**2 / 4))


def test_no_section_without_both_sides(tmp_path):
    store = write_run(tmp_path / "gbdt", [record("d", "xgboost", "default", score=0.8, family="gbdt")])
    assert when_neural_wins.findings(store.frame(), store.run_dir) is None


def test_report_has_the_section(tmp_path):
    from bench.analysis.analyze import analyze
    from bench.analysis.report import write_report

    store = _run(tmp_path)
    paths = write_report(analyze(store, n_boot=20), store.run_dir, store.run_dir)
    md = (store.run_dir / "report.md").read_text()
    assert "## When do neural models win?" in md and "GBDT ahead beyond noise (1): tall" in md
    assert any(p.name == "when-neural-wins.png" for p in paths)


def test_planning_a_sweep_records_the_meta_features_once_per_dataset(make_ds, tmp_path):
    from tests.test_runner import _jobs

    ds = make_ds("regression", n=120)
    jobs, store = _jobs(tmp_path, [ds], ["test_prior", "test_raise"])
    assert len(jobs) == 4  # 2 splits x 2 models, one meta-features file
    stored = meta_features.read(store.run_dir / "data" / ds.name, ds.content_hash)
    assert stored == pytest.approx(meta_features.compute(ds), nan_ok=True)
