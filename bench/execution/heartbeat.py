"""What a running sweep says while it runs: a line per finished trial, and an ETA from per-model medians.

The trial line (`trial_line`) is written by the worker into the job's log (bench.execution.joblog) and
sent to the parent, which prints it (bench run): a long job is never silent. It costs one line and one
small message per trial.

The ETA (`Eta`, `eta_seconds`) adds up, for every job still to run, the median time of the jobs of its
model finished so far (a model with none yet: the median of all finished jobs), divided by the number of
workers. A global rate (elapsed / jobs done) swings with the order of the jobs: ten fast linear jobs
first promise a short sweep, and the first slow MLP job then triples the estimate.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from statistics import median


def trial_line(job_id: str, trial: Mapping, job_seconds: float) -> str:
    """`<job> trial <n> [defaults]: <value> (<end>) in <s>s; job <s>s` for one finished trial
    (bench.tuning.trials summary: number, value, end, seconds, is_default)."""
    value = trial.get("value")
    shown = f"{value:.6g}" if isinstance(value, (int, float)) and math.isfinite(value) else "no value"
    seconds = trial.get("seconds")
    took = f" in {seconds:.1f}s" if isinstance(seconds, (int, float)) else ""
    kind = " (defaults)" if trial.get("is_default") else ""
    return (f"{job_id} trial {trial.get('number')}{kind}: {shown} ({trial.get('end')}){took}; "
            f"job {job_seconds:.1f}s")


def eta_seconds(durations: Mapping[str, Sequence[float]], remaining: Iterable[str], workers: int = 1) -> float | None:
    """Seconds until the `remaining` jobs (their model names, one per job) are done on `workers` workers,
    from the finished jobs' `durations` per model; None when no job has finished yet."""
    every = [d for values in durations.values() for d in values]
    if not every:
        return None
    fallback = median(every)
    medians = {model: median(values) for model, values in durations.items() if values}
    total = sum(medians.get(model, fallback) for model in remaining)
    return total / max(1, workers)


class Eta:
    """The ETA of a running sweep: `done(model, records)` as each job finishes, `seconds()` at any time."""

    def __init__(self, pending_models: Iterable[str], workers: int = 1):
        self.remaining = Counter(pending_models)
        self.workers = workers
        self.durations: dict[str, list[float]] = defaultdict(list)

    def done(self, model: str, records: Iterable[Mapping]) -> None:
        self.remaining[model] = max(0, self.remaining[model] - 1)
        seconds = [r["job_seconds"] for r in records if isinstance(r.get("job_seconds"), (int, float))]
        if seconds:  # failure records (a crash, a time limit) carry none
            self.durations[model].append(max(seconds))

    def pending(self) -> int:
        """Jobs not finished yet."""
        return sum(self.remaining.values())

    def seconds(self) -> float | None:
        return eta_seconds(self.durations, self.remaining.elements(), self.workers)
