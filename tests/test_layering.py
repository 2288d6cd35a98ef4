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
    ("data", ("bench.datasets", "bench.metrics", "bench.preprocessing", "bench.meta_features")),
    ("suites", ("bench.suites",)),
    ("splits", ("bench.splits", "bench.train_sizes")),
    ("adapters", ("bench.adapters",)),
    ("tuning", ("bench.tuning",)),
    ("records", ("bench.records",)),
    ("execution, analysis, published, explain", ("bench.execution", "bench.analysis", "bench.published",
                                                  "bench.explain")),
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
    ("bench.explain", "bench.execution", "explain refits a record's configuration from the run folder, not via jobs"),
    ("bench.analysis", "bench.explain", "the report reads the files bench explain wrote; it never fits a model"),
]
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


def _bench_targets(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {_resolve(a.name) for a in node.names if a.name.split(".")[0] == "bench"}
    if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "bench":
        return {_resolve(f"{node.module}.{a.name}") for a in node.names}
    return set()


def imports(module: str) -> set[str]:
    """Every bench module `module` imports (at the top or inside functions; TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        found |= _bench_targets(node)
    return found - {module}


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def import_time_imports(module: str) -> set[str]:
    """The bench modules importing `module` executes: top-level imports (also inside try / if), not those in
    functions (a light module's deferred import of its torch sibling runs only when a fit needs it) nor
    under TYPE_CHECKING (annotations only)."""
    found: set[str] = set()
    todo = list(ast.parse(MODULES[module].read_text()).body)
    while todo:
        node = todo.pop()
        found |= _bench_targets(node)
        if isinstance(node, (ast.If, ast.Try)) and not _is_type_checking(node):
            todo += [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                     *(s for h in getattr(node, "handlers", []) for s in h.body)]
    return found - {module}


GRAPH = {m: imports(m) for m in MODULES}
IMPORT_TIME_GRAPH = {m: import_time_imports(m) for m in MODULES}


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
    """Layer rules count every import; cycles count what runs at import time, since a deferred import in a
    function (the light adapter module -> its network) cannot deadlock an import."""
    cycles = _cycles(IMPORT_TIME_GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(sorted(c)) for c in cycles)


def test_no_function_over_80_lines():
    long = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT.parent)}:{node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


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


def test_a_top_level_import_of_a_deferred_sibling_is_a_cycle():
    """The light GrowNet module imports its network inside a function; at the top it would be a cycle."""
    light, heavy = "bench.adapters.models.grownet.adapter", "bench.adapters.models.grownet.network"
    assert heavy in GRAPH[light] and heavy not in IMPORT_TIME_GRAPH[light]
    graph = {**IMPORT_TIME_GRAPH, light: IMPORT_TIME_GRAPH[light] | {heavy}}
    assert {light, heavy} in _cycles(graph)
