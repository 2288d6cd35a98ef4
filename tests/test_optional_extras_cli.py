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
    assert sorted(r["variant"] for r in by_model["test_realmlp_quick"] if r["status"] == "ok") == [
        "default", "ensemble", "tuned"]
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


OPTIONAL = {"pytabkit": "realmlp", "tabpfn": "tabpfn", "pytorch_tabnet": "tabnet", "interpret": "ebm",
            "tabicl": "tabicl", "tabdpt": "tabdpt", "skorch": "tabr"}
HEAVY = ("torch", "lightning", "pytorch_lightning", "huggingface_hub", "faiss", "omegaconf", *OPTIONAL)


def test_models_list_works_without_the_extras_and_never_imports_them():
    """A fresh interpreter where no optional library can be imported (as without the extras)."""
    block = "; ".join(f"sys.modules[{m!r}] = None" for m in OPTIONAL)
    code = (f"import sys; {block}\n"
            "from bench.cli import main\n"
            "rc = main(['models', 'list'])\n"
            "assert rc == 0, rc\n"
            f"print('imported:', sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}"
            " and sys.modules[m] is not None))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "250"})
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "realmlp unavailable: the optional library pytabkit is not installed" in text
    for model in ("realmlp", "tabpfn", "tabr", "tabnet", "ebm", "tabicl", "tabdpt"):
        assert f"{model} unavailable: " in text and f"tabular-bench[{model}]" in text, model
    assert "imported: []" in text  # listing models stays light: no model library is imported


def test_models_list_shows_family_extra_and_availability_of_every_model(capsys, monkeypatch, no_tabpfn_weights):
    from bench.adapters import load_adapters
    from bench.cli import main

    monkeypatch.setenv("COLUMNS", "250")  # one table row per line
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.startswith("│")}
    adapters = load_adapters()
    assert set(rows) == set(adapters)
    for name, cls in adapters.items():
        family, extra, *_, available = rows[name]
        reason = cls.unavailable_reason()
        assert (family, extra, available) == (cls.family, cls.extra or "-", "no" if reason else "yes"), name
        if reason:
            assert f"{name} unavailable: " in " ".join(out.split())
    assert rows["tabnet"][1] == "tabnet" and rows["knn"][:2] == ["baseline", "-"]
    assert rows["tabr"][1] == "tabr" and rows["ebm"][:2] == ["baseline", "ebm"]
