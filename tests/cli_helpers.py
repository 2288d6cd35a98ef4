"""Small runs through the command line, in this process: data files, suites, exit codes, output."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.cli import main
from tests.conftest import synthetic_frame


def run_cli(capsys, *argv) -> tuple[int, str]:
    """(exit code, stdout + stderr with whitespace squeezed: rich wraps long lines). argparse's own
    errors (SystemExit) count as their exit code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, " ".join((captured.out + " " + captured.err).split())


def data_file(path: Path, task_type: str = "binary", n: int = 100, seed: int = 0, frame=None) -> Path:
    """A Parquet file with target column `y` (synthetic learnable data unless `frame` is given)."""
    if frame is None:
        X, y = synthetic_frame(task_type, n, seed)
        frame = X.assign(y=y.astype(str) if task_type != "regression" else y)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(frame).to_parquet(path, index=False)
    return path


def suite_file(path: Path, datasets: dict[str, tuple[str, str]], folds: int = 2, name: str | None = None) -> Path:
    """A suite file: datasets name -> (file, task type), paths relative to the suite file."""
    lines = [f'name = "{name or path.stem}"', "[protocol]", f"folds = {folds}", "seed = 0"]
    for ds_name, (file, task_type) in datasets.items():
        lines += ["[[datasets]]", f'path = "{file}"', 'target = "y"', f'name = "{ds_name}"',
                  f'task_type = "{task_type}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def records(run_dir: Path) -> dict[str, dict]:
    """Record files under run_dir/records by their path relative to it."""
    return {str(p.relative_to(run_dir)): json.loads(p.read_text())
            for p in sorted((run_dir / "records").rglob("*.json"))}


def without(value, keys):
    """value (nested dicts and lists) with every dict entry whose key is in `keys` left out: what two
    runs may legitimately differ in (timings, paths, uids) before their records are compared."""
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value
