"""Post-hoc ensembles: greedy ensemble selection with replacement (Caruana et al. 2004).

Caruana, Niculescu-Mizil, Crew and Ksikes, "Ensemble selection from libraries of models", ICML 2004,
as AutoGluon implements it and TabArena uses it for its "tuned + ensembled" track (TabRepo:
`ensemble_size=40` Caruana steps). Source: github.com/autogluon/autogluon,
core/src/autogluon/core/models/greedy_ensemble/ensemble_selection.py, `EnsembleSelection._fit`,
`_select_best_by_score` and `_calculate_regret` (read at commit 0891e7e):
  - the ensemble starts empty; each step adds (with replacement) the candidate whose addition gives
    the lowest validation REGRET of the averaged predictions (AutoGluon's `compute_metric(...,
    as_error=True)`: the metric's optimum minus its score, so 1 - ROC AUC, and log loss or RMSE
    themselves), so the first step picks the best single candidate (for a job: its tuned trial, up
    to float32 rounding of the stored predictions);
  - rounding, as AutoGluon's `round_scores`: when the first step's regret exceeds ROUND_ABOVE (1e-4),
    that regret and every later step's candidate regrets are rounded to ROUND_DECIMALS (6) decimals,
    so a candidate that improves the ensemble by less than about 1e-6 ties instead of joining it
    (floating-point near-ties no longer add members); below 1e-4 (a near-perfect first member) no
    regret is rounded;
  - ties (equal up to 1e-12 relative, on the rounded regrets): a candidate already in the ensemble
    first (as AutoGluon), then the lowest candidate index, i.e. the earlier trial (AutoGluon draws at
    random; deterministic here);
  - ITERATIONS = 40 steps, then the ensemble is cut back to the first step with the lowest (rounded)
    regret (AutoGluon's `use_best`): it is never worse on validation than its best member;
  - weights = times picked / steps kept.
Selection reads the rounded regrets only; the record's val_score and trajectory keep the unrounded
objective of each step's ensemble.
The objective is the task's (bench.metrics: ROC AUC, log loss, RMSE) computed on validation
predictions and labels only. Test predictions are averaged with the chosen weights afterwards (no
refit); test labels are read only to score that average (tests/test_ensembles.py permutes them and
gets identical weights).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from bench.adapters import TaskInfo
from bench.metrics import objective_value, score_predictions
from bench.vocabulary import Variant

ITERATIONS = 40
ROUND_ABOVE = 1e-4  # AutoGluon's `epsilon`: round once the first step's regret exceeds it
ROUND_DECIMALS = 6  # AutoGluon's `round_decimals`
OPTIMUM = {"roc_auc": 1.0, "log_loss": 0.0, "rmse": 0.0}  # each objective's best value: regret = distance to it


@dataclass
class Selection:
    counts: np.ndarray  # per candidate: times picked in the kept steps
    val_score: float  # validation objective of the kept ensemble
    trajectory: list[float]  # validation objective after each step (all steps, before the cut)

    @property
    def weights(self) -> np.ndarray:
        return self.counts / self.counts.sum()


def caruana(val_preds: list[np.ndarray], y_val: np.ndarray, task: TaskInfo,
            iterations: int = ITERATIONS) -> Selection:
    """Greedy forward selection with replacement over the candidates' validation predictions."""
    if not val_preds:
        raise ValueError("ensemble selection needs at least one candidate")
    if iterations < 1:
        raise ValueError(f"ensemble selection needs iterations >= 1, got {iterations}")
    preds = [np.asarray(p, dtype="float64") for p in val_preds]
    maximize = task.objective.higher_is_better
    optimum = OPTIMUM[task.objective.metric]
    total, order, trajectory, regrets = np.zeros_like(preds[0]), [], [], []
    used: set[int] = set()
    rounding = False
    for step in range(iterations):
        raw = np.array([_objective(task, y_val, (total + p) / (step + 1)) for p in preds])
        regret = np.where(np.isfinite(raw), optimum - raw if maximize else raw - optimum, np.inf)
        if rounding:
            regret = regret.round(ROUND_DECIMALS)
        best = regret.min()
        if not np.isfinite(best):
            raise ValueError(f"every candidate ensemble has a non-finite validation {task.objective.metric}")
        ties = [j for j in range(len(preds)) if np.isclose(regret[j], best, rtol=1e-12, atol=0.0)]
        pick = min([j for j in ties if j in used] or ties)
        step_regret = float(regret[pick])
        if step == 0 and abs(step_regret) > ROUND_ABOVE:
            rounding = True
            step_regret = float(np.round(step_regret, ROUND_DECIMALS))  # numpy rounding, as AutoGluon
        total += preds[pick]
        order.append(pick)
        used.add(pick)
        trajectory.append(float(raw[pick]))
        regrets.append(step_regret)
        if len(preds) == 1:
            break  # more steps would add the same candidate again
    keep = int(np.argmin(regrets)) + 1  # the first step with the lowest regret
    counts = np.bincount(order[:keep], minlength=len(preds)).astype(float)
    return Selection(counts, trajectory[keep - 1], trajectory)


