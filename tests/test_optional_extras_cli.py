"""The optional-extra models from the command line: listed with their availability; in a sweep on the
embedded demo suite, TabPFN without weights gives "unavailable" records (not a crash) while RealMLP runs."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.test_cli import _run

pytest.importorskip("pytabkit")


@pytest.fixture
def no_tabpfn_weights(tmp_path, monkeypatch):
    folder = tmp_path / "no-weights"
    folder.mkdir()
    monkeypatch.setenv("BENCH_TABPFN_WEIGHTS", str(folder))  # spawned workers inherit it
    return folder


def test_models_list_shows_availability_and_why(capsys, no_tabpfn_weights):
    code, out = _run(capsys, "models", "list")
    assert code == 0 and "realmlp" in out and "available" in out
    assert "tabpfn unavailable: " in out and str(no_tabpfn_weights) in out
    code, out = _run(capsys, "models", "show", "realmlp")
    assert code == 0 and "defaults for regression differ in" in out and "mish" in out


def _records(out_dir):
    return [json.loads(p.read_text()) for p in (out_dir / "records").rglob("*.json")]


def test_demo_sweep_tabpfn_unavailable_realmlp_ok(capsys, tmp_path, monkeypatch, no_tabpfn_weights):
    import tests.extras_adapters  # noqa: F401  registers test_realmlp_quick here; workers import it below

    monkeypatch.setenv("BENCH_ADAPTER_MODULES", "tests.fault_adapters:tests.extras_adapters")
    out_dir = tmp_path / "run"
    args = ["run", "--suite", "demo", "--datasets", "wine", "--models", "test_realmlp_quick,tabpfn",
            "--trials", "2", "--splits", "1", "--jobs", "1", "--out", str(out_dir), "--quiet"]
    code, out = _run(capsys, *args)
    assert code == 0, out
    by_model = {}
    for r in _records(out_dir):
        by_model.setdefault(r["model"], []).append(r)
    assert sorted(r["status"] for r in by_model["test_realmlp_quick"]) == ["ok", "ok"]  # default + tuned
    [tabpfn] = by_model["tabpfn"]  # nothing to tune: one variant
    assert tabpfn["status"] == "unavailable" and str(no_tabpfn_weights) in tabpfn["reason"]
    assert "unavailable tabpfn: no TabPFN classifier weights" in out
    with open(out_dir / "leaderboard.csv") as f:
        rows = {(r["model"], r["variant"]): r for r in csv.DictReader(f)}
    assert rows[("tabpfn", "default")]["unavailable"] == "1" and rows[("tabpfn", "default")]["failures"] == "0"
    assert rows[("test_realmlp_quick", "tuned")]["datasets"] == "1"


@pytest.mark.slow
def test_demo_sweep_real_realmlp_defaults(capsys, tmp_path):
    """The real RealMLP-TD configuration (256 epochs) through the CLI: minutes on a busy 2-core machine."""
    out_dir = tmp_path / "run"
    code, out = _run(capsys, "run", "--suite", "demo", "--datasets", "wine", "--models", "realmlp",
                     "--trials", "1", "--splits", "1", "--jobs", "1", "--out", str(out_dir), "--quiet")
    assert code == 0, out
    [record] = _records(out_dir)
    assert record["status"] == "ok" and record["test"]["accuracy"] > 0.8


def test_models_list_works_without_the_extras_and_never_imports_them():
    """A fresh interpreter where pytabkit and tabpfn cannot be imported (as without the extras)."""
    code = ("import sys; sys.modules['pytabkit'] = None; sys.modules['tabpfn'] = None\n"
            "from bench.cli import main\n"
            "rc = main(['models', 'list'])\n"
            "assert rc == 0, rc\n"
            "print('imported:', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "250"})
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "realmlp unavailable: the optional library pytabkit is not installed" in text
    assert "tabular-bench[realmlp]" in text and "tabular-bench[tabpfn]" in text
    assert "imported: []" in text  # listing models stays light
