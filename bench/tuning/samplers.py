"""The search strategies a job can declare (`--sampler`), each with its pruning rule.

  tpe     Optuna's TPE with median pruning on the intermediate validation values adapters report
          (per boosting-round block / epoch) after 5 unpruned trials.
  random  Optuna's RandomSampler and no pruning: every configuration is trained to its own end, the
          random-search protocol of Grinsztajn et al. 2022 and TabArena (Erickson et al. 2025) that
          published comparisons of GBDTs and neural models use.

Seeding, per trial: the draw for trial n comes from a sampler seeded with
bench.seeding.trial_sampler_seed(job seed, n, tuner), made afresh for that trial. A draw then depends
only on the job seed, the trial's number and the study's finished trials (TPE's history), never on how
many draws one process made before: a study resumed after a kill draws exactly what the uninterrupted
run drew (bench.tuning.study re-runs the trial the kill interrupted under its own number).

Both enqueue the adapter's defaults as trial 0 (bench.tuning.study). TPE samples its first 10 trials
(Optuna's n_startup_trials, the defaults trial included) with a RandomSampler of the trial's seed, so
trials 1-9 draw exactly the configurations random search draws: below 11 trials "tpe" is random
search plus pruning. The sampler is part of a run's identity and of every record's `budget` (with
the pruner it implies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, get_args

from bench.seeding import trial_sampler_seed

if TYPE_CHECKING:
    import optuna

Sampler = Literal["tpe", "random"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)
PRUNER_OF: dict[str, str] = {"tpe": "median", "random": "none"}


def check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")
    return name


def make_sampler(name: str, seed: int, tuner: str = "") -> optuna.samplers.BaseSampler:
    """The study's sampler: `name`'s draws for trial n seeded from (seed, n, tuner) (module docstring)."""
    check_sampler(name)
    return _seeded_per_trial(name, seed, tuner)


def _plain_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    import optuna  # here, not at the top: the sweep config imports this module for its names

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _seeded_per_trial(name: str, seed: int, tuner: str) -> optuna.samplers.BaseSampler:
    import optuna

    class SeededPerTrial(optuna.samplers.BaseSampler):
        """Delegates every call about trial n to a `name` sampler seeded for trial n (made once per
        trial): TPE and random sampling keep no state between trials but their random stream."""

        def __init__(self) -> None:
            self._number: int | None = None
            self._inner = _plain_sampler(name, seed)

        def _for(self, trial: optuna.trial.FrozenTrial) -> optuna.samplers.BaseSampler:
            if trial.number != self._number:
                self._number, self._inner = trial.number, _plain_sampler(name, trial_sampler_seed(seed, trial.number,
                                                                                                   tuner))
            return self._inner

        def infer_relative_search_space(self, study, trial):
            return self._for(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
            return self._for(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
            return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

        def before_trial(self, study, trial) -> None:
            self._for(trial).before_trial(study, trial)

        def after_trial(self, study, trial, state, values) -> None:
            self._for(trial).after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:
            pass  # Optuna reseeds for parallel threads; every trial's seed is fixed by its number

    return SeededPerTrial()


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    import optuna

    if PRUNER_OF[check_sampler(name)] == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5)