def _objective(task: TaskInfo, y, pred) -> float:
    try:
        return objective_value(task.task_type, y, pred, task.n_classes)
    except ValueError:  # e.g. non-finite values: the candidate cannot be chosen
        return float("nan")


def blend(preds: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The weighted average of the members' predictions (float64)."""
    out = None
    for p, w in zip(preds, weights):
        if w > 0:
            term = w * np.asarray(p, dtype="float64")
            out = term if out is None else out + term
    if out is None:
        raise ValueError("blend needs at least one member with a positive weight")
    return out


@dataclass
class Candidate:
    """One trial that may join an ensemble: its name in the weights, its predictions and costs."""
    name: str
    val: np.ndarray
    test: np.ndarray
    fit_seconds: float | None = None
    predict_seconds: float | None = None
    about: dict = field(default_factory=dict)  # what the record lists per member (model, job key, trial)


@dataclass
class Ensemble:
    weights: dict[str, float]
    val_score: float
    test_metrics: dict
    members: list[dict]
    fit_seconds: float  # the members' fits (seconds each took once, not per weight)
    predict_seconds: float  # the members' test predictions
    selection_seconds: float
    info: dict  # the record's `ensemble` object


def build(candidates: list[Candidate], y_val: np.ndarray, y_test: np.ndarray, task: TaskInfo,
          iterations: int = ITERATIONS) -> Ensemble:
    """Select on validation, then score the weighted test predictions."""
    start = time.perf_counter()
    selection = caruana([c.val for c in candidates], y_val, task, iterations)
    selection_seconds = time.perf_counter() - start
    chosen = [(c, float(w)) for c, w in zip(candidates, selection.weights) if w > 0]
    test_pred = blend([c.test for c, _ in chosen], np.array([w for _, w in chosen]))
    metrics = score_predictions(task.task_type, y_test, test_pred, task.n_classes)
    members = [{"name": c.name, "weight": w, **c.about} for c, w in chosen]
    seconds = lambda attr: float(sum(getattr(c, attr) or 0.0 for c, _ in chosen))  # noqa: E731
    info = {"method": "caruana", "iterations": iterations, "steps_kept": int(selection.counts.sum()),
            "candidates": len(candidates), "members": members,
            "trajectory": [float(v) for v in selection.trajectory]}
    return Ensemble({c.name: w for c, w in chosen}, selection.val_score, metrics, members,
                    seconds("fit_seconds"), seconds("predict_seconds"), selection_seconds, info)


def ensemble_variant(task: TaskInfo, y_test: np.ndarray, stored, seed: int, seeds: int = 1):
    """The job's `ensemble` variant from its stored trial predictions (bench.tuning.predictions.Stored):
    weights over trial numbers. With --seeds N > 1 the members are the tuning seed's models only (the
    predictions tuning stored; refitting every member with N seeds would multiply the cost), so its
    test score is one seed's and the record says `seeds_used: 1`."""
    from bench.tuning.variants import VariantResult

    if not stored.numbers:
        raise ValueError("no completed trial has stored predictions to ensemble (a study begun before "
                         "predictions were kept, or every trial's predictions were non-finite); "
                         "--retry-failed starts the job afresh")
    candidates = [Candidate(str(n), stored.val[n], stored.test[n], stored.trials[n].get("fit_seconds"),
                            stored.trials[n].get("predict_seconds"), {"trial": n}) for n in stored.numbers]
    cpu0 = time.process_time()
    made = build(candidates, stored.y_val, y_test, task)
    info = {**made.info, "seeds_used": 1, "seeds_declared": seeds, "predictions": stored.info}
    by_seed = [{"seed": seed, "fit_seconds": made.fit_seconds, "predict_seconds": made.predict_seconds,
                **made.test_metrics}]
    return VariantResult(Variant.ENSEMBLE, {"weights": made.weights}, None, made.val_score, made.test_metrics,
                         made.fit_seconds, made.predict_seconds, {}, by_seed,
                         refit_cpu_seconds=time.process_time() - cpu0, refit_wall_seconds=made.selection_seconds,
                         ensemble=info)
