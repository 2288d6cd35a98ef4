"""Where a job's tuning stands, kept with its study, so that a process resuming it continues it exactly.

A job killed mid-tuning (kill -9 of the sweep, a lost node) is run again by the next `bench run` of the
same command; its study holds what the killed process finished. Three things make the resumed tuning
the one an uninterrupted run would have done:

- Trials cut off by the kill. The trial that was running stays RUNNING in the storage forever. The
  resuming process puts it back in the queue (WAITING) under its own number: it is run again first,
  with the parameters it had already drawn, and counts `restarts` (a trial attribute, in the record's
  trials). Every later trial keeps the number (and so the sampler seed, bench.tuning.samplers) it has in
  an uninterrupted run. The values the killed run had reported to the pruner stay in the storage (Optuna
  cannot delete them); the re-run does not report those steps again, and as a deterministic fit reports
  the same values, the pruner decides as it did. A trial whose process died MAX_RESTARTS times is marked
  failed instead (a configuration that kills its process, e.g. by exhausting memory, must not take the
  job down for ever).
- The tuning budget (`Budget.seconds`). Each process runs the tuning clock only while it tunes; the
  seconds it ran are saved with the study after every trial and the next process gets what is left. The
  part of a trial cut off by a kill is lost with its process and not counted (it is re-run, and that run
  counts).
- What the record says: `tuning_seconds` sums every process's tuning, and `resumes` is how many times a
  later process took the study up again.

All of it is per tuner: named tuners sharing a study (bench.tuning.study.tune) each keep their own.
"""

from __future__ import annotations

import time

import optuna

MAX_RESTARTS = 2
State = optuna.trial.TrialState


class Clock:
    """The tuning budget's clock (`seconds`, of which `spent` were used by earlier processes), started
    once, when the first non-default trial of this process is about to run; and the job's time limit
    (`limit`, a time.monotonic() value or None), which bounds every trial."""

    def __init__(self, seconds: float | None, limit: float | None = None, spent: float = 0.0):
        self.seconds, self.limit, self.spent = seconds, limit, spent
        self.started: float | None = None
        self.deadline: float | None = None

    def start(self) -> float | None:
        """Start the tuning clock (once); the deadline of a tuning trial."""
        if self.started is None:
            self.started = time.monotonic()
            if self.seconds:
                self.deadline = self.started + max(0.0, self.seconds - self.spent)
        return self.end()

    def end(self) -> float | None:
        """The tuning clock's end or the job's limit, the earlier (None: neither)."""
        ends = [t for t in (self.deadline, self.limit) if t is not None]
        return min(ends) if ends else None

    def left(self) -> float | None:
        end = self.end()
        return None if end is None else end - time.monotonic()

    def used(self) -> float:
        """Seconds on the tuning clock so far, earlier processes included."""
        return self.spent + (time.monotonic() - self.started if self.started is not None else 0.0)


class Progress:
    """This tuner's progress, as the study's user attribute `progress:<tuner>`:
    {"processes": processes that tuned the study, "clock_seconds": seconds on the tuning clock,
    "tuning_seconds": wall seconds spent tuning}, all processes together."""

    def __init__(self, study: optuna.Study, tuner: str, budget_seconds: float | None, limit: float | None):
        self.study, self.key = study, f"progress:{tuner}"
        before = study.user_attrs.get(self.key) or {}
        self.processes = int(before.get("processes", 0)) + 1
        self.tuning_before = float(before.get("tuning_seconds", 0.0))
        self.clock = Clock(budget_seconds, limit, float(before.get("clock_seconds", 0.0)))
        self.began = time.perf_counter()
        self.save()  # a process that dies before its first trial ends still counts as one

    @property
    def resumes(self) -> int:
        return self.processes - 1

    @property
    def tuning_seconds(self) -> float:
        return self.tuning_before + time.perf_counter() - self.began

    def save(self, *_ignored) -> None:
        """Persist where this tuner stands (also an Optuna callback: called after every trial)."""
        self.study.set_user_attr(self.key, {"processes": self.processes, "clock_seconds": self.clock.used(),
                                            "tuning_seconds": self.tuning_seconds})


def reopen_interrupted(study: optuna.Study, tuner: str) -> dict[int, set[int]]:
    """Put this tuner's trials that a killed process left RUNNING back in the queue (module docstring);
    returns, per trial put back, the steps it had already reported to the pruner.

    Only a study's sole tuner (tuner "") or a tuner whose name no live process shares may call this:
    a RUNNING trial is then certainly orphaned (one `bench run` holds a run folder, one worker a job)."""
    storage = study._storage  # Optuna has no public call that puts a trial back in the queue
    reported: dict[int, set[int]] = {}
    for trial in study.get_trials(deepcopy=False, states=(State.RUNNING,)):
        if trial.user_attrs.get("tuner", "") != tuner:
            continue
        restarts = int(trial.user_attrs.get("restarts", 0)) + 1
        if restarts > MAX_RESTARTS:
            storage.set_trial_user_attr(trial._trial_id, "error",
                                        f"its process died {restarts} times while it ran (killed, or out of "
                                        f"memory); not run again")
            study.tell(trial.number, state=State.FAIL)
            continue
        storage.set_trial_user_attr(trial._trial_id, "restarts", restarts)
        storage.set_trial_state_values(trial._trial_id, State.WAITING)
        reported[trial.number] = set(trial.intermediate_values)
    return reported
