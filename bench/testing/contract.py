"""The contract checks behind bench.testing.check_adapter, one method per part of the contract."""

from __future__ import annotations

import copy
import math
import re
import time
import warnings
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import optuna

from bench.adapters import FAMILIES, Adapter, Capabilities, FitContext, TaskInfo
from bench.adapters.space import invalid_values, suggest_params
from bench.datasets import TASK_TYPES
from bench.metrics import score_predictions
from bench.testing.data import CheckData
from bench.vocabulary import Status, TrialEnd

SPACE_SAMPLES = 25  # random configurations per task type checked against the declared bounds
PROBA_TOLERANCE = 1e-5  # float32 softmax rows sum to 1 within ~1e-7; anything beyond is a bug
# best_val_score vs the returned model's validation score (relative): libraries that score in float32
# (XGBoost) or average a loss over batches (TabR's Lightning) agree within ~1e-7; keeping the wrong
# iteration or reporting another metric is off by far more.
BEST_VAL_TOLERANCE = 1e-6
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # model names become record paths
# How a fit can end (ctx.record_end); pruned and failed are the tuner's verdicts, never a fit's.
FIT_ENDS = (TrialEnd.EARLY_STOPPED, TrialEnd.CONVERGED, TrialEnd.MAX_ITERATIONS, TrialEnd.DEADLINE,
            TrialEnd.DIVERGED)


class AdapterCheckError(AssertionError):
    """An adapter broke the contract; the message names the adapter, the task type and the contract."""


