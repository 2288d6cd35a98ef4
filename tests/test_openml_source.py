"""OpenML source against a temp copy of the shared openml-python cache, with all sockets blocked."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path

# openml reads its config (XDG_CONFIG_HOME) and cache location when first imported: point both at
# temp dirs before anything imports it. The cache itself is copied in by the `openml_cache` fixture.
_TMP = Path(tempfile.mkdtemp(prefix="bench-openml-test-"))
atexit.register(shutil.rmtree, _TMP, True)
_OPENML_CACHE = _TMP / "openml-cache"
_SAVED_ENV = {k: os.environ.get(k) for k in ("OPENML_CACHE_DIR", "XDG_CONFIG_HOME")}
os.environ["OPENML_CACHE_DIR"] = str(_OPENML_CACHE)
os.environ["XDG_CONFIG_HOME"] = str(_TMP / "xdg-config")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bench.errors import DataUnavailableError  # noqa: E402
from bench.suites import load_suite, materialize  # noqa: E402

SHARED_CACHE = Path(__file__).resolve().parents[2] / "shared" / "data" / "openml-cache"


@pytest.fixture(scope="module")
def openml_cache():
    if not (SHARED_CACHE / "org" / "openml" / "www" / "tasks" / "3").exists():
        pytest.skip(f"shared OpenML cache not present at {SHARED_CACHE}")
    if not _OPENML_CACHE.exists():
        shutil.copytree(SHARED_CACHE, _OPENML_CACHE)
        for root, dirs, files in os.walk(_OPENML_CACHE):  # the shared copy is read-only
            for name in dirs + files:
                os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
    yield _OPENML_CACHE
    for key, value in _SAVED_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture
def offline(openml_cache, tmp_path, monkeypatch):
    """No network at all, a private bench cache, and no slow retries."""
    import openml

    def blocked(*args, **kwargs):
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    monkeypatch.setattr(openml.config, "connection_n_retries", 1)
    monkeypatch.setenv("OPENML_CACHE_DIR", str(openml_cache))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "bench-cache"))
    return tmp_path


def _suite(tmp_path: Path, body: str, name: str = "om"):
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + body)
    return load_suite(str(path))


def test_openml_cache_root_points_at_the_copy(offline, openml_cache):
    from bench.suites.openml_source import openml_cache_dir

    assert Path(openml_cache_dir()) == openml_cache


def test_task_3_loads_with_real_10_fold_splits(offline):
    suite = _suite(offline, "[[datasets]]\nopenml_task = 3\n")
    (item,), excluded = materialize(suite)
    ds = item.dataset
    assert not excluded
    assert ds.name == "kr-vs-kp" and ds.task_type == "binary" and ds.n_rows == 3196
    assert len(ds.categorical) == 36 and ds.classes == ["nowin", "won"]
    assert ds.source["openml_task_id"] == 3 and ds.source["openml_dataset_id"] == 3
    splits = item.task_splits
    assert [(r, f) for r, f, _, _ in splits] == [(0, f) for f in range(10)]
    all_rows = np.arange(ds.n_rows)
    tests = []
    for _, _, train, test in splits:
        assert len(np.intersect1d(train, test)) == 0
        np.testing.assert_array_equal(np.union1d(train, test), all_rows)
        tests.append(test)
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)), all_rows)  # test folds partition rows

    (again,), _ = materialize(suite)  # from the bench cache
    assert again.dataset.content_hash == ds.content_hash
    for (r1, f1, tr1, te1), (r2, f2, tr2, te2) in zip(splits, again.task_splits):
        assert (r1, f1) == (r2, f2)
        np.testing.assert_array_equal(tr1, tr2)
        np.testing.assert_array_equal(te1, te2)


def test_task_splits_are_omitted_when_the_protocol_says_so(offline):
    suite = _suite(offline, "[protocol]\nuse_task_splits = false\n[[datasets]]\nopenml_task = 3\n")
    (item,), _ = materialize(suite)
    assert item.task_splits is None


def test_datasets_by_id_with_categoricals(offline):
    suite = _suite(offline, "[[datasets]]\nopenml_dataset = 31\n"
                            '[[datasets]]\nopenml_dataset = 1590\ndrop = ["fnlwgt"]\n')
    (credit, adult), _ = materialize(suite)
    c, a = credit.dataset, adult.dataset
    assert c.name == "credit-g" and c.task_type == "binary" and c.n_rows == 1000
    assert len(c.categorical) == 13 and c.classes == ["bad", "good"]
    assert a.name == "adult" and a.n_rows == 48842 and a.task_type == "binary"
    assert "fnlwgt" not in a.X.columns and "workclass" in a.categorical and len(a.categorical) == 8
    assert credit.task_splits is None and c.source["openml_dataset_id"] == 31


def test_suite_task_list_cached_as_json_works_offline(offline):
    from bench.datasets import cache_root
    from bench.json_files import write_json_atomic

    write_json_atomic(cache_root() / "openml" / "suite-424242.json", {"suite_id": 424242, "tasks": [3]})
    (item,), _ = materialize(_suite(offline, "openml_suite = 424242\n"))
    assert item.dataset.source["openml_task_id"] == 3 and len(item.task_splits) == 10


@pytest.mark.parametrize("body, what", [
    ("[[datasets]]\nopenml_dataset = 40981\n", "OpenML dataset 40981"),
    ("[[datasets]]\nopenml_task = 31\n", "OpenML task 31"),
    ("openml_suite = 99\n", "OpenML suite 99"),
])
def test_missing_ids_raise_data_unavailable_with_instructions(offline, openml_cache, body, what):
    with pytest.raises(DataUnavailableError) as exc:
        materialize(_suite(offline, body, name="needs-network"))
    msg = str(exc.value)
    assert what in msg and "could not be reached" in msg
    assert "bench fetch" in msg and "OPENML_CACHE_DIR" in msg
    assert "Traceback" not in msg and "File \"" not in msg
    if "suite" not in what:
        assert str(openml_cache) in msg


def test_cli_offline_openml_suite_exits_2_with_how_to_fill(offline, capsys):
    from bench.cli import main

    code = main(["run", "--suite", "cc18", "--models", "dummy", "--out", str(offline / "run")])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 2
    assert "99" in out and "bench fetch" in out and "Traceback" not in out


def test_cli_sweep_on_an_openml_task_uses_its_splits(offline, capsys):
    import json

    from bench.cli import main

    suite = offline / "task3.toml"
    suite.write_text('name = "task3"\n[[datasets]]\nopenml_task = 3\n')
    out_dir = offline / "run"
    code = main(["run", "--suite", str(suite), "--models", "dummy,linear", "--trials", "2", "--splits", "2",
                 "--jobs", "1", "--out", str(out_dir), "--quiet"])
    assert code == 0, capsys.readouterr().out
    records = [json.loads(p.read_text()) for p in (out_dir / "records").rglob("*.json")]
    # per split: dummy default; linear default, tuned, ensemble; the cross-model ensemble
    assert {r["status"] for r in records} == {"ok"} and len(records) == 2 * (1 + 3 + 1)
    assert {r["split"]["fold"] for r in records} == {0, 1}
    linear = next(r for r in records if r["model"] == "linear" and r["variant"] == "tuned")
    assert linear["source"]["openml_task_id"] == 3 and linear["n_test"] == 320  # OpenML's fold size
    assert linear["test"]["roc_auc"] > 0.95
