"""Predefined splits: a split column (train/val/test or fold ids) or a TALENT folder, used row for row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError, SuiteFormatError
from bench.execution.sweep import SweepConfig, run_sweep
from bench.splits import load_frozen
from bench.suites import load_suite, materialize
from bench.suites.spec import parse_suite_file
from tests.cli_helpers import records, run_cli
from tests.conftest import synthetic_frame


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))


def split_frame(n: int = 60, seed: int = 0, parts=None) -> pd.DataFrame:
    """Binary data with a split column: rows interleaved train, val, test, train, ... (not what any seeded
    carving would give), unless `parts` is given."""
    X, y = synthetic_frame("binary", n, seed)
    frame = X.assign(y=y.astype(str))
    frame["split"] = parts if parts is not None else np.array(["train", "train", "val", "test"])[np.arange(n) % 4]
    return frame


def write_suite(tmp_path, frame: pd.DataFrame, protocol: str = 'splits = "predefined"', suffix: str = ".parquet"):
    data = tmp_path / f"d{suffix}"
    if suffix == ".csv":
        frame.to_csv(data, index=False)
    else:
        frame.to_parquet(data, index=False)
    suite = tmp_path / "s.toml"
    suite.write_text(f'name = "s"\n[protocol]\n{protocol}\n[[datasets]]\npath = "{data.name}"\ntarget = "y"\n'
                     f'name = "d"\nsplit_column = "split"\n')
    return suite, data


def sweep(suite, out, models=("dummy",)):
    return run_sweep(SweepConfig(suite=str(suite), models=list(models), out=out, workers=0))


def test_predefined_parts_are_used_row_for_row(tmp_path):
    frame = split_frame()
    suite, _ = write_suite(tmp_path, frame)
    result = sweep(suite, tmp_path / "run")
    [job] = result.plan.jobs
    [split] = load_frozen(tmp_path / "run" / job.split_file)
    for part, rows in (("train", split.train), ("val", split.val), ("test", split.test)):
        assert rows.tolist() == np.flatnonzero(frame.split.to_numpy() == part).tolist()  # no re-carving
    assert split.origin == "predefined"
    [record] = records(tmp_path / "run").values()
    assert record["split"]["origin"] == "predefined" and record["split"]["hash"] == split.hash
    assert (record["n_train"], record["n_val"], record["n_test"]) == (30, 15, 15)
    assert record["source"]["split_column"] == "split" and "split" not in json.dumps(record.get("params"))


def test_the_split_column_is_no_feature_and_csv_works(tmp_path):
    suite, _ = write_suite(tmp_path, split_frame(), suffix=".csv")
    [item], _ = materialize(load_suite(str(suite)))
    assert "split" not in item.dataset.X.columns and item.predefined.counts() == {"train": 30, "val": 15, "test": 15}


def test_rows_without_a_target_leave_the_split_with_their_row(tmp_path):
    frame = split_frame()
    frame.loc[[0, 3], "y"] = None  # a train row and a test row lose their label
    suite, _ = write_suite(tmp_path, frame)
    [item], _ = materialize(load_suite(str(suite)))
    kept = frame.split.to_numpy()[frame.y.notna().to_numpy()]
    assert item.dataset.n_rows == 58 and item.predefined.rows(2).tolist() == np.flatnonzero(kept == "test").tolist()


def test_changing_the_split_column_changes_the_split_hash_and_reruns(tmp_path):
    frame = split_frame()
    suite, data = write_suite(tmp_path, frame)
    first = sweep(suite, tmp_path / "run")
    assert first.summary.skipped_done == 0
    again = sweep(suite, tmp_path / "run")
    assert again.summary.skipped_done == 1  # unchanged: done
    moved = frame.copy()
    moved.loc[0, "split"] = "test"  # one row moves from train to test; features and target unchanged
    moved.to_parquet(data, index=False)
    changed = sweep(suite, tmp_path / "run")
    [old_job], [new_job] = first.plan.jobs, changed.plan.jobs
    assert new_job.dataset_hash == old_job.dataset_hash and new_job.split_hash != old_job.split_hash
    assert changed.summary.skipped_done == 0  # the job ran again
    [record] = records(tmp_path / "run").values()
    assert record["split"]["hash"] == new_job.split_hash and record["n_test"] == 16


def test_fold_ids_give_one_split_per_fold_with_validation_from_the_other_folds(tmp_path):
    frame = split_frame(parts=np.arange(60) % 3)
    suite, _ = write_suite(tmp_path, frame)
    result = sweep(suite, tmp_path / "run")
    splits = load_frozen(tmp_path / "run" / result.plan.jobs[0].split_file)
    assert [(s.repeat, s.fold) for s in splits] == [(0, 0), (0, 1), (0, 2)]
    for s in splits:
        assert s.test.tolist() == np.flatnonzero(np.arange(60) % 3 == s.fold).tolist()
        assert sorted(s.train.tolist() + s.val.tolist()) == np.flatnonzero(np.arange(60) % 3 != s.fold).tolist()
        assert len(s.val) == 8  # protocol.validation_fraction 0.2 of the 40 other rows


@pytest.mark.parametrize("change, problem", [
    (lambda f: f.assign(split=f.split.where(f.index != 7)), "1 missing value(s) (rows 7"),
    (lambda f: f.assign(split=f.split.replace("val", "validation")), "unknown part name(s) 'validation'"),
    (lambda f: f.assign(split=f.split.replace("val", "train")), "no 'val' rows"),
    (lambda f: f.assign(split=np.where(np.arange(len(f)) % 2, 0, 2)), "fold(s) 1 have no rows"),
])
def test_a_malformed_split_column_is_exit_2_naming_file_and_problem(capsys, tmp_path, change, problem):
    suite, data = write_suite(tmp_path, change(split_frame()))
    code, out = run_cli(capsys, "run", "--suite", suite, "--models", "dummy", "--out", tmp_path / "run",
                        "--jobs", "0")
    assert code == 2
    assert f"split column 'split' in {data}" in out and problem in out


def test_protocol_and_split_columns_must_agree(capsys, tmp_path):
    suite, _ = write_suite(tmp_path, split_frame(), protocol="folds = 2")
    code, out = run_cli(capsys, "run", "--suite", suite, "--models", "dummy", "--out", tmp_path / "run", "--jobs", "0")
    assert code == 2 and 'brings its own split' in out and 'splits = "predefined"' in out
    data = tmp_path / "plain.parquet"
    split_frame().drop(columns="split").to_parquet(data, index=False)
    plain = tmp_path / "p.toml"
    plain.write_text(f'[protocol]\nsplits = "predefined"\n[[datasets]]\npath = "{data.name}"\ntarget = "y"\n')
    with pytest.raises(BenchError, match="brings no split"):
        materialize(load_suite(str(plain)))


@pytest.mark.parametrize("protocol, field", [
    ('splits = "fixed"', "protocol.splits"),
    ('splits = "predefined"\nfolds = 3', "protocol.folds"),
])
def test_split_protocol_is_validated(tmp_path, protocol, field):
    suite, _ = write_suite(tmp_path, split_frame(), protocol=protocol)
    with pytest.raises(SuiteFormatError) as info:
        parse_suite_file(suite)
    assert info.value.field == field


def talent_folder(root, n=(12, 4, 5), with_cat=True):
    """A tiny dataset in TALENT's format (N_/C_/y_{train,val,test}.npy + info.json)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for part, rows in zip(("train", "val", "test"), n):
        np.save(root / f"N_{part}.npy", rng.normal(size=(rows, 2)))
        if with_cat:
            np.save(root / f"C_{part}.npy", rng.choice(["a", "b"], size=(rows, 1)).astype(object))
        np.save(root / f"y_{part}.npy", np.array(["no", "yes"] * rows, dtype=object)[:rows])
    info = {"task_type": "binclass", "n_num_features": 2, "n_cat_features": 1 if with_cat else 0,
            "feature_intro": {"num": {"age": "", "balance": ""}, "cat": {"job": ""}}}
    (root / "info.json").write_text(json.dumps(info))
    return root


