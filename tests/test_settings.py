"""Settings read from the environment live in one module (bench.settings) that lists them, and both
executors forward the driver's settings to their workers (issue 17, item 11; the multi-node Ray side is
tests/test_ray_multinode.py)."""

import re
from pathlib import Path

from bench import settings
from bench.execution.resources import Slot, worker_environment

ROOT = Path(__file__).resolve().parents[1]
LISTED = {s.name for s in settings.SETTINGS}


def test_every_environment_setting_of_the_harness_is_listed_once_with_meaning_and_default():
    assert len(LISTED) == len(settings.SETTINGS)
    assert all(s.meaning and s.default for s in settings.SETTINGS)
    named = set()
    for path in [*(ROOT / "bench").rglob("*.py"), *(ROOT / "suites").glob("*.toml")]:
        named |= set(re.findall(r"\bBENCH_[A-Z0-9_]+", path.read_text()))
    assert named <= LISTED, f"read from the environment but not listed in bench/settings.py: {named - LISTED}"
    # nothing outside bench/settings.py reads one of them by its literal name
    for path in (ROOT / "bench").rglob("*.py"):
        if path.name != "settings.py":
            assert not re.search(r"""environ(\.get)?[(\[]\s*["'](BENCH_|TABPFN_ALLOW|OPENML_CACHE)""",
                                 path.read_text()), path


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    assert [s.name for s in settings.SETTINGS if f"`{s.name}`" not in readme] == []


def test_workers_of_both_executors_get_the_drivers_settings(monkeypatch):
    monkeypatch.setenv("BENCH_ADAPTER_MODULES", "my_models.knn")
    monkeypatch.setenv("BENCH_FAST_PATH", "eager")
    monkeypatch.delenv("BENCH_TABPFN_WEIGHTS", raising=False)
    env = worker_environment(3)  # what the Ray executor passes as the task's runtime_env
    assert env["BENCH_ADAPTER_MODULES"] == "my_models.knn" and env["BENCH_FAST_PATH"] == "eager"
    assert "BENCH_TABPFN_WEIGHTS" not in env and env["OMP_NUM_THREADS"] == "3"
    local = Slot(0).environment(3)  # what a local worker process sets before its first import
    assert {k: local[k] for k in env} == env and local["CUDA_VISIBLE_DEVICES"] == ""


def test_a_switch_is_on_for_anything_but_the_false_words(monkeypatch):
    for value, on in (("1", True), ("yes", True), ("0", False), (" off ", False), ("", False)):
        monkeypatch.setenv("BENCH_ALLOW_CPU_LARGE_DATASET", value)
        assert settings.ALLOW_CPU_LARGE_DATASET.on() is on
