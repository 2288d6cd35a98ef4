"""Search spaces as data.

An adapter declares `search_space = {"learning_rate": FloatParam(1e-3, 0.3, log=True), ...}`; this
module turns such a dict into Optuna suggestions and validates sampled or user-given values.
Keeping spaces as data (not code inside an objective) lets the harness print, check and enqueue them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Union

if TYPE_CHECKING:  # only in annotations: the sweep's parent process (planning, records) never imports Optuna
    import optuna


@dataclass(frozen=True)
class FloatParam:
    low: float
    high: float
    log: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high


@dataclass(frozen=True)
class IntParam:
    low: int
    high: int
    log: bool = False
    step: int = 1  # e.g. 8 for attention widths that must divide into 8 heads (Optuna: not with log)

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: Any) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high
                and (value - self.low) % self.step == 0)


@dataclass(frozen=True)
class CategoricalParam:
    choices: tuple

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def contains(self, value: Any) -> bool:
        return value in self.choices


Param = Union[FloatParam, IntParam, CategoricalParam]


def suggest_params(trial: optuna.Trial, space: Mapping[str, Param]) -> dict[str, Any]:
    return {name: spec.suggest(trial, name) for name, spec in space.items()}


def invalid_values(space: Mapping[str, Param], values: Mapping[str, Any]) -> list[str]:
    """Names of values outside their declared range; empty when all are valid."""
    return [k for k, v in values.items() if k in space and not space[k].contains(v)]


def describe(space: Mapping[str, Param]) -> dict[str, str]:
    out = {}
    for name, spec in space.items():
        if isinstance(spec, CategoricalParam):
            out[name] = "one of " + ", ".join(map(str, spec.choices))
        else:
            out[name] = f"{spec.low}..{spec.high}" + (" (log)" if spec.log else "")
    return out