def read_tiny_talent_folder(tmp_path):
    from bench.suites.talent_source import folder_digest

    folder = talent_folder(tmp_path / "tiny")
    suite = tmp_path / "t.toml"
    suite.write_text(f'[protocol]\nsplits = "predefined"\n[[datasets]]\ntalent = "{folder}"\n'
                     f'sha256 = "{folder_digest(folder)}"\n')
    [item], _ = materialize(load_suite(str(suite)))
    return folder, item


def test_talent_folder_is_read_directly(tmp_path):
    folder, item = read_tiny_talent_folder(tmp_path)
    ds = item.dataset
    assert ds.name == "tiny" and ds.task_type == "binary" and list(ds.X.columns) == ["age", "balance", "job"]
    assert ds.categorical == ["job"] and item.predefined.counts() == {"train": 12, "val": 4, "test": 5}
    assert np.allclose(ds.X.age.to_numpy()[:12], np.load(folder / "N_train.npy")[:, 0])  # train rows first, in order


def test_bench_import_talent_gives_the_same_data_and_split(capsys, tmp_path):
    _, item = read_tiny_talent_folder(tmp_path)
    ds = item.dataset
    code, out = run_cli(capsys, "import", "talent", tmp_path, tmp_path / "imported")
    assert code == 0, out
    manifest = json.loads((tmp_path / "imported" / "manifest.json").read_text())
    assert manifest["datasets"][0]["split_column"] == "split"
    [again], _ = materialize(load_suite(str(tmp_path / "imported")))  # a folder with split columns: predefined
    assert again.dataset.content_hash == ds.content_hash
    assert np.array_equal(again.predefined.codes, item.predefined.codes)


def test_talent_folder_with_changed_files_is_refused(tmp_path):
    folder = talent_folder(tmp_path / "tiny", with_cat=False)
    suite = tmp_path / "t.toml"
    suite.write_text(f'[protocol]\nsplits = "predefined"\n[[datasets]]\ntalent = "{folder}"\nsha256 = "{"0" * 64}"\n')
    with pytest.raises(BenchError, match="sha256 mismatch"):
        materialize(load_suite(str(suite)))


def test_talent_suite_on_the_shared_folder(shared_data, monkeypatch):
    if not (shared_data / "published" / "talent" / "bank" / "info.json").exists():
        pytest.skip("shared/data/published/talent is not present")
    monkeypatch.setenv("BENCH_TALENT_DIR", str(shared_data / "published" / "talent"))
    loaded, _ = materialize(load_suite("talent"))  # the sha256 of every folder is verified
    sizes = {item.dataset.name: item.predefined.counts() for item in loaded}
    assert sizes == {"bank": {"train": 28934, "val": 7234, "test": 9043},
                     "mfeat-factors": {"train": 1280, "val": 320, "test": 400},
                     "cpu_act": {"train": 5242, "val": 1311, "test": 1639}}