def random_study(seed: int) -> optuna.Study:
    """An in-memory study drawing at random (seeded), for drawing configurations of a search space; made
    without Optuna's "new study created" line (one per check otherwise)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    finally:
        optuna.logging.set_verbosity(verbosity)


class Checker:
    """Checks one adapter class; `fail` raises AdapterCheckError naming it, the task type and the contract."""

    def __init__(self, adapter_cls: type[Adapter]):
        self.cls = adapter_cls
        self.label = f"'{getattr(adapter_cls, 'name', '?')}' ({adapter_cls.__module__}.{adapter_cls.__qualname__})"
        self.task_type: str | None = None
        self.passed: list[str] = []

    def fail(self, contract: str, detail: str, cause: BaseException | None = None) -> NoReturn:
        where = f", task type '{self.task_type}'" if self.task_type else ""
        raise AdapterCheckError(f"adapter {self.label}{where}: {contract}: {detail}") from cause

    def ok(self, contract: str) -> None:
        if contract not in self.passed:
            self.passed.append(contract)

    def expect(self, condition, contract: str, detail: str) -> None:
        if not condition:
            self.fail(contract, detail)

    @contextmanager
    def running(self, contract: str):
        """Adapter code that raises breaks `contract`; the original exception stays chained."""
        try:
            yield
        except AdapterCheckError:
            raise
        except optuna.TrialPruned as exc:
            self.fail(contract, "raised optuna.TrialPruned although its report callback never asked for it", exc)
        except Exception as exc:
            self.fail(contract, f"raised {type(exc).__name__}: {exc}", exc)

    # --- class-level declarations ----------------------------------------------------------------

    def metadata(self) -> None:
        cls = self.cls
        name = getattr(cls, "name", None)
        self.expect(isinstance(name, str) and NAME_PATTERN.fullmatch(name), "name",
                    f"{name!r} must be a non-empty string of letters, digits, '_', '.', '-' (it names record paths)")
        family = getattr(cls, "family", None)
        self.expect(family in FAMILIES, "family", f"{family!r} is not one of {FAMILIES}")
        self.expect(isinstance(cls.libraries, tuple) and all(isinstance(x, str) for x in cls.libraries),
                    "libraries", f"{cls.libraries!r} must be a tuple of distribution names")
        for lib in cls.libraries:
            try:
                version(lib)
            except PackageNotFoundError:
                self.fail("libraries", f"'{lib}' is not an installed distribution, so records cannot carry "
                          "its version (use the name pip knows, e.g. 'scikit-learn', not 'sklearn')")
        caps = cls.capabilities
        self.expect(isinstance(caps, Capabilities), "capabilities", f"{caps!r} is not a Capabilities")
        self.expect(caps.task_types and set(caps.task_types) <= set(TASK_TYPES), "capabilities",
                    f"task_types {caps.task_types!r} must be a non-empty subset of {TASK_TYPES}")
        self.expect(caps.gpu in ("no", "optional", "required"), "capabilities",
                    f"gpu={caps.gpu!r} must be 'no', 'optional' or 'required'")
        self.expect(isinstance(cls.defaults, dict), "defaults", "must be a dict")
        known = set(cls.defaults).union(*(cls.defaults_for(t) for t in caps.task_types))
        unknown = sorted(set(cls.smoke_params) - known)
        self.expect(not unknown, "smoke_params", f"{unknown} are not keys of defaults (a typo would be ignored)")
        for task_type in caps.task_types:
            self.task_type = task_type
            defaults = cls.defaults_for(task_type)
            space = cls.search_space_for(task_type)
            self.expect(isinstance(space, dict), "search space", f"search_space_for returned {type(space).__name__}")
            for key, spec in space.items():
                self.expect(callable(getattr(spec, "suggest", None)) and callable(getattr(spec, "contains", None)),
                            "search space", f"'{key}' is {spec!r}, not a bench.adapters.space parameter")
            missing = sorted(set(space) - set(defaults))
            self.expect(not missing, "defaults cover the search space",
                        f"{missing} are tuned but have no default, so the defaults trial (trial 0) cannot run")
            outside = invalid_values(space, defaults)
            self.expect(not outside, "defaults inside the search space",
                        ", ".join(f"{k}={defaults[k]!r} outside {space[k]}" for k in outside))
        self.task_type = None

    def search_space(self, task_type: str, seed: int) -> None:
        space = self.cls.search_space_for(task_type)
        if not space:
            return
        study = random_study(seed)
        for _ in range(SPACE_SAMPLES):
            trial = study.ask()
            with self.running("search-space sampling"):
                values = suggest_params(trial, space)
            bad = invalid_values(space, values)
            self.expect(not bad, "search-space sampling",
                        ", ".join(f"{k}={values[k]!r} outside {space[k]}" for k in bad))
            study.tell(trial, 0.0)
        self.ok(f"{SPACE_SAMPLES} search-space samples in bounds")

    def limits(self) -> None:
        """max_rows / max_features / max_classes must turn into refusals."""
        caps = self.cls.capabilities
        task_type = "multiclass" if "multiclass" in caps.task_types else caps.task_types[0]
        k = 3 if task_type == "multiclass" else (2 if task_type == "binary" else 0)
        cases = {"max_rows": (caps.max_rows, lambda m: (m + 1, 10, k)),
                 "max_features": (caps.max_features, lambda m: (100, m + 1, k)),
                 "max_classes": (caps.max_classes if task_type == "multiclass" else None, lambda m: (100, 10, m + 1))}
        for limit, (value, shape) in cases.items():
            if value is not None:
                reason = caps.refusal(task_type, *shape(value))
                self.expect(isinstance(reason, str) and reason.strip(), "capabilities",
                            f"{limit}={value} declared, but a {task_type} dataset with (rows, features, "
                            f"classes)={shape(value)} is not refused")

    # --- one task type --------------------------------------------------------------------------

    def fit_and_predict(self, cls: type[Adapter], data: CheckData, seed: int, device: str) -> None:
        reported: list[tuple] = []
        first, info = self._fit(cls, data, seed, device, lambda step, value: reported.append((step, value)))
        self._check_reports(reported)
        self._check_end(info, "fit")
        if device == "cpu":
            second, _ = self._fit(cls, data, seed, device, None)
            for part in ("val", "test"):
                a, b = first[part], second[part]
                self.expect(a.shape == b.shape and np.array_equal(a, b), "determinism",
                            f"two fits with FitContext(seed={seed}) give different {part} predictions "
                            f"(max difference {_max_diff(a, b)}); seed every random source from ctx.seed")
            self.ok("deterministic under a seed")
        if reported:
            self._check_pruning(cls, data, seed, device)
        if info.get("iterations") and info.get("interruptible", True) is not False:
            self._check_deadline(cls, data, seed, device, int(info["iterations"]))

    def _check_end(self, info: dict, what: str) -> None:
        """fit must say how it ended through ctx.record_end (the trial record's `end`)."""
        ended = info.get("stopped_by")
        self.expect(ended in FIT_ENDS, "ctx.record_end",
                    f"after {what}, ctx.info['stopped_by'] is {ended!r}: fit must call ctx.record_end(stopped_by, "
                    f"iterations, best, unit) with stopped_by one of {', '.join(FIT_ENDS)}")
        done, best = info.get("iterations"), info.get("best_iteration")
        if done is not None:
            self.expect(isinstance(done, int) and done >= 0 and isinstance(info.get("iteration_unit"), str),
                        "ctx.record_end", f"after {what}: iterations={done!r} must be a count >= 0 with an "
                        f"iteration unit (got unit {info.get('iteration_unit')!r})")
            self.expect(best is None or (isinstance(best, int) and 0 <= best <= done), "ctx.record_end",
                        f"after {what}: the kept iteration best={best!r} is not within 0..{done}")
        self.ok("fit records how it ended")

    def _check_deadline(self, cls, data: CheckData, seed: int, device: str, undisturbed: int) -> None:
        """An iterating fit given a tuning deadline that has already passed must stop at its natural
        grain (a round, an epoch, a chunk of trees), keep a usable model and say `deadline`. Adapters that
        cannot be interrupted record interruptible=False and are not held to it."""
        task = TaskInfo(data.task_type, data.n_classes)
        ctx = FitContext(seed=seed, threads=1, device=device, deadline=time.monotonic() - 1.0)
        with self.running("fit with the tuning deadline already passed"):
            model = cls(task, None, ctx)
            pre = model.make_preprocessor()
            pre.fit(data.X_train)
            model.fit(pre.transform(data.X_train), data.y_train, pre.transform(data.X_val), data.y_val)
        if ctx.info.get("interruptible", True) is False:
            return
        self._check_end(ctx.info, "a fit with the deadline already passed")
        done = ctx.info.get("iterations")
        self.expect(ctx.info["stopped_by"] == TrialEnd.DEADLINE, "tuning deadline",
                    f"a fit given ctx.deadline in the past ended '{ctx.info['stopped_by']}' after {done} of "
                    f"{undisturbed} iterations; check ctx.deadline_passed() after every round / epoch / chunk, "
                    "stop, keep the best state so far and record_end('deadline', ...) (or record "
                    "interruptible=False if the library cannot be stopped)")
        self.expect(undisturbed <= 1 or (done is not None and done < undisturbed), "tuning deadline",
                    f"a fit given ctx.deadline in the past still ran {done} of the {undisturbed} iterations "
                    "of an undisturbed fit; it must stop at the first check")
        with self.running("prediction after a deadline stop"):
            self._predictions(model, pre.transform(data.X_test), len(data.y_test))
        self.ok("stops at the tuning deadline")

    def _fit(self, cls, data: CheckData, seed: int, device: str, report) -> tuple[dict[str, np.ndarray], dict]:
        task = TaskInfo(data.task_type, data.n_classes)
        ctx = FitContext(seed=seed, threads=1, device=device, report=report)
        with self.running("construction"):
            model = cls(task, None, ctx)
        raw = {p: getattr(data, f"X_{p}") for p in ("train", "val", "test")}
        snapshot = {p: X.copy() for p, X in raw.items()}
        with self.running("preprocessing (fit on the training part, transform train and val)"):
            pre = model.make_preprocessor()
            pre.fit(raw["train"])
            parts = {p: pre.transform(raw[p]) for p in ("train", "val")}
        with self.running("preprocessing of the test part (it holds a category unseen in training)"):
            parts["test"] = pre.transform(raw["test"])
        for p in raw:
            self.expect(raw[p].equals(snapshot[p]), "inputs are read-only",
                        f"preprocessing changed the raw {p} frame")
        for p, X in parts.items():
            n, expected = _n_rows(X), len(getattr(data, f"y_{p}"))
            self.expect(n == expected, "preprocessing", f"transform of the {p} part has {n} rows, not {expected}")
        before = {p: copy.deepcopy(parts[p]) for p in ("train", "val")}
        with self.running("fit (missing values, constant/all-missing columns, a class absent from training)"):
            model.fit(parts["train"], data.y_train, parts["val"], data.y_val)
        for p in ("train", "val"):
            self.expect(_same(before[p], parts[p]), "inputs are read-only",
                        f"fit modified the transformed {p} part (the tuner reuses it across trials)")
        out = {}
        for p in ("val", "test"):
            with self.running(f"prediction on the {p} part"):
                out[p] = self._predictions(model, parts[p], len(getattr(data, f"y_{p}")))
        with self.running("metrics accept the predictions"):
            score_predictions(data.task_type, data.y_test, out["test"], data.n_classes)
        self._check_kept_iteration(model, ctx.info, data, parts["val"], out["val"])
        return out, ctx.info

    def _check_kept_iteration(self, model: Adapter, info: dict, data: CheckData, X_val, val_pred) -> None:
        """An adapter that keeps an iteration chosen on the validation part (ctx.info early_stopping_metric
        and best_iteration) must report best_val_score, the stopping metric at that iteration, and the model
        it returns must score exactly that on the validation part (it is the kept iteration, scored on
        the metric it says). validation_predictions(X_val), which the trial is scored on, must be
        predictions(X_val)."""
        metric = info.get("early_stopping_metric")
        if metric is None or info.get("best_iteration") is None:
            return
        best = info.get("best_val_score")
        self.expect(metric in ("log_loss", "rmse"), "kept iteration",
                    f"early_stopping_metric is {metric!r}; use stopping_metric "
                    "(bench.adapters.framework.early_stopping: log_loss / rmse; a library's own name goes to "
                    "library_metric)")
        if not (isinstance(best, float) and math.isfinite(best)):
            self.fail("kept iteration", f"fit kept iteration {info['best_iteration']} chosen on validation "
                      f"{metric}, but reports best_val_score={best!r}; record it "
                      "(bench.adapters.framework.early_stopping.StoppingMonitor.finish does)")
        with self.running("validation_predictions"):
            kept = np.asarray(model.validation_predictions(X_val))
        self.expect(kept.shape == val_pred.shape and np.allclose(kept, val_pred, rtol=1e-7, atol=1e-10),
                    "validation_predictions", "differ from predictions() on the validation part "
                    f"(max difference {_max_diff(kept, val_pred)}): the trial would be scored on another model")
        actual = score_predictions(data.task_type, data.y_val, val_pred, data.n_classes)[metric]
        self.expect(math.isclose(actual, best, rel_tol=BEST_VAL_TOLERANCE, abs_tol=1e-9), "kept iteration",
                    f"the returned model's validation {metric} is {actual:.6g}, but fit reported best_val_score "
                    f"{best:.6g} at iteration {info['best_iteration']}: it must return the kept iteration's model "
                    "and report the stopping metric's value there")
        self.ok("returned model scores best_val_score on validation")

    def _predictions(self, model: Adapter, X, n: int) -> np.ndarray:
        task = model.task
        if not task.is_classification:
            pred = np.asarray(model.predict(X))
            self.expect(pred.shape == (n,), "regression predictions", f"shape {pred.shape}, expected ({n},)")
            self.expect(np.issubdtype(pred.dtype, np.floating) and np.all(np.isfinite(pred)),
                        "regression predictions", f"must be finite floats (dtype {pred.dtype})")
            self.expect(np.array_equal(np.asarray(model.predictions(X)), pred), "regression predictions",
                        "predictions() differs from predict()")
            self.ok("regression predictions finite, shape (n,)")
            return pred
        k = task.n_classes
        proba = np.asarray(model.predict_proba(X))
        self.expect(proba.shape == (n, k), "probabilities",
                    f"predict_raw gives shape {proba.shape}, expected ({n}, {k}): one column per task class, also "
                    "for classes absent from the training part (see bench.adapters.expand_proba)")
        self.expect(np.all(np.isfinite(proba)), "probabilities", "contain NaN or inf")
        self.expect(np.all((proba >= -PROBA_TOLERANCE) & (proba <= 1 + PROBA_TOLERANCE)), "probabilities",
                    f"outside [0, 1] (min {proba.min():.3g}, max {proba.max():.3g})")
        deviation = float(np.max(np.abs(proba.sum(axis=1) - 1.0)))
        self.expect(deviation <= PROBA_TOLERANCE, "probabilities",
                    f"rows do not sum to 1 (off by up to {deviation:.3g})")
        labels = np.asarray(model.predict(X))
        self.expect(labels.shape == (n,) and np.issubdtype(labels.dtype, np.integer), "predict()",
                    f"must return integer class codes of shape ({n},), got {labels.dtype} {labels.shape}")
        self.expect(np.all((labels >= 0) & (labels < k)), "predict()", f"class codes outside 0..{k - 1}")
        self.expect(np.all(proba[np.arange(n), labels] >= proba.max(axis=1)), "predict()",
                    "class codes are not the most probable classes of predict_proba()")
        self.expect(np.array_equal(np.asarray(model.predictions(X)), proba), "probabilities",
                    "predictions() differs from predict_proba()")
        self.ok("probabilities valid, predict() = argmax")
        return proba

    def _check_reports(self, reported: list[tuple]) -> None:
        steps = [s for s, _ in reported]
        self.expect(all(isinstance(s, (int, np.integer)) for s in steps) and steps == sorted(set(steps)),
                    "ctx.report", f"steps must be increasing integers, got {steps[:10]}")
        self.expect(all(isinstance(v, (int, float, np.number)) and math.isfinite(v) for _, v in reported),
                    "ctx.report", f"values must be finite numbers, got {[v for _, v in reported][:10]}")

    def _check_pruning(self, cls, data: CheckData, seed: int, device: str) -> None:
        """A report callback that raises optuna.TrialPruned must end fit with that exception."""
        def prune(step, value):
            raise optuna.TrialPruned()

        model = cls(TaskInfo(data.task_type, data.n_classes), None,
                    FitContext(seed=seed, threads=1, device=device, report=prune))
        pre = model.make_preprocessor()
        pre.fit(data.X_train)
        try:
            model.fit(pre.transform(data.X_train), data.y_train, pre.transform(data.X_val), data.y_val)
        except optuna.TrialPruned:
            self.ok("pruning propagates")
            return
        except Exception as exc:
            self.fail("pruning", f"ctx.report raised optuna.TrialPruned, fit raised {type(exc).__name__}: {exc} "
                      "instead (re-raise TrialPruned unchanged, see the CatBoost adapter)", exc)
        self.fail("pruning", "ctx.report raised optuna.TrialPruned, but fit returned normally")

    def full_job(self, cls, data: CheckData, tmp: Path, seed: int, trials: int, device: str) -> None:
        """The real path: Optuna study with the defaults + sampled configurations, records per variant."""
        from bench.execution.jobs import execute_job

        job = data.job(cls, tmp, trials, seed, device)
        with warnings.catch_warnings():
            # smoke_params may put tuned keys outside the space on purpose (a 16-wide network); Optuna
            # warns when the defaults trial enqueues them.
            warnings.filterwarnings("ignore", "Fixed parameter .* is out of range", UserWarning)
            records = execute_job(job, cls)
        expected = set(job.variants)  # default; with tuning (a search space, trials > 1) also tuned and ensemble
        self.expect({r["variant"] for r in records} == expected, "records",
                    f"variants {sorted(r['variant'] for r in records)}, expected {sorted(expected)}")
        for r in records:
            error = (r.get("error") or {}).get("message", r.get("reason", ""))
            self.expect(r["status"] == Status.OK, "bench.execution.jobs.execute_job",
                        f"the {r['variant']} variant is '{r['status']}': {error}")
            self.expect(math.isfinite(r["test_score"]), "bench.execution.jobs.execute_job",
                        f"{r['variant']} test score is {r['test_score']}")
        for trial in records[0]["trials"]:
            self.expect(trial["state"] == "COMPLETE", "search-space samples fit",
                        f"trial {trial['number']} with {trial['params']} ended {trial['state']}: {trial['error']}")
        self.ok(f"execute_job: {len(records[0]['trials'])} trial(s) ok")

    def availability(self, task_type: str) -> str | None:
        with self.running("unavailable_reason"):
            reason = self.cls.unavailable_reason(task_type)
        self.expect(reason is None or (isinstance(reason, str) and reason.strip()), "unavailable_reason",
                    f"must be None or a non-empty reason, got {reason!r}")
        return reason

    def refuses_unsupported(self, cls, data: CheckData, tmp: Path, seed: int, unavailable: str | None) -> str:
        """The refusal reason, which execute_job must turn into skipped records (into unavailable ones
        where the model cannot run here at all: that comes first, see bench.execution.jobs)."""
        from bench.execution.jobs import execute_job

        reason = cls.capabilities.refusal(data.task_type, data.n_train, data.n_features, data.n_classes, "cpu")
        self.expect(isinstance(reason, str) and reason.strip(), "unsupported task type refused",
                    f"'{data.task_type}' is not in capabilities.task_types, yet capabilities.refusal gave "
                    f"{reason!r} instead of a reason")
        with self.running("unsupported task type refused"):
            records = execute_job(data.job(cls, tmp, 1, seed, "cpu"), cls)
        status, expected = (Status.UNAVAILABLE, unavailable) if unavailable else (Status.SKIPPED, reason)
        for r in records:
            self.expect(r["status"] == status and r.get("reason") == expected, "unsupported task type refused",
                        f"execute_job gave a '{r['status']}' record ({r.get('reason') or r.get('error')}), "
                        f"expected '{status}' with reason {expected!r}")
        return reason


def _n_rows(X) -> int:
    if isinstance(X, (tuple, list)):  # e.g. (numeric matrix, categorical codes) for FT-Transformer
        counts = {_n_rows(x) for x in X}
        return counts.pop() if len(counts) == 1 else -1
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "equals") and hasattr(a, "columns"):
        return a.equals(b)
    a, b = np.asarray(a), np.asarray(b)
    try:
        return np.array_equal(a, b, equal_nan=True)
    except TypeError:  # object arrays cannot compare NaN
        return np.array_equal(a, b)


def _max_diff(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shapes {a.shape} vs {b.shape}"
    return f"{float(np.nanmax(np.abs(a.astype('float64') - b.astype('float64')))):.3g}"
