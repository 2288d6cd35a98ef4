"""What a record says about each trial: its summary, how it ended, what it cost, and trial selection.

A trial's `end` (bench.records.schema.TrialEnd): pruned / failed from the Optuna state, otherwise what
the adapter said through ctx.record_end (ctx.info["stopped_by"]); an adapter that says nothing (a
third-party one) gets "converged" and no iteration counts. A pruned trial's `iterations` is the last
step it reported to the pruner.
"""

from __future__ import annotations

import traceback

import numpy as np
import optuna

from bench.vocabulary import TrialEnd

State = optuna.trial.TrialState
FINISHED = (State.COMPLETE, State.PRUNED, State.FAIL)
_ADAPTER_ENDS = frozenset(TrialEnd) - {TrialEnd.PRUNED, TrialEnd.FAILED}


def trial_end(state: State, info: dict) -> TrialEnd:
    if state == State.PRUNED:
        return TrialEnd.PRUNED
    if state == State.FAIL:
        return TrialEnd.FAILED
    said = info.get("stopped_by")
    return TrialEnd(said) if said in _ADAPTER_ENDS else TrialEnd.CONVERGED


def summarize(trials: list[optuna.trial.FrozenTrial]) -> list[dict]:
    """The record's `trials` list: every finished trial, in order."""
    out = [_summary(t) for t in trials if t.state in FINISHED]
    # A pruned trial stops inside fit, before the adapter says what its steps count; the study's
    # completed trials of the same model say it.
    units = {t["iteration_unit"] for t in out if t["iteration_unit"]}
    if len(units) == 1:
        for t in out:
            if t["end"] == TrialEnd.PRUNED and t["iterations"] is not None:
                t["iteration_unit"] = next(iter(units))
    return out


def _summary(t: optuna.trial.FrozenTrial) -> dict:
    info = t.user_attrs.get("fit_info") or {}
    end = trial_end(t.state, info)
    completed = t.state == State.COMPLETE
    return {
        "number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
        "is_default": bool(t.user_attrs.get("is_default")),
        # A packed trial's share of its pack's wall time (bench.tuning.packing); else its own duration.
        "seconds": _seconds(t),
        "fit_seconds": t.user_attrs.get("fit_seconds"), "error": t.user_attrs.get("error"),
        "test_score": test_score(t),  # reporting only (tuning curves)
        "last_step": t.last_step,
        "end": str(end),
        "iterations": info.get("iterations") if completed else (t.last_step if end == TrialEnd.PRUNED else None),
        "best_iteration": info.get("best_iteration") if completed else None,
        "iteration_unit": info.get("iteration_unit") if completed else None,
        "cpu_seconds": t.user_attrs.get("cpu_seconds"),
        "fits": t.user_attrs.get("fits"),  # models fit (inner_folds K: up to K; fewer when pruned)
        "restarts": t.user_attrs.get("restarts", 0),  # runs a kill cut off before this one (bench.tuning.progress)
        "pack": t.user_attrs.get("pack", 1),  # trials it was trained together with, itself included (--pack)
    }


def _seconds(t: optuna.trial.FrozenTrial) -> float | None:
    shared = t.user_attrs.get("wall_seconds")
    if isinstance(shared, (int, float)):
        return float(shared)
    return t.duration.total_seconds() if t.duration else None


def test_score(t: optuna.trial.FrozenTrial) -> float | None:
    """The trial's test objective (bench.tuning.study._score_test; `test_score` in studies begun before)."""
    test = t.user_attrs.get("test")
    return test.get("score") if isinstance(test, dict) else t.user_attrs.get("test_score")


def cost(trials: list[dict]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) the trials took; a trial with no measurement (its process was
    killed while it ran) adds nothing."""
    return (sum(t.get("cpu_seconds") or 0.0 for t in trials), sum(t.get("seconds") or 0.0 for t in trials))


def completed(trials) -> list[tuple[float, int]]:
    return [(t.value, t.number) for t in trials if t.state == State.COMPLETE and t.value is not None]


def best(candidates: list[tuple[float, int]], direction: str) -> int:
    """Trial number with the best value; ties go to the earlier trial (defaults win a tie)."""
    sign = -1.0 if direction == "maximize" else 1.0
    return min(candidates, key=lambda c: (sign * c[0], c[1]))[1]


def no_trial_reason(default_trial, trials) -> str:
    if default_trial is not None and default_trial.user_attrs.get("error"):
        return default_trial.user_attrs["error"]
    errors = [t.user_attrs["error"] for t in trials if t.user_attrs.get("error")]
    if errors:
        return errors[0]
    return "no trial completed within the budget"


def error_text(exc: BaseException) -> str:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return f"{type(exc).__name__}: {exc}\n" + "".join(tb[-3:])[-1500:]


def jsonable(info: dict) -> dict:
    """Fit info as plain JSON values (trial attributes go through the storage's JSON encoder)."""
    return {k: _plain(v) for k, v in info.items()}


def _plain(v):
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if isinstance(v, dict):
        return jsonable(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
