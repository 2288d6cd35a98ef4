import numpy as np

from bench.splits import load_frozen, make_splits
from bench.suites import Protocol as SuiteProtocol


def Protocol(**overrides):
    """The suite protocol with small test defaults: 3 folds x 2 repeats."""
    return SuiteProtocol(**{"folds": 3, "repeats": 2, **overrides})


def test_kfold_partitions_rows_and_validation_comes_from_training(make_ds, tmp_path):
    ds = make_ds("multiclass", n=200)
    splits, path = make_splits(ds, Protocol(), cache_dir=tmp_path)
    assert len(splits) == 6 and path.exists()
    for repeat in (0, 1):
        tests = np.concatenate([s.test for s in splits if s.repeat == repeat])
        assert sorted(tests.tolist()) == list(range(ds.n_rows))  # every row tested exactly once
    for s in splits:
        assert not set(s.test) & (set(s.train) | set(s.val))
        assert not set(s.train) & set(s.val)
        assert len(s.train) + len(s.val) + len(s.test) == ds.n_rows
        assert abs(len(s.val) / (len(s.train) + len(s.val)) - 0.2) < 0.02
        # stratified: every class appears in every part
        for part in (s.train, s.val, s.test):
            assert set(ds.y[part]) == set(range(ds.n_classes))


def test_frozen_splits_are_reused_and_hashed(make_ds, tmp_path):
    ds = make_ds("regression", n=120)
    first, path = make_splits(ds, Protocol(), cache_dir=tmp_path)
    again, path2 = make_splits(ds, Protocol(), cache_dir=tmp_path)
    assert path == path2
    assert [s.hash for s in first] == [s.hash for s in again] == [s.hash for s in load_frozen(path)]
    other, _ = make_splits(ds, Protocol(seed=1), cache_dir=tmp_path)
    assert [s.hash for s in other] != [s.hash for s in first]


def test_task_splits_are_used_when_given(make_ds, tmp_path):
    ds = make_ds("binary", n=100)
    ds.source["openml_task_id"] = 99
    rows = np.arange(100)
    task = [(0, f, np.setdiff1d(rows, rows[f::2]), rows[f::2]) for f in range(2)]
    splits, _ = make_splits(ds, Protocol(), task_splits=task, cache_dir=tmp_path)
    assert [s.origin for s in splits] == ["openml-task"] * 2
    assert np.array_equal(splits[1].test, rows[1::2])
    plain, _ = make_splits(ds, Protocol(use_task_splits=False), task_splits=task, cache_dir=tmp_path)
    assert len(plain) == 6 and plain[0].origin == "kfold"
