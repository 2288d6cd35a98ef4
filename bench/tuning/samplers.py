"""The search strategies a job can declare (`--sampler`), each with its pruning rule.

  tpe     Optuna's TPE, seeded with the job seed, with median pruning on the intermediate validation
          values adapters report (per boosting-round block / epoch) after 5 unpruned trials.
  random  Optuna's RandomSampler, seeded with the job seed, and no pruning: every configuration is
          trained to its own end, the random-search protocol of Grinsztajn et al. 2022 and TabArena
          (Erickson et al. 2025) that published comparisons of GBDTs and neural models use.

Both enqueue the adapter's defaults as trial 0 (bench.tuning.study). TPE samples its first 10 trials
(Optuna's n_startup_trials, the defaults trial included) with a RandomSampler of the same seed, so
trials 1-9 draw exactly the configurations random search draws: below 11 trials "tpe" is random
search plus pruning. The sampler is part of a run's identity and of every record's `budget` (with
the pruner it implies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    import optuna

Sampler = Literal["tpe", "random"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)
PRUNER_OF: dict[str, str] = {"tpe": "median", "random": "none"}


def check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")
    return name


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    import optuna  # here, not at the top: the sweep config imports this module for its names

    if check_sampler(name) == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    import optuna

    if PRUNER_OF[check_sampler(name)] == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5)
