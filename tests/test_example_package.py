"""The example out-of-tree adapter (examples/bench-example-adapter), installed for real: its entry
point reaches `bench` in a fresh interpreter and in sweep worker processes, and its own tests pass."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bench-example-adapter"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """The example pip-installed into a private folder: no index and no build isolation (works offline,
    uses this environment's setuptools) and nothing installed into the environment itself.
    Returns the copied source folder and the environment for subprocesses that should see it."""
    tmp = tmp_path_factory.mktemp("example")
    src = tmp / "src"  # a copy: setuptools writes build/ and *.egg-info/ next to the sources
    shutil.copytree(EXAMPLE, src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"))
    site = tmp / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "--no-deps", "--no-index", "--no-build-isolation", "--target", str(site), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (site / "bench_example_adapter.py").exists()
    return src, {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def _python(env: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_bench_lists_the_plugin_model(installed):
    _, env = installed
    listing = _python(env, "-m", "bench.cli", "models", "list")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "sklearn_hgb" in listing.stdout and "xgboost" in listing.stdout


def test_a_sweep_runs_the_plugin_in_a_worker_process(installed, tmp_path):
    _, env = installed
    out = tmp_path / "run"
    run = _python(env, "-m", "bench.cli", "run", "--suite", "demo", "--datasets", "penguins", "--models",
                  "sklearn_hgb", "--trials", "1", "--splits", "1", "--jobs", "1", "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stdout + run.stderr
    records = [json.loads(p.read_text()) for p in (out / "records").rglob("*.json")]
    assert [(r["model"], r["variant"], r["status"]) for r in records] == [("sklearn_hgb", "default", "ok")], \
        [r.get("error") for r in records]
    record = records[0]
    assert record["dataset"] == "penguins" and record["versions"]["scikit-learn"] != "not installed"
    assert record["test"]["accuracy"] > 0.9  # penguins is easy: a working GBDT is far above chance


def test_the_example_packages_own_tests_pass(installed):
    src, env = installed
    tests = _python(env, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=src)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "2 passed" in tests.stdout  # the entry-point test ran, not skipped
