"""The declared tuning effort of a sweep's jobs: one validated value that travels from the sweep config
to each job and its tuning session (bench.execution.sweep.SweepConfig.budget -> Job.budget ->
bench.tuning.study.TuningRequest.budget), and into every record (`budget`).

What the budget decides in one place: whether a job tunes and which variants it reports. A model with
nothing to tune (no search space) gets a defaults-only budget (`for_model`): more trials would repeat
the defaults, so it reports the default variant only.

A light module (no Optuna): the sweep config and the records import it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.errors import BenchError, check_choice, check_int, check_positive
from bench.tuning.samplers import PRUNER_OF, Sampler
from bench.vocabulary import Variant

# The variants of a tuning job, in the order of its plan and records; a job that does not tune has the first.
TUNING_JOB_VARIANTS: tuple[str, ...] = (Variant.DEFAULT.value, Variant.TUNED.value, Variant.ENSEMBLE.value)


@dataclass(frozen=True)
class Budget:
    """trials: every trial including the defaults trial (1 = defaults only), or None for as many as
    `seconds` allows; seconds: wall clock of the trials after the defaults trial (None = none); sampler:
    bench.tuning.samplers (with its pruner); inner_folds: 1 = holdout validation, K > 1 = inner K-fold
    cross-validation (bench.tuning.crossfit); time_limit: the job's hard limit in seconds (--time-limit,
    None = none), before which every fit stops with its best state (bench.tuning.study); pack: trials
    asked for and trained together as one packed model by models that can (--pack, bench.tuning.packing;
    1 = one at a time).

    Checked when made: BenchError naming the option as the command line spells it, and the value."""

    trials: int | None = 1
    seconds: float | None = None
    sampler: Sampler = "tpe"
    inner_folds: int = 1
    time_limit: float | None = None
    pack: int = 1

    def __post_init__(self) -> None:
        if self.trials is None:
            if self.seconds is None:
                raise BenchError("--trials none (as many trials as fit) needs --tune-seconds to bound them")
        else:
            check_int("--trials", self.trials, 1)
        check_positive("--tune-seconds", self.seconds)
        check_choice("--sampler", self.sampler, Sampler)
        check_int("--inner-folds", self.inner_folds, 1)
        check_positive("--time-limit", self.time_limit)
        check_int("--pack", self.pack, 1)

    def for_model(self, tunable: bool) -> Budget:
        """The budget a model gets: this one, or the defaults trial only when it has nothing to tune."""
        return self if tunable or self.trials == 1 else replace(self, trials=1)

    @property
    def tunes(self) -> bool:
        """Whether trials beyond the defaults may run (and the tuned and ensemble variants are reported)."""
        return self.trials is None or self.trials > 1

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants a job with this budget reports (one record each)."""
        return TUNING_JOB_VARIANTS if self.tunes else TUNING_JOB_VARIANTS[:1]

    def record(self) -> dict:
        """What every record says about the budget it was made under."""
        return {"trials": self.trials, "seconds": self.seconds, "sampler": self.sampler,
                "pruner": PRUNER_OF.get(self.sampler), "inner_folds": self.inner_folds, "time_limit": self.time_limit,
                "pack": self.pack}

    def settings(self) -> dict:
        """The budget as a run's settings name it (run.json, job keys: bench.records.identity)."""
        return {"trials": self.trials, "tune_seconds": self.seconds, "sampler": self.sampler,
                "inner_folds": self.inner_folds, "time_limit": self.time_limit, "pack": self.pack}
