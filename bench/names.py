"""Names that become folder and file names: suites (results/<suite>), datasets (data/<dataset>,
records/<dataset>/...), models (records/<dataset>/<model>/...).

A name from a suite file or a manifest is checked, so that `../../x` or `a/b` is a clear error
instead of a write outside the run folder; a name taken from a source the user does not control
(OpenML's dataset names) is made safe instead.
"""

from __future__ import annotations

import re

from bench.errors import BenchError

_SAFE = re.compile(r"[A-Za-z0-9_.-]{1,200}")
RULE = "letters, digits, '.', '_' and '-' only, at most 200 characters, not starting with '.'"


def name_problem(name) -> str | None:
    """Why `name` cannot be a folder name (None when it can)."""
    if not isinstance(name, str):
        return f"expected a string, got {type(name).__name__}"
    if not _SAFE.fullmatch(name) or name.startswith("."):
        return f"{name!r} is not a safe name: it becomes a folder name, so use {RULE}"
    return None


def check_name(kind: str, name) -> str:
    """`name` unchanged, or BenchError naming the kind of name ("dataset", "suite", "model")."""
    problem = name_problem(name)
    if problem:
        raise BenchError(f"{kind} name {problem}")
    return name


def safe_name(text: str) -> str:
    """A safe name made from arbitrary text (unsafe characters become '_')."""
    out = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).lstrip(".")[:200]
    return out or "unnamed"
