"""pyproject.toml lists the packages explicitly (setuptools): a subpackage left out installs without its
files in a non-editable install (CI and users), while an editable checkout hides the gap."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_bench_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bench").rglob("__init__.py")}
    assert found - listed == set(), "bench packages missing from [tool.setuptools] packages"
