"""The adapters package's layout rules (README, "Code map"): the framework and the models import nothing
from the later stages of the flow; a model's light module imports no torch (listing models stays fast);
torch modules are defined at module level (a network.py), never inside a function."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bench.adapters import BUILTIN_MODULES

ADAPTERS = Path(__file__).resolve().parents[1] / "bench" / "adapters"
LATER_STAGES = ("bench.tuning", "bench.execution", "bench.records", "bench.analysis", "bench.published", "bench.cli")
MODULES = sorted(ADAPTERS.rglob("*.py"))


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):  # function-level imports count too
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ADAPTERS)))
def test_adapters_import_nothing_from_later_stages(path):
    later = [name for name in _imports(ast.parse(path.read_text())) if name.startswith(LATER_STAGES)]
    assert not later, f"{path.relative_to(ADAPTERS)} imports {later}: data flows one way (adapters come before them)"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ADAPTERS)))
def test_no_torch_module_is_defined_inside_a_function(path):
    nested = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ClassDef) and any(
                        ast.unparse(base).split(".")[-1].endswith(("Module", "Lightning")) for base in inner.bases):
                    nested.append(f"{inner.name} in {node.name}()")
    assert not nested, f"{path.relative_to(ADAPTERS)}: {nested}; define torch modules at module level in a network.py"


def test_registering_every_built_in_model_imports_no_torch():
    code = ("import sys, importlib; [importlib.import_module(m) for m in sys.argv[1:]]; "
            "heavy = [m for m in ('torch', 'xgboost', 'lightgbm', 'catboost', 'pytabkit') if m in sys.modules]; "
            "print(heavy); sys.exit(bool(heavy))")
    run = subprocess.run([sys.executable, "-c", code, *BUILTIN_MODULES], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
