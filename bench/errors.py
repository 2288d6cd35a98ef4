"""User-facing errors: the CLI prints their message (no traceback) and exits with code 2."""

from __future__ import annotations

import difflib
import math
from typing import get_args


class BenchError(Exception):
    """Bad input or an unavailable resource, explained in words a user can act on."""


class SuiteFormatError(BenchError):
    """A suite file is malformed; the message names the file and the field."""

    def __init__(self, path, field: str, problem: str):
        self.path, self.field, self.problem = path, field, problem
        super().__init__(f"{path}: field '{field}': {problem}")


class DataUnavailableError(BenchError):
    """A dataset, task or suite cannot be loaded (offline, missing cache, missing file)."""


def did_you_mean(name: str, choices) -> str:
    """" Did you mean 'x'?" naming the closest of `choices` (difflib), or "" when none is close: for
    messages about an unknown name (a model, a suite, an entry)."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 dataset', '2 datasets' (words: an irregular plural)."""
    return f"{n} {word if n == 1 else words or word + 's'}"


# Checks of options where they enter (the sweep config, the tuning budget): the message names the option as
# the command line spells it and the value.

def check_int(option: str, value, minimum: int, alternative: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BenchError(f"{option} must be an integer >= {minimum}{' ' + alternative if alternative else ''}, "
                         f"got {value!r}")


def check_positive(option: str, value, unit: str = "seconds") -> None:
    """None (no limit) or a positive, finite number."""
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise BenchError(f"{option} must be a positive number of {unit} or 'none', got {value!r}")


def check_choice(option: str, value, choices) -> None:
    """`choices`: a Literal type or a sequence of allowed values."""
    allowed = get_args(choices) or tuple(choices)
    if value not in allowed:
        raise BenchError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
