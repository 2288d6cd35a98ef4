"""The vocabulary every stage shares: statuses, trial end reasons, variants.

A ground-floor module (it imports nothing from bench): adapters, tuning, execution, the record store
and analysis all take these names from here, so a status is never a string literal elsewhere and no
adapter needs the record package to say how a fit ended.

Statuses:
    ok             the variant finished; test metrics present
    failed         the model raised, returned non-finite values, or no trial finished
    timeout        the job ran past the hard --time-limit
    crashed        the worker process died (signal, native crash)
    out_of_memory  the job went over --memory-limit (or Ray's memory monitor killed it)
    skipped        the model declared it cannot take this dataset (task type, size), or the dataset
                   is too small for the protocol: left out, never a loss
    unavailable    this environment lacks what the model needs (optional library, weights): left
                   out exactly like skipped, and re-run when the same sweep runs again

Variants (one record per job and variant): default (the defaults trial), tuned (the best trial on
validation), ensemble (a Caruana ensemble of the job's trials; an ok one holds `params.weights` and an
`ensemble` object naming the members). The cross-model ensemble is model CROSS_MODEL, variant ensemble.

Trial end reasons (each trial of a record's `trials` list says how it ended in `end`):
    early_stopped   validation stopped improving (patience / early-stopping rounds)
    converged       the learner finished on its own (a solver converged, a forest grew all trees)
    max_iterations  it used its whole cap of rounds / epochs / trees without early stopping
    deadline        the tuning budget's clock cut it (it keeps its best state so far)
    diverged        non-finite outputs; the best epoch before that is kept
    pruned          the pruner stopped it (Optuna MedianPruner)
    failed          it raised
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    OUT_OF_MEMORY = "out_of_memory"
    SKIPPED = "skipped"
    UNAVAILABLE = "unavailable"


# A failure says something about the model (it counts as the worst entry on that dataset); a record
# that was not run says nothing about it and is left out of every statistic.
FAILURES = frozenset({Status.FAILED, Status.TIMEOUT, Status.CRASHED, Status.OUT_OF_MEMORY})
NOT_RUN = frozenset({Status.SKIPPED, Status.UNAVAILABLE})


class TrialEnd(StrEnum):
    EARLY_STOPPED = "early_stopped"
    CONVERGED = "converged"
    MAX_ITERATIONS = "max_iterations"
    DEADLINE = "deadline"
    DIVERGED = "diverged"
    PRUNED = "pruned"
    FAILED = "failed"


class Variant(StrEnum):
    DEFAULT = "default"  # the adapter's defaults (trial 0), its own budget track
    TUNED = "tuned"  # the best trial on validation
    # Post-hoc ensemble (Caruana et al. 2004) of the job's trials, selected on validation; TabArena's
    # "tuned + ensembled" (bench.tuning.ensemble). Also the one variant of the cross-model entry.
    ENSEMBLE = "ensemble"


# Variants whose records come from the whole tuning (truncation counts and only_defaults apply).
TUNING_VARIANTS = frozenset({Variant.TUNED, Variant.ENSEMBLE})
# The model name of the cross-model ensemble: per dataset split, one selection over every model's
# trials (bench.execution.ensembles); its records have variant `ensemble` and family `ensemble`.
CROSS_MODEL = "ensemble_all"
