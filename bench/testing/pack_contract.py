"""The fit_pack part of bench.testing.check_adapter: for an adapter whose capabilities say `pack`, two
configurations fit together (Adapter.fit_pack, exact=True) must each end as its own fit ends.

The two configurations: the checked defaults (smoke_params folded in) and the same with every tuned key
that neither smoke_params nor the caller fixed drawn from the search space (learning rate, weight decay,
dropout, ...: members of one pack with different hyperparameters, at the small network size smoke_params
chose). Each is fit alone and both are fit as one pack, on the same preprocessed data with the same seed;
per member, fit_pack must return one entry (None: fitted) in the order of the models, record how the fit
ended and after how many iterations exactly as the single fit records them, and predict the validation
and test parts as the single fit does within PACK_RTOL / PACK_ATOL.
"""

from __future__ import annotations

from typing import Any, Collection

import numpy as np

from bench.adapters import Adapter, FitContext, TaskInfo
from bench.adapters.space import suggest_params
from bench.testing.contract import Checker, _max_diff, random_study
from bench.testing.data import CheckData

# A packed member vs its single fit. Mode "exact" computes the same operations, bit for bit for MLP and ResNet;
# what it cannot reproduce is per-member gradient clipping (the norm of a member's slice of the packed
# gradients sums in another order: ~1e-7 relative per step), so predictions may differ by float rounding.
PACK_RTOL, PACK_ATOL = 1e-4, 1e-6
ENDS = ("stopped_by", "iterations", "best_iteration", "iteration_unit")


def check_fit_pack(checker: Checker, cls: type[Adapter], data: CheckData, seed: int, fixed: Collection[str]) -> None:
    """Two configurations fit alone and as one pack agree member by member (module docstring); `fixed`:
    keys not to draw (smoke_params and the caller's params)."""
    task = TaskInfo(data.task_type, data.n_classes)
    configs = [{}, _drawn(cls, data.task_type, seed, fixed)]
    with checker.running("preprocessing for fit_pack"):
        pre = cls(task, None, FitContext()).make_preprocessor()
        pre.fit(data.X_train)
        X = {p: pre.transform(getattr(data, f"X_{p}")) for p in ("train", "val", "test")}
    alone = []
    for params in configs:
        ctx = FitContext(seed=seed, threads=1, device="cpu")
        model = cls(task, params, ctx)
        with checker.running("fit (the single fit fit_pack is compared with)"):
            model.fit(X["train"], data.y_train, X["val"], data.y_val)
        alone.append((model, ctx.info))
    models = [cls(task, params, FitContext(seed=seed, threads=1, device="cpu")) for params in configs]
    with checker.running("fit_pack of two configurations"):
        errors = cls.fit_pack(models, X["train"], data.y_train, X["val"], data.y_val, exact=True)
    checker.expect(isinstance(errors, list) and len(errors) == len(models), "fit_pack",
                   f"returned {_count(errors)} for {len(models)} models: one entry per model, in order")
    for member, (model, error, (single, info)) in enumerate(zip(models, errors, alone)):
        where = f"member {member} ({configs[member] or 'defaults'})"
        if error is not None:
            checker.fail("fit_pack", f"{where} ended with {type(error).__name__}: {error}; its own fit did not", error)
        ends = {k: model.ctx.info.get(k) for k in ENDS}
        checker.expect(ends["stopped_by"] is not None and ends == {k: info.get(k) for k in ENDS}, "fit_pack",
                       f"{where} records its end as {ends}, its own fit as {({k: info.get(k) for k in ENDS})}")
        for part in ("val", "test"):
            with checker.running(f"prediction of a packed model on the {part} part"):
                packed, own = np.asarray(model.predictions(X[part])), np.asarray(single.predictions(X[part]))
            checker.expect(packed.shape == own.shape and np.allclose(packed, own, rtol=PACK_RTOL, atol=PACK_ATOL),
                           "fit_pack", f"{where} predicts the {part} part otherwise than its own fit (max difference "
                           f"{_max_diff(packed, own)}, tolerance rtol {PACK_RTOL} atol {PACK_ATOL})")
    checker.ok("fit_pack members = their own fits")


def _drawn(cls: type[Adapter], task_type: str, seed: int, fixed: Collection[str]) -> dict[str, Any]:
    """The tuned keys that are not fixed, drawn at random from the search space (seeded)."""
    space = {k: v for k, v in cls.search_space_for(task_type).items() if k not in fixed}
    if not space:
        return {}
    return suggest_params(random_study(seed).ask(), space)


def _count(errors: Any) -> str:
    return f"{len(errors)} entries" if isinstance(errors, (list, tuple)) else f"a {type(errors).__name__}"

