"""What a job costs, measured in run folders' records, and the stated model that carries the measurements
to other budgets and datasets (`bench plan`, bench.workflows.plan).

A finished job's records say (bench.records.schema): each trial's wall seconds (`trials[].seconds`, the
defaults trial flagged `is_default`), the job's wall seconds in its worker (`job_seconds`), the chosen
models' fit + predict seconds (`fit_seconds`, `predict_seconds`, per model seed in `test_by_seed`), the
inner folds and the data's shape. From them, per job (JobCost):

    defaults   the defaults trial's seconds
    trial      the mean seconds of the other trials (pruned ones as they ran); unknown for a job that ran
               only its defaults trial
    refit      the seconds one more model seed costs: the default and the tuned variants' fit + predict (the
               mean over their extra seeds, or the chosen model's with one seed)
    overhead   job_seconds - every trial - its extra seeds' refits (data loading, preprocessing,
               ensembles, predictions files), at least 0

The cost model (CostModel.seconds) of a job under a budget:

    seconds = overhead + defaults + tuning + (seeds - 1) * refit,   at most the job's --time-limit
    tuning  = (trials - 1) * trial, at most --tune-seconds (trials none: --tune-seconds)
    trial seconds (defaults, trial) scale with inner folds: x inner_folds / the measured inner_folds

where `trial` is the defaults trial's seconds when no tuned trial was measured. With --train-sizes a job's
rows are the dataset's scaled by the share of its split's learning rows the size takes
(bench.train_sizes.learning_share), and each size is measured apart ("adult@0.25", cost_key): the costs of
one size are never averaged with another's. A (model, dataset) measured
on several splits or runs takes the mean of each part. A dataset the model was not measured on gets its
parts scaled by size = rows x features x classes (classes: 1 for binary and regression, as a GBDT
grows one tree per class per round): defaults = a * size^b, fitted by least squares on log seconds
against log size over the model's measured datasets (b = 1 with one measured dataset or one size,
b clipped to [0, 1.5]), trial and refit at the model's median ratio to defaults, overhead the model's
median. Measurements on one device stand for the other when the model has none there (said in `notes`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from bench.train_sizes import learning_share
from bench.vocabulary import Status, Variant

EXPONENT_RANGE = (0.0, 1.5)


def data_size(n_rows: float, n_features: int, n_classes: int, task_type: str) -> float:
    """rows x features x classes (classes counted for multiclass only): what the cost model scales by."""
    classes = n_classes if task_type == "multiclass" and n_classes > 2 else 1
    return float(max(1, n_rows) * max(1, n_features) * classes)


def cost_key(dataset: str, train_size: str | None) -> str:
    """What a job's costs are measured and looked up under: its dataset, with a training-set size other than
    the whole split appended ("adult@0.25")."""
    return dataset if train_size in (None, "", "1") else f"{dataset}@{train_size}"


def record_size(r: dict) -> float:
    """data_size of a record's job: with --train-sizes, the dataset's rows scaled by the share of the split's
    learning rows (all rows but the test part's) the size took."""
    n_rows = int(r.get("n_rows") or 0)
    n_test = int(r.get("n_test") or 0)
    share = learning_share(r.get("train_size"), n_rows - n_test)
    return data_size(n_rows * share, r.get("n_features") or 0, r.get("n_classes") or 0, r.get("task_type") or "")


@dataclass(frozen=True)
class JobCost:
    """One finished job's measured parts (seconds; see the module doc)."""

    model: str
    dataset: str
    device: str
    size: float
    inner_folds: int
    defaults: float
    trial: float | None
    refit: float
    overhead: float
    job_seconds: float
    threads: int = 1
    trial_cpu: float | None = None  # the trials' process CPU seconds (None: not recorded)
    trial_wall: float = 0.0  # and their wall seconds

    @property
    def pace(self) -> float | None:
        """CPU seconds per wall second per thread of its trials: about 1 on an idle machine with compute-bound
        fits, less when the machine was shared or a fit waits (I/O, Python overhead)."""
        if self.trial_cpu is None or self.trial_wall <= 0:
            return None
        return self.trial_cpu / (self.trial_wall * max(1, self.threads))


def measure(records: list[dict]) -> list[JobCost]:
    """A JobCost per job of one run whose records are ok and hold its trials (failed and not-run jobs are
    left out)."""
    by_job: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in records:  # (one run's records: a job id names one job there)
        if r.get("status") == Status.OK and r.get("model") and r.get("variant") != Variant.ENSEMBLE:
            by_job[str(r["job_id"])][str(r["variant"])] = r
    out = []
    for variants in by_job.values():
        cost = _job_cost(variants)
        if cost is not None:
            out.append(cost)
    return out


def _job_cost(variants: dict[str, dict]) -> JobCost | None:
    r = variants.get(Variant.TUNED) or variants.get(Variant.DEFAULT)
    trials = [t for t in (r or {}).get("trials") or [] if isinstance(t.get("seconds"), (int, float))]
    defaults = [t["seconds"] for t in trials if t.get("is_default")]
    if r is None or not defaults or not isinstance(r.get("job_seconds"), (int, float)):
        return None
    others = [t["seconds"] for t in trials if not t.get("is_default")]
    refit, refits = _refits(variants)
    overhead = max(0.0, r["job_seconds"] - sum(t["seconds"] for t in trials) - refits)
    return JobCost(str(r["model"]), cost_key(str(r["dataset"]), r.get("train_size")), str(r.get("device") or "cpu"),
                   record_size(r), int(r.get("inner_folds") or 1), float(defaults[0]),
                   float(np.mean(others)) if others else None,
                   float(refit), float(overhead), float(r["job_seconds"]), int(r.get("threads") or 1),
                   _known_sum([t.get("cpu_seconds") for t in trials]), float(sum(t["seconds"] for t in trials)))


def _known_sum(values: list) -> float | None:
    numbers = [v for v in values if isinstance(v, (int, float))]
    return float(sum(numbers)) if numbers else None


def _refits(variants: dict[str, dict]) -> tuple[float, float]:
    """(seconds of one more model seed, seconds the job's extra seeds took): per variant, the fit + predict
    seconds of its seeds after the first (test_by_seed; the first seed's model is the chosen trial's), or
    with one seed the chosen model's fit + predict seconds."""
    one = spent = 0.0
    for v in variants.values():
        extra = [s for s in (v.get("test_by_seed") or [])[1:] if isinstance(s.get("fit_seconds"), (int, float))]
        seconds = [s["fit_seconds"] + (s.get("predict_seconds") or 0.0) for s in extra]
        one += float(np.mean(seconds)) if seconds else (v.get("fit_seconds") or 0.0) + (v.get("predict_seconds") or 0.0)
        spent += sum(seconds)
    return one, spent


@dataclass(frozen=True)
class Parts:
    """A job's expected parts, per inner fold for the trials (the measured inner folds divided out)."""

    defaults: float
    trial: float
    refit: float
    overhead: float
    source: str  # "measured" (this model on this dataset) or "scaled" (from the model's other datasets)


@dataclass
class CostModel:
    """The measured costs, by model, device and dataset, and the per-model size fit (see the module doc)."""

    costs: list[JobCost]
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by: dict[tuple[str, str], dict[str, list[JobCost]]] = defaultdict(lambda: defaultdict(list))
        for c in self.costs:
            self._by[(c.model, c.device)][c.dataset].append(c)
        self._fits: dict[tuple[str, str], tuple[float, float, float, float, float]] = {}

    def models(self) -> set[str]:
        return {model for model, _ in self._by}

    def threads(self) -> set[int]:
        """The thread counts the measured jobs ran with."""
        return {c.threads for c in self.costs}

    def pace(self) -> float | None:
        """The median JobCost.pace of the measured jobs (None when none recorded CPU seconds)."""
        paces = [c.pace for c in self.costs if c.pace is not None]
        return float(np.median(paces)) if paces else None

    def parts(self, model: str, dataset: str, size: float, device: str = "cpu") -> Parts | None:
        """The expected parts of `model` on `dataset` (of `size`) on `device`; None when never measured."""
        key = (model, device)
        if key not in self._by:
            other = next((k for k in self._by if k[0] == model), None)
            if other is None:
                return None
            note = f"{model}: no measurement on {device}; its {other[1]} measurements stand for it"
            if note not in self.notes:
                self.notes.append(note)
            key = other
        measured = self._by[key].get(dataset)
        if measured:
            return _mean_parts(measured)
        a, b, trial_ratio, refit_ratio, overhead = self._fit(key)
        defaults = math.exp(a) * size ** b
        return Parts(defaults, defaults * trial_ratio, defaults * refit_ratio, overhead, "scaled")

    def exponent(self, model: str, device: str = "cpu") -> float | None:
        """The fitted size exponent b of a model (None when never measured)."""
        return self._fit((model, device))[1] if (model, device) in self._by else None

    def _fit(self, key: tuple[str, str]) -> tuple[float, float, float, float, float]:
        if key not in self._fits:
            per_dataset = [_mean_parts(c) for c in self._by[key].values()]
            sizes = np.log([c[0].size for c in self._by[key].values()])
            seconds = np.log([max(p.defaults, 1e-3) for p in per_dataset])
            b = 1.0
            if len(set(np.round(sizes, 9))) >= 2:
                b = float(np.clip(np.polyfit(sizes, seconds, 1)[0], *EXPONENT_RANGE))
            a = float(np.mean(seconds - b * sizes))
            trial = float(np.median([p.trial / max(p.defaults, 1e-3) for p in per_dataset]))
            refit = float(np.median([p.refit / max(p.defaults, 1e-3) for p in per_dataset]))
            self._fits[key] = (a, b, trial, refit, float(np.median([p.overhead for p in per_dataset])))
        return self._fits[key]


def _mean_parts(costs: list[JobCost]) -> Parts:
    """The mean of each part over a (model, dataset)'s measured jobs, trials per inner fold."""
    defaults = float(np.mean([c.defaults / c.inner_folds for c in costs]))
    tuned = [c.trial / c.inner_folds for c in costs if c.trial is not None]
    return Parts(defaults, float(np.mean(tuned)) if tuned else defaults, float(np.mean([c.refit for c in costs])),
                 float(np.mean([c.overhead for c in costs])), "measured")


@dataclass(frozen=True)
class JobBudget:
    """What the cost model needs of a job's budget (bench.tuning.budget.Budget for the model, and --seeds)."""

    trials: int | None
    tune_seconds: float | None
    inner_folds: int
    time_limit: float | None
    seeds: int


def job_seconds(parts: Parts, budget: JobBudget) -> tuple[float, float]:
    """(the job's expected wall seconds, its defaults trial's) under the budget (see the module doc)."""
    defaults = parts.defaults * budget.inner_folds
    trial = parts.trial * budget.inner_folds
    tuning = math.inf if budget.trials is None else (budget.trials - 1) * trial
    if budget.tune_seconds is not None:
        tuning = min(tuning, budget.tune_seconds)
    total = parts.overhead + defaults + tuning + (budget.seeds - 1) * parts.refit
    if budget.time_limit is not None:
        total = min(total, budget.time_limit)
    return total, defaults
