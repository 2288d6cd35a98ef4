"""Strict JSON: what every JSON file the harness writes goes through (records, run.json, plan.json,
dataset metadata, suite caches).

A ground-floor module: it imports nothing from bench but errors and safe_files, so the data, suite and
record packages can all use it without importing each other.

JSON has no NaN or Infinity: a bare NaN token makes a file unreadable to strict parsers (other
languages, jq, browsers), so every non-finite float is written as null.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.safe_files import write_text_atomic


def strict_json(obj: Any) -> Any:
    """obj with every non-finite float replaced by None (numpy scalars become Python numbers first)."""
    if isinstance(obj, np.generic):  # numpy scalars (float32 is no Python float)
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def json_text(obj: Any) -> str:
    """obj as strict JSON text (numpy arrays and scalars, paths as plain values)."""
    return json.dumps(strict_json(obj), indent=1, default=_json_default, allow_nan=False)


def write_json_atomic(path: str | Path, obj: Any, root: str | Path | None = None) -> Path:
    """Strict JSON, written atomically (bench.safe_files: with `root`, never outside it or through a link)."""
    return write_text_atomic(path, json_text(obj), root)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")
