"""The package's layering, read from the source with ast (every import, also those inside functions):
data flows one way through the stages, no module imports one above it, and no import cycle exists.

    .venv/bin/python -m pytest -q tests/test_layering.py    # says which import breaks which rule

A failure names the importing module, the imported one and the rule; fix the import (move the shared
piece down to the layer both can see), never the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "bench"

# Bottom to top. A module may import modules of its own layer or below, never above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("ground floor", ("bench", "bench.vocabulary", "bench.errors", "bench.settings", "bench.safe_files",
                      "bench.json_files", "bench.names", "bench.seeding")),
    ("data", ("bench.datasets", "bench.metrics", "bench.preprocessing")),
    ("suites", ("bench.suites",)),
    ("splits", ("bench.splits",)),
    ("adapters", ("bench.adapters",)),
    ("tuning", ("bench.tuning",)),
    ("records", ("bench.records",)),
    ("execution, analysis, published", ("bench.execution", "bench.analysis", "bench.published")),
    ("workflows and checks", ("bench.workflows", "bench.testing")),
    ("CLI", ("bench.cli",)),
]
# Rules between packages of one layer, or stated on their own because they are the point of the layering.
FORBIDDEN: list[tuple[str, str, str]] = [
    ("bench.adapters", "bench.records", "adapters say how a fit ended with bench.vocabulary, not the records"),
    ("bench.adapters", "bench.execution", "adapters know nothing of jobs and workers"),
    ("bench.adapters", "bench.analysis", "adapters know nothing of statistics"),
    ("bench.adapters", "bench.tuning", "the tuner calls adapters, never the other way round"),
    ("bench.analysis", "bench.execution", "statistics read records; sweeps that compare are bench.workflows"),
    ("bench.analysis", "bench.tuning", "statistics read records, not studies"),
    ("bench.published", "bench.execution", "tables are data; the sweep that reproduces one is bench.workflows"),
    ("bench.records", "bench.suites", "the record store takes the protocol as data"),
]
# Known at the time of writing, inside bench/adapters, which the adapter restructuring (issue 20 item 4)
# removes: once it has, the tests below say to delete the line here.
PENDING_ADAPTER_CYCLES = [
    {"bench.adapters.neural_base", "bench.adapters.torch_training", "bench.adapters.torch_fast"},
]
PENDING_LONG_FUNCTIONS = {"bench/adapters/excelformer.py:_network_classes",
                          "bench/adapters/modern_nca.py:_network_classes"}
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module a dotted import name lands in (`bench.x.y` where y is a function -> `bench.x`)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> set[str]:
    """Every bench module `module` imports (at the top or inside functions; TYPE_CHECKING too)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found |= {_resolve(a.name) for a in node.names if a.name.split(".")[0] == "bench"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "bench":
            base = node.module or ""
            found |= {_resolve(f"{base}.{a.name}") for a in node.names}
    return found - {module}


GRAPH = {m: imports(m) for m in MODULES}


def _package(module: str) -> str:
    """The layer entry a module belongs to: its package (bench.<pkg>) or itself (a top-level module)."""
    return ".".join(module.split(".")[:2])


def _layer(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if _package(module) in members:
            return index
    raise AssertionError(f"{module} is in no layer of tests/test_layering.py: add its package to LAYERS")


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _layer(module)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    return [f"{m} (layer '{LAYERS[_layer(m)][0]}') imports {t} (layer '{LAYERS[_layer(t)][0]}')"
            for m, targets in sorted(graph.items()) for t in sorted(targets) if _layer(t) > _layer(m)]


def rule_violations(graph: dict[str, set[str]]) -> list[str]:
    return [f"{m} imports {t}: {why}" for source, target, why in FORBIDDEN
            for m, targets in sorted(graph.items()) if _package(m) == source
            for t in sorted(targets) if _package(t) == target]


def test_no_module_imports_one_above_it():
    broken = layer_violations(GRAPH)
    assert not broken, "imports against the flow:\n" + "\n".join(broken)


def test_the_stated_rules_hold():
    broken = rule_violations(GRAPH)
    assert not broken, "\n".join(broken)


def test_no_import_cycle():
    cycles = _cycles(GRAPH)
    unexpected = [c for c in cycles if c not in PENDING_ADAPTER_CYCLES]
    assert not unexpected, "import cycles:\n" + "\n".join(" <-> ".join(sorted(c)) for c in unexpected)
    gone = [c for c in PENDING_ADAPTER_CYCLES if c not in cycles]
    assert not gone, f"the adapter cycle {sorted(gone[0])} is gone: delete it from PENDING_ADAPTER_CYCLES"


def test_no_function_over_80_lines():
    long = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT.parent)}:{node.name}"] = lines
    over = {k: v for k, v in long.items() if k not in PENDING_LONG_FUNCTIONS}
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines: {over}"
    gone = PENDING_LONG_FUNCTIONS - set(long)
    assert not gone, f"{sorted(gone)} are short now: delete them from PENDING_LONG_FUNCTIONS"


@pytest.mark.parametrize("source, target, why", FORBIDDEN)
def test_the_checks_see_a_broken_rule(source, target, why):
    """The checks can fail: one import against a stated rule, added to today's graph, is named."""
    victim = next(m for m in sorted(MODULES) if _package(m) == source)
    target_module = next(m for m in sorted(MODULES) if _package(m) == target)
    graph = {**GRAPH, victim: GRAPH[victim] | {target_module}}
    assert rule_violations(graph) == [f"{victim} imports {target_module}: {why}"]


def test_the_checks_see_an_upward_import_and_a_cycle():
    graph = {**GRAPH, "bench.vocabulary": {"bench.cli.main"}}
    assert layer_violations(graph) == ["bench.vocabulary (layer 'ground floor') imports bench.cli.main (layer 'CLI')"]
    assert {"bench.vocabulary", "bench.cli.main"} <= next(c for c in _cycles(graph) if "bench.vocabulary" in c)
