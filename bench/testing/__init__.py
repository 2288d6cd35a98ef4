"""`check_adapter`: does a model adapter keep the contract the harness relies on?

In the spirit of scikit-learn's `check_estimator`. For every task type the adapter declares, it builds
small data with the warts real data has (missing numerics, a categorical with missing values and a
level seen only in the test part, a constant and an all-missing column, column names XGBoost and
LightGBM reject, a class absent from the training part), drives the adapter the way bench.tuning does
(preprocessor fit on the training part only -> fit(train, val) -> predictions on the test part) and
asserts what the metrics, the tuner and the records depend on, including that fit says how it ended
(ctx.record_end), that an iterating fit given a deadline already passed stops at its first check
(end "deadline", a usable model) unless it records interruptible=False, and that a fit which keeps an
iteration chosen on the validation part reports best_val_score and returns the model that scores it
there (validation_predictions, which the trial is scored on, included). An adapter that trains several
configurations together (capabilities.pack) must give each of two configurations fit as one pack what its
own fit gives (bench.testing.pack_contract; on CPU). It then runs a real job through
bench.execution.jobs.execute_job (Optuna study: the defaults plus sampled configurations). Task types the adapter
does not declare must be refused with a reason, and the same job must become a "skipped" record.
The checks themselves live in bench.testing.contract, the generated data in bench.testing.data.

    from bench.testing import check_adapter
    check_adapter(MyAdapter)            # raises AdapterCheckError naming adapter, task type and contract

Fits use the adapter's `smoke_params` (tiny round / epoch counts), then the caller's `params`.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from bench.adapters import Adapter
from bench.datasets import TASK_TYPES
from bench.testing.contract import AdapterCheckError, Checker
from bench.testing.data import make_check_data
from bench.testing.pack_contract import check_fit_pack

__all__ = ["AdapterCheckError", "CheckReport", "check_adapter"]


@dataclass
class CheckReport:
    adapter: str
    passed: dict[str, list[str]] = field(default_factory=dict)  # task type -> contracts verified
    refused: dict[str, str] = field(default_factory=dict)  # undeclared task type -> the reason given
    not_run: dict[str, str] = field(default_factory=dict)  # declared, not runnable here (GPU, extra)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [f"check_adapter({self.adapter}): {self.seconds:.1f}s"]
        lines += [f"  {t}: ok ({', '.join(c)})" for t, c in self.passed.items()]
        lines += [f"  {t}: refused as it should be: {r}" for t, r in self.refused.items()]
        lines += [f"  {t}: not run here: {r}" for t, r in self.not_run.items()]
        return "\n".join(lines)


def check_adapter(adapter_cls: type[Adapter], *, task_types=None, params: dict | None = None, seed: int = 0,
                  trials: int = 2, device: str = "cpu", smoke: bool = True) -> CheckReport:
    """Check `adapter_cls` on every declared task type (or the given subset); raise AdapterCheckError
    on the first broken contract, else return what was checked.

    params: overrides on top of smoke_params (smoke=False: on top of the full defaults).
    trials: Optuna trials of the execute_job run: the defaults, then configurations sampled from the full
    space (so large networks are fit too: each costs more than a smoke fit), once per distinct space."""
    start = time.perf_counter()
    requested = tuple(task_types or TASK_TYPES)
    unknown = [t for t in requested if t not in TASK_TYPES]
    if unknown:
        raise ValueError(f"unknown task type(s) {unknown}; valid: {TASK_TYPES}")
    if trials < 1:
        raise ValueError("trials must be >= 1 (the defaults trial)")
    checker = Checker(adapter_cls)
    checker.metadata()
    checker.limits()  # declarations first: they fail fast, before any fit
    configured = _with_defaults(adapter_cls, adapter_cls.smoke_params if smoke else {}, params or {})
    report = CheckReport(adapter_cls.name)
    caps = adapter_cls.capabilities
    spaces_sampled: list[Mapping[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"check-{adapter_cls.name}-") as tmp:
        for task_type in TASK_TYPES:
            supported = task_type in caps.task_types
            if supported and task_type not in requested:
                continue
            data = make_check_data(task_type, seed)
            checker.task_type = task_type
            unavailable = checker.availability(task_type)
            if not supported:
                report.refused[task_type] = checker.refuses_unsupported(configured, data, Path(tmp), seed,
                                                                        unavailable)
                continue
            if unavailable:  # an optional library or the weights are missing here
                report.not_run[task_type] = f"unavailable: {unavailable}"
                continue
            reason = caps.refusal(task_type, data.n_train, data.n_features, data.n_classes, device)
            if reason and caps.gpu == "required" and device != "cuda":
                report.not_run[task_type] = reason
                continue
            if reason:
                checker.fail("capabilities", f"refuses the check's small data ({data.n_train} rows, "
                             f"{data.n_features} features, {data.n_classes} classes): {reason}")
            checker.search_space(task_type, seed)
            checker.fit_and_predict(configured, data, seed, device)
            if caps.pack and device == "cpu":  # fit_pack(exact=True) reproduces single fits on CPU
                check_fit_pack(checker, configured, data, seed, {*(adapter_cls.smoke_params if smoke else {}),
                                                                 *(params or {})})
            # Sampled configurations are fit once per distinct search space (linear: C, then alpha); later
            # task types with the same space run the defaults trial only: big sampled networks are slow.
            space = adapter_cls.search_space_for(task_type)
            fresh_space = space not in spaces_sampled
            spaces_sampled.append(space)
            checker.full_job(configured, data, Path(tmp), seed, trials if fresh_space else 1, device)
            report.passed[task_type] = list(checker.passed)
            checker.passed.clear()
    report.seconds = time.perf_counter() - start
    return report


def _with_defaults(adapter_cls: type[Adapter], smoke: Mapping[str, Any], params: Mapping[str, Any]) -> type[Adapter]:
    """The adapter with smoke_params (where a task type's defaults have the key) and then the caller's
    params folded into its defaults, so that the tuner's trials, which start from defaults_for(task
    type), use them too. Same name and module: messages and records read as the original."""
    if not smoke and not params:
        return adapter_cls

    def merged(base: Mapping[str, Any]) -> dict:
        return {**base, **{k: v for k, v in smoke.items() if k in base}, **params}

    attrs = {"defaults": merged(adapter_cls.defaults),
             "defaults_for": classmethod(lambda cls, task_type: merged(adapter_cls.defaults_for(task_type))),
             "__module__": adapter_cls.__module__, "__qualname__": adapter_cls.__qualname__,
             "__doc__": adapter_cls.__doc__}
    return type(adapter_cls.__name__, (adapter_cls,), attrs)
