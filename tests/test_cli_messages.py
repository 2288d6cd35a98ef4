"""What the command line says to a newcomer (issue 21, item 8): counts, plurals, no placeholder noise,
"did you mean", make's OUT=, the --jobs default, the README's "Two commands"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.records.store import ResultStore
from tests.cli_helpers import data_file, run_cli, suite_file
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]


def _local_suite(folder: Path, n: int = 3) -> Path:
    """A named suite (on BENCH_SUITES_PATH) whose one entry is a local folder of n datasets."""
    data = folder / "data"
    for i in range(n):
        data_file(data / f"d{i}.parquet", "binary", n=40, seed=i)
    manifest = {"name": "folder", "datasets": [{"name": f"d{i}", "file": f"d{i}.parquet", "target": "y"}
                                               for i in range(n)]}
    (data / "manifest.json").write_text(json.dumps(manifest))
    (folder / "suites").mkdir()
    (folder / "suites" / "viafolder.toml").write_text(f'name = "viafolder"\n[[datasets]]\nlocal = "{data}"\n')
    return folder / "suites"


def test_suites_list_counts_the_datasets_of_a_local_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_SUITES_PATH", str(_local_suite(tmp_path)))
    if (SHARED_DATA / "suites" / "offline-20" / "manifest.json").exists():
        monkeypatch.setenv("BENCH_OFFLINE20_DIR", str(SHARED_DATA / "suites" / "offline-20"))
    else:
        monkeypatch.setenv("BENCH_OFFLINE20_DIR", str(tmp_path / "absent"))
    code, out = run_cli(capsys, "suites", "list")
    assert code == 0 and re.search(r"viafolder │ 3 │", out), out  # one `local` entry, three datasets
    offline = "20" if (SHARED_DATA / "suites" / "offline-20").exists() else "folder not found"
    assert re.search(rf"offline-20 │ {offline} ", out), out
    code, out = run_cli(capsys, "suites", "show", "viafolder")
    assert code == 0 and "Datasets (3 datasets;" in out and "d2" in out


def test_suites_show_without_load_prints_no_placeholders(capsys):
    code, out = run_cli(capsys, "suites", "show", "demo")
    assert code == 0 and "Datasets (8 datasets;" in out
    for noise in ("(source's own)", "(default)", "(inferred)"):
        assert noise not in out
    assert "known once it loads (--load)" in out


def test_models_show_prints_capabilities_in_words(capsys):
    code, out = run_cli(capsys, "models", "show", "xgboost")
    assert code == 0 and "Capabilities(" not in out
    assert "capabilities: task types binary, multiclass, regression; uses a GPU when given one; no size limits" in out


@pytest.mark.parametrize("argv, hint", [
    (("models", "show", "xgbost"), "Did you mean 'xgboost'?"),
    (("run", "--suite", "demo", "--models", "xgbost,mlp", "--trials", "1"), "Did you mean 'xgboost'?"),
    (("suites", "show", "dem"), "Did you mean 'demo'?"),
])
def test_unknown_names_get_a_did_you_mean(capsys, argv, hint):
    code, out = run_cli(capsys, *argv)
    assert code == 2 and hint in out, out


def test_a_resumed_run_says_what_the_folder_holds_and_counts_in_words(capsys, tmp_path):
    data_file(tmp_path / "d.parquet", "binary", n=60)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    args = ["run", "--suite", suite, "--models", "dummy", "--trials", 1, "--splits", 1, "--jobs", 0,
            "--out", tmp_path / "run", "--quiet"]
    code, out = run_cli(capsys, *args)
    assert code == 0 and "1 dataset, 1 job (1 model," in out and "records written: 1 ok" in out, out
    code, out = run_cli(capsys, *args)
    assert code == 0 and "records: none" not in out
    assert "no new records (the folder holds 1 record from before)" in out, out


def test_another_run_into_the_folder_names_make_s_out(tmp_path):
    store = ResultStore(tmp_path / "run")
    store.write_config(store.check_config({"suite": "s", "trials": 5, "seed": 0})[0])
    with pytest.raises(BenchError, match=r"use another --out directory to keep both \(with make: OUT=<folder>\)"):
        store.check_config({"suite": "s", "trials": 10, "seed": 0})
    bench_target = re.search(r"^bench:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert "--out $(OUT)" in bench_target  # so `make bench OUT=...` is what the message asks for


def test_jobs_default_to_the_cores_available():
    from bench.cli.commands import _runner_options
    from bench.cli.main import build_parser
    from bench.execution.resources import cpu_count

    args = build_parser().parse_args(["run"])
    assert args.jobs is None and _runner_options(args)["workers"] == cpu_count()
    assert _runner_options(build_parser().parse_args(["run", "--jobs", "1"]))["workers"] == 1


def test_elo_anchor_option():
    from bench.cli.main import build_parser

    assert build_parser().parse_args(["report", "r", "--elo-anchor", "linear/default"]).anchor == "linear/default"
    assert build_parser().parse_args(["report", "r"]).anchor is None


def test_readme_two_commands_lists_two():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make bench", "make test"]
