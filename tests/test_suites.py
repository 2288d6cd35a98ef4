"""Suite registry: built-in definitions, strict parsing, the embedded demo suite, local folders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError, DataUnavailableError, SuiteFormatError
from bench.suites import Excluded, LoadedDataset, Suite, list_suites, load_suite, materialize

BUILTIN = {
    "demo": None, "cc18": 99, "grinsztajn-num-clf": 337, "grinsztajn-cat-clf": 334,
    "grinsztajn-num-reg": 336, "grinsztajn-cat-reg": 335, "amlb-classification": 271,
    "amlb-regression": 269, "ctr23": 353, "tabarena-v0.1": "tabarena-v0.1", "offline-20": None,
}
DEMO = ["kr-vs-kp", "titanic", "penguins", "cpu", "breast_cancer", "wine", "digits", "diabetes"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "bench-cache"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(d))
    return d


def test_every_builtin_suite_parses():
    suites = {s.name: s for s in list_suites()}
    assert set(BUILTIN) <= set(suites)
    for name, suite_id in BUILTIN.items():
        s = load_suite(name)
        assert isinstance(s, Suite) and s.name == name and s.description
        assert s.openml_suite_id == suite_id
        if suite_id is not None:
            assert s.protocol.use_task_splits and not s.entries
    demo = load_suite("demo")
    assert (demo.protocol.folds, demo.protocol.repeats, demo.protocol.validation_fraction,
            demo.protocol.seed) == (3, 1, 0.2, 0)
    assert [e.embedded for e in demo.entries] == DEMO


def test_importing_bench_suites_does_not_import_openml():
    code = "import sys, bench.suites; bench.suites.list_suites(); print('openml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_suite_lists_valid_names():
    with pytest.raises(BenchError) as exc:
        load_suite("no-such-suite")
    msg = str(exc.value)
    assert "unknown suite 'no-such-suite'" in msg and "Valid suites:" in msg
    for name in ("demo", "cc18", "offline-20"):
        assert name in msg


GOOD_ENTRY = '[[datasets]]\nembedded = "wine"\n'


@pytest.mark.parametrize("text, field, problem", [
    ('name = "x"\n[protocol]\nfolds = "three"\n' + GOOD_ENTRY, "protocol.folds", "expected an integer"),
    ('name = "x"\n[protocol]\nfolds = -5\n' + GOOD_ENTRY, "protocol.folds", "must be >= 2"),
    ('name = "x"\n[protocol]\nfolds = true\n' + GOOD_ENTRY, "protocol.folds", "expected an integer"),
    ('name = "x"\n[protocol]\nvalidation_fraction = 1.5\n' + GOOD_ENTRY, "protocol.validation_fraction", "(0, 1)"),
    ('name = "x"\n[protocol]\nfold = 3\n' + GOOD_ENTRY, "protocol.fold", "unknown field"),
    ('name = "x"\ncolour = "red"\n' + GOOD_ENTRY, "colour", "unknown field"),
    ('name = "x"\n[[datasets]]\nopenml_task = 3\n[[datasets]]\nopenml_task = 5\n[[datasets]]\nopenml_task = "abc"\n',
     "datasets[2].openml_task", "expected an integer, got str 'abc'"),
    ('name = "x"\n[[datasets]]\nopenml_task = 3\nopenml_dataset = 31\n', "datasets[0]", "exactly one source"),
    ('name = "x"\n[[datasets]]\ntarget = "y"\n', "datasets[0]", "got none"),
    ('name = "x"\n[[datasets]]\nopenml_dataset = 31\ntask_type = "ranking"\n',
     "datasets[0].task_type", "not a task type"),
    ('name = "x"\n[[datasets]]\nopenml_task = 3\ntarget = "y"\n', "datasets[0].target", "not allowed"),
    ('name = "x"\n[[datasets]]\nembedded = "nope"\n', "datasets[0].embedded", "unknown embedded dataset"),
    ('name = "x"\n[[datasets]]\npath = "a.csv"\n', "datasets[0].target", "required"),
    ('name = "x"\n[[datasets]]\nembedded = "wine"\nbogus = 1\n', "datasets[0].bogus", "unknown field"),
    ('name = "x"\n[filters]\ntask_types = ["binary", "ordinal"]\n' + GOOD_ENTRY,
     "filters.task_types[1]", "not a task type"),
    ('name = "x"\n[filters]\nmax_rows = "many"\n' + GOOD_ENTRY, "filters.max_rows", "expected an integer"),
    ('name = "x"\nopenml_suite = 99\n' + GOOD_ENTRY, "datasets", "not both"),
    ('name = "x"\n', "datasets", "no datasets"),
    ('name = "x"\n[[datasets]]\nlocal = "${NO_SUCH_BENCH_VAR}/d"\n', "datasets[0].local", "NO_SUCH_BENCH_VAR"),
    ('name = "x"\n[protocol\n', "(file)", "invalid TOML"),
])
def test_malformed_suite_files_name_file_and_field(tmp_path, text, field, problem):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(SuiteFormatError) as exc:
        load_suite(str(path))
    assert exc.value.field == field
    assert problem in exc.value.problem
    assert str(path) in str(exc.value) and field in str(exc.value)


def test_demo_suite_materializes_offline_and_cache_hit_equals_fresh_load(cache):
    suite = load_suite("demo")
    loaded, excluded = materialize(suite)
    assert excluded == []
    assert [item.dataset.name for item in loaded] == DEMO
    by_name = {item.dataset.name: item.dataset for item in loaded}
    assert {d.task_type for d in by_name.values()} == {"binary", "multiclass", "regression"}
    for name in ("kr-vs-kp", "titanic", "penguins", "cpu"):
        ds = by_name[name]
        assert ds.categorical and all(isinstance(ds.X[c].dtype, pd.CategoricalDtype) for c in ds.categorical)
    titanic = by_name["titanic"]
    assert not {"boat", "body"} & set(titanic.X.columns)
    assert "leaks the target" in titanic.dropped["boat"] and "leaks the target" in titanic.dropped["body"]
    assert by_name["kr-vs-kp"].source["openml_dataset_id"] == 3
    assert by_name["penguins"].source["licence"] == "CC0"
    for item in loaded:
        assert isinstance(item, LoadedDataset) and item.task_splits is None
        ds = item.dataset
        assert len(ds.content_hash) == 16 and ds.n_rows == len(ds.y) > 100
        if ds.task_type != "regression":
            assert np.bincount(ds.y).min() > 0 and ds.n_classes >= 2

    assert (cache / "datasets" / "embedded-kr-vs-kp" / "entry.json").exists()
    again, _ = materialize(suite)  # cache hit
    fresh, _ = materialize(suite, refresh=True)  # bypasses the cache
    for a, b, c in zip(loaded, again, fresh):
        assert a.dataset.content_hash == b.dataset.content_hash == c.dataset.content_hash
        pd.testing.assert_frame_equal(a.dataset.X, b.dataset.X)
        np.testing.assert_array_equal(a.dataset.y, b.dataset.y)


def test_corrupt_cache_entry_is_rebuilt(cache):
    suite = load_suite("demo")
    first, _ = materialize(suite)
    meta = cache / "datasets" / "embedded-wine" / "meta.json"
    m = json.loads(meta.read_text())
    m["content_hash"] = "0" * 16
    meta.write_text(json.dumps(m))
    (cache / "datasets" / "embedded-cpu" / "entry.json").write_text("{not json")
    again, _ = materialize(suite)
    assert [a.dataset.content_hash for a in first] == [b.dataset.content_hash for b in again]


def test_filters_exclude_with_reasons(cache, tmp_path):
    path = tmp_path / "filtered.toml"
    path.write_text('name = "filtered"\n[filters]\ntask_types = ["binary", "multiclass"]\n'
                    'max_rows = 2000\nmax_classes = 5\n'
                    + "".join(f'[[datasets]]\nembedded = "{n}"\n' for n in DEMO))
    loaded, excluded = materialize(load_suite(str(path)))
    assert sorted(i.dataset.name for i in loaded) == ["breast_cancer", "penguins", "titanic", "wine"]
    reasons = {e.name: e.reason for e in excluded}
    assert all(isinstance(e, Excluded) for e in excluded)
    assert "max_rows" in reasons["kr-vs-kp"] and "regression" in reasons["cpu"]
    assert "max_classes" in reasons["digits"] and "regression" in reasons["diabetes"]


def test_path_entry_csv_relative_to_suite_file_and_search_path(cache, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"num": rng.normal(size=60), "colour": rng.choice(["red", "blue"], 60),
                          "code": rng.integers(0, 3, 60), "junk": 1.0,
                          "y": rng.choice(["a", "b", "c"], 60)})
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "t.csv", index=False)
    suites_dir = tmp_path / "my-suites"
    suites_dir.mkdir()
    (suites_dir / "mine.toml").write_text(
        'description = "csv"\n[[datasets]]\npath = "../data/t.csv"\ntarget = "y"\n'
        'categorical = ["code"]\ndrop = ["junk"]\n')
    monkeypatch.setenv("BENCH_SUITES_PATH", str(suites_dir))
    suite = load_suite("mine")
    assert suite.name == "mine" and suite.entries[0].path == (suites_dir / "../data/t.csv")
    (item,), _ = materialize(suite)
    ds = item.dataset
    assert ds.name == "t" and ds.task_type == "multiclass" and ds.classes == ["a", "b", "c"]
    assert ds.categorical == ["colour", "code"] and "junk" not in ds.X.columns
    assert "mine" in [s.name for s in list_suites()]


def test_missing_local_file_is_data_unavailable(cache, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[[datasets]]\npath = "nowhere.parquet"\ntarget = "y"\n')
    with pytest.raises(DataUnavailableError, match="nowhere.parquet"):
        materialize(load_suite(str(path)))


# --- the shared offline-20 folder ------------------------------------------------------------------

def test_offline20_folder_loads_directly(shared_data, cache):
    folder = shared_data / "suites" / "offline-20"
    suite = load_suite(str(folder))
    assert suite.name == "offline-20" and len(suite.entries) == 20 and suite.protocol.folds == 5
    loaded, excluded = materialize(suite)
    assert not excluded and len(loaded) == 20
    by_name = {i.dataset.name: i.dataset for i in loaded}
    anneal = by_name["anneal"]
    assert anneal.n_classes == 5 and np.bincount(anneal.y).min() > 0  # declared class '4' has no rows
    assert anneal.source["openml_dataset_id"] == 2 and anneal.source["sha256"]
    assert {d.task_type for d in by_name.values()} == {"binary", "multiclass", "regression"}
    assert len(by_name["adult"].categorical) == 8
    # The same data through the embedded loader and the shared Parquet file: the same content hash.
    assert by_name["kr-vs-kp"].content_hash == materialize(load_suite("demo"))[0][0].dataset.content_hash


def test_offline20_suite_file_reads_env_folder(shared_data, cache, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_OFFLINE20_DIR", str(shared_data / "suites" / "offline-20"))
    suite = load_suite("offline-20")
    assert suite.entries[0].kind == "local"
    monkeypatch.setenv("BENCH_OFFLINE20_DIR", str(tmp_path / "absent"))
    with pytest.raises(DataUnavailableError, match="absent"):
        materialize(load_suite("offline-20"))


def test_offline20_sha256_mismatch_fails_clearly(shared_data, cache, tmp_path):
    src = shared_data / "suites" / "offline-20"
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["datasets"] = [d for d in manifest["datasets"] if d["name"] == "anneal"]
    copy = tmp_path / "tampered"
    copy.mkdir()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    shutil.copyfile(src / "anneal.parquet", copy / "anneal.parquet")
    (good,), _ = materialize(load_suite(str(copy)))  # an intact copy loads
    data = bytearray((copy / "anneal.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "anneal.parquet").write_bytes(bytes(data))
    with pytest.raises(DataUnavailableError) as exc:
        materialize(load_suite(str(copy)), refresh=True)
    msg = str(exc.value)
    assert "sha256 mismatch" in msg and "anneal" in msg and manifest["datasets"][0]["sha256"] in msg


def test_display_name_is_applied_on_top_of_the_shared_cache(cache, tmp_path):
    path = tmp_path / "named.toml"
    path.write_text('[[datasets]]\nembedded = "wine"\nname = "vino"\n')
    (named,), _ = materialize(load_suite(str(path)))
    plain = {i.dataset.name: i.dataset for i in materialize(load_suite("demo"))[0]}
    assert named.dataset.name == "vino" and "wine" in plain
    assert named.dataset.content_hash == plain["wine"].content_hash


# --- issue 18, item 1: the same data under two entries is refused, by content, naming both -------------

def _diabetes(folder):
    """A data file and a manifest folder holding it (as offline-20 does)."""
    from tests.cli_helpers import data_file

    folder.mkdir(parents=True, exist_ok=True)
    data_file(folder / "diabetes.parquet", "regression", n=120)
    (folder / "manifest.json").write_text(json.dumps({"name": "folder", "datasets": [
        {"name": "diabetes", "file": "diabetes.parquet", "target": "y", "task_type": "regression"}]}))
    return folder


PATH_ENTRY = '[[datasets]]\npath = "{file}"\ntarget = "y"\ntask_type = "regression"\n'


@pytest.mark.parametrize("case", ["the same file twice", "the same file under two names", "a copy of the file",
                                  "a local folder and a path entry", "one manifest, two names"])
def test_the_same_data_listed_twice_is_refused_naming_both_entries(cache, tmp_path, case):
    folder = _diabetes(tmp_path / "data")
    shutil.copyfile(folder / "diabetes.parquet", tmp_path / "copy.parquet")
    one = PATH_ENTRY.format(file="data/diabetes.parquet")
    suite_text = {
        "the same file twice": one + one,
        "the same file under two names": one + one + 'name = "diabetes2"\n',
        "a copy of the file": one + PATH_ENTRY.format(file="copy.parquet"),
        "a local folder and a path entry": '[[datasets]]\nlocal = "data"\n' + one,
    }
    if case == "one manifest, two names":
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["datasets"].append({**manifest["datasets"][0], "name": "diabetes-again"})
        (folder / "manifest.json").write_text(json.dumps(manifest))
        suite = load_suite(str(folder))
    else:
        path = tmp_path / "twice.toml"
        path.write_text('name = "twice"\n' + suite_text[case])
        suite = load_suite(str(path))
    with pytest.raises(BenchError) as exc:
        materialize(suite)
    message = str(exc.value)
    assert "the same data twice" in message and "counts twice" in message
    assert "datasets[0]" in message and "datasets[1]" in message  # both entries are named


def test_the_same_data_listed_twice_exits_2_and_a_second_name_into_the_same_folder_too(tmp_path, capsys):
    from tests.cli_helpers import run_cli

    folder = _diabetes(tmp_path / "data")
    one = PATH_ENTRY.format(file="data/diabetes.parquet")
    (tmp_path / "twice.toml").write_text('name = "s"\n[protocol]\nfolds = 2\n' + one + one)
    args = ["--models", "dummy", "--jobs", 0, "--splits", 1, "--out", tmp_path / "run", "--quiet"]
    code, text = run_cli(capsys, "run", "--suite", tmp_path / "twice.toml", *args)
    assert code == 2 and "the same data twice" in text and "datasets[1]" in text, text
    assert not (tmp_path / "run" / "records").exists()
    # one entry per run, but the same data under another name into the same folder: refused too
    (tmp_path / "once.toml").write_text('name = "s"\n[protocol]\nfolds = 2\n' + one)
    assert run_cli(capsys, "run", "--suite", tmp_path / "once.toml", *args)[0] == 0
    (tmp_path / "once.toml").write_text('name = "s"\n[protocol]\nfolds = 2\n' + one + 'name = "sugar"\n')
    code, text = run_cli(capsys, "run", "--suite", tmp_path / "once.toml", *args)
    assert code == 2 and "dataset sugar holds the same data" in text and "diabetes" in text, text
    assert folder.exists() and [p.parent.name for p in (tmp_path / "run" / "records").rglob("*.json")] == ["dummy"]
