"""bench.testing.check_adapter: every built-in adapter passes it, and it catches broken adapters.

The built-ins are collected from the registry, so a new adapter in BUILTIN_MODULES is checked here
without touching this file. Each broken adapter below differs from a passing one (test_prior, checked
first) in exactly one way, and the check must name that contract.
"""

from __future__ import annotations

import importlib.util
import typing
from dataclasses import dataclass

import numpy as np
import pytest

from bench.adapters import Capabilities, load_adapters
from bench.adapters.models.lightgbm import LightGBMAdapter
from bench.adapters.space import FloatParam
from bench.datasets import TASK_TYPES
from bench.metrics import score_predictions
from bench.preprocessing import MatrixPreprocessor
from bench.testing import AdapterCheckError, check_adapter
from bench.vocabulary import TrialEnd

from .fault_adapters import NanAdapter, PriorAdapter, RegressionOnlyAdapter

BUILTINS = sorted(name for name, cls in load_adapters().items() if cls.__module__.startswith("bench.adapters."))


def _random_tabpfn_weights(folder, monkeypatch) -> None:
    """TabPFN's real weights cannot be downloaded here; random ones in its format take the same path
    (tests/tabpfn_checkpoint.py). Without tabpfn installed the model is unavailable and not run."""
    if importlib.util.find_spec("tabpfn") is None:
        return
    from bench.adapters.models.tabpfn import WEIGHTS_ENV
    from tests.tabpfn_checkpoint import write_random_checkpoint

    for kind in ("classifier", "regressor"):
        write_random_checkpoint(folder / f"tabpfn-v2-{kind}-random.ckpt", kind == "regressor")
    monkeypatch.setenv(WEIGHTS_ENV, str(folder))


def _random_icl_weights(folder, monkeypatch) -> None:
    """TabICL's and TabDPT's weights likewise: random checkpoints in their packages' formats
    (tests/icl_checkpoints.py), found through BENCH_TABICL_WEIGHTS / BENCH_TABDPT_WEIGHTS."""
    from tests.icl_checkpoints import write_random_tabdpt, write_random_tabicl

    if importlib.util.find_spec("tabicl") is not None:
        for kind in ("classifier", "regressor"):
            write_random_tabicl(folder / f"tabicl-{kind}-random.ckpt", kind == "regressor")
        monkeypatch.setenv("BENCH_TABICL_WEIGHTS", str(folder))
    if importlib.util.find_spec("tabdpt") is not None:
        write_random_tabdpt(folder / "tabdpt-random.safetensors")
        monkeypatch.setenv("BENCH_TABDPT_WEIGHTS", str(folder))


# What a model needs that a test machine lacks.
ENVIRONMENT = {"tabpfn": _random_tabpfn_weights, "tabicl": _random_icl_weights, "tabdpt": _random_icl_weights}


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_adapter_keeps_the_contract(name, tmp_path_factory, tmp_path, monkeypatch):
    if name in ENVIRONMENT:
        ENVIRONMENT[name](tmp_path_factory.mktemp(f"{name}-env"), monkeypatch)
    monkeypatch.chdir(tmp_path)  # an adapter must not leave files (catboost_info/) where it runs
    cls = load_adapters()[name]
    report = check_adapter(cls)
    declared = set(cls.capabilities.task_types)
    assert set(report.passed) | set(report.not_run) == declared
    # Not run only where the environment lacks an optional extra (CI installs none) or a GPU.
    assert all(cls.unavailable_reason(t) or cls.capabilities.gpu == "required" for t in report.not_run)
    assert set(report.refused) == set(TASK_TYPES) - declared
    assert all("execute_job" in " ".join(c) for c in report.passed.values())
    if cls.capabilities.pack:  # bench.testing.pack_contract (tests/test_check_fit_pack.py)
        assert all("fit_pack members = their own fits" in c for c in report.passed.values())
    assert not list(tmp_path.iterdir())


def _params_type(cls):
    """The TypedDict an adapter class is parametrized with (`class X(Adapter[XParams])`), or None."""
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            args = typing.get_args(base)
            if args and typing.is_typeddict(args[0]):
                return args[0]
    return None


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_adapter_types_its_params_with_exactly_the_keys_of_its_defaults(name):
    """Every built-in model's params are a TypedDict (so mypy checks each self.params[...] access), and
    its defaults for every task type hold all its required keys and nothing else."""
    cls = load_adapters()[name]
    params = _params_type(cls)
    assert params is not None, f"{cls.__qualname__} is not declared as Adapter[SomeParams]"
    for task_type in cls.capabilities.task_types:
        keys = set(cls.defaults_for(task_type))
        assert params.__required_keys__ <= keys <= params.__required_keys__ | params.__optional_keys__, task_type


def test_a_passing_adapter_reports_what_was_checked():
    report = check_adapter(PriorAdapter)
    assert set(report.passed) == set(TASK_TYPES) and not report.refused
    assert "deterministic under a seed" in report.passed["multiclass"]
    assert "test_prior" in str(report)


def test_unsupported_task_types_become_skipped_records_and_limits_refuse():
    report = check_adapter(RegressionOnlyAdapter)
    assert set(report.passed) == {"regression"}
    assert "task type 'binary' not supported" in report.refused["binary"]


# --- broken adapters: each breaks one contract ------------------------------------------------

class ProbaNotSummingToOne(PriorAdapter):
    def predict_raw(self, X):
        out = super().predict_raw(X)
        return 0.9 * out if self.task.is_classification else out


class MissingClassColumn(PriorAdapter):
    """Forgets the class absent from the training part (the expand_proba case)."""

    def fit(self, X_train, y_train, X_val, y_val):
        super().fit(X_train, y_train, X_val, y_val)
        self.seen = np.unique(y_train)

    def predict_raw(self, X):
        out = super().predict_raw(X)
        if not self.task.is_classification:
            return out
        return out[:, self.seen] / out[:, self.seen].sum(axis=1, keepdims=True)  # like a model's classes_


class OneRowShort(PriorAdapter):
    def predict_raw(self, X):
        return super().predict_raw(X)[:-1]


class UnseededNoise(PriorAdapter):
    def fit(self, X_train, y_train, X_val, y_val):
        super().fit(X_train, y_train, X_val, y_val)
        self.value = self.value + np.random.default_rng().uniform(0, 1e-3, np.shape(self.value))  # not ctx.seed
        if self.task.is_classification:
            self.value = self.value / self.value.sum()


class TunedKeyWithoutDefault(PriorAdapter):
    search_space = {**PriorAdapter.search_space, "temperature": FloatParam(0.1, 10.0)}


class DefaultOutsideSpace(PriorAdapter):
    defaults = {"shrink": 2.0}


class _StrictCategories(MatrixPreprocessor):
    """Refuses category levels it did not see in fit, as a plain OneHotEncoder(handle_unknown='error')."""

    def fit(self, X, y=None):
        self.levels = {c: set(X[c].dropna()) for c in X.select_dtypes("category")}
        return super().fit(X, y)

    def transform(self, X):
        for col, levels in self.levels.items():
            unseen = set(X[col].dropna()) - levels
            if unseen:
                raise KeyError(f"column {col}: unknown categories {sorted(unseen)}")
        return super().transform(X)


class CrashOnUnseenCategory(PriorAdapter):
    def make_preprocessor(self):
        return _StrictCategories()


class ClaimsMulticlassButCrashes(PriorAdapter):
    def fit(self, X_train, y_train, X_val, y_val):
        if self.task.task_type == "multiclass":
            raise ValueError("only binary classification is implemented")
        super().fit(X_train, y_train, X_val, y_val)


@dataclass(frozen=True)
class _NeverRefuses(Capabilities):
    def refusal(self, task_type, n_rows, n_features, n_classes, device="cpu"):
        return None


class UnsupportedButNotRefused(RegressionOnlyAdapter):
    capabilities = _NeverRefuses(task_types=("regression",))


class IgnoresItsRowLimit(PriorAdapter):
    capabilities = _NeverRefuses(max_rows=10_000)


class PredictNotArgmax(PriorAdapter):
    def predict(self, X):
        return np.zeros(len(X), dtype=int) if self.task.is_classification else super().predict(X)


class MutatesItsInput(PriorAdapter):
    def fit(self, X_train, y_train, X_val, y_val):
        X_train[:] = 0.0  # the tuner reuses this matrix for the next trial
        super().fit(X_train, y_train, X_val, y_val)


class SwallowsPruning(PriorAdapter):
    def fit(self, X_train, y_train, X_val, y_val):
        try:
            self.ctx.report_value(1, 0.5)
        except Exception:  # catches optuna.TrialPruned too: the tuner can never stop this trial
            pass
        super().fit(X_train, y_train, X_val, y_val)


class SampledConfigsFail(PriorAdapter):
    def fit(self, X_train, y_train, X_val, y_val):
        if self.params["shrink"] != self.defaults["shrink"]:
            raise RuntimeError("only the default configuration works")
        super().fit(X_train, y_train, X_val, y_val)


class UnknownFamily(PriorAdapter):
    family = "transformer"


class ImportNameAsLibrary(PriorAdapter):
    libraries = ("sklearn",)  # the distribution is scikit-learn


class SmokeParamTypo(PriorAdapter):
    smoke_params = {"shrinkk": 0.1}


class ForgetsHowItEnded(PriorAdapter):
    """Never calls ctx.record_end, so the trial record cannot say how the fit ended."""

    def fit(self, X_train, y_train, X_val, y_val):
        super().fit(X_train, y_train, X_val, y_val)
        self.ctx.info.clear()


class EndsInAWordOfItsOwn(PriorAdapter):
    def fit(self, X_train, y_train, X_val, y_val):
        super().fit(X_train, y_train, X_val, y_val)
        self.ctx.info["stopped_by"] = "finished"  # not a bench.records.schema.TrialEnd value


class IgnoresTheDeadline(PriorAdapter):
    """Iterates (ten refinement rounds) and never looks at ctx.deadline."""

    def fit(self, X_train, y_train, X_val, y_val):
        super().fit(X_train, y_train, X_val, y_val)
        self.ctx.record_end(TrialEnd.MAX_ITERATIONS, iterations=10, best=10, unit="rounds")


class SaysDeadlineButRunsOn(PriorAdapter):
    """Records the deadline, yet runs every round anyway."""

    def fit(self, X_train, y_train, X_val, y_val):
        super().fit(X_train, y_train, X_val, y_val)
        end = TrialEnd.DEADLINE if self.ctx.deadline_passed() else TrialEnd.MAX_ITERATIONS
        self.ctx.record_end(end, iterations=10, best=10, unit="rounds")


class _ReportsAKeptIteration(PriorAdapter):
    """Says it kept iteration 3 of 5 chosen on validation log loss / RMSE (best_val_score: `offset` off the
    returned model's value on the validation part)."""

    offset: float | None = 0.0

    def fit(self, X_train, y_train, X_val, y_val):
        from bench.adapters.framework.early_stopping import stopping_metric

        super().fit(X_train, y_train, X_val, y_val)
        metric = stopping_metric(self.task.task_type)
        value = score_predictions(self.task.task_type, y_val, self.predictions(X_val), self.task.n_classes)[metric]
        extra = {} if self.offset is None else {"best_val_score": value + self.offset}
        self.ctx.record_end(TrialEnd.EARLY_STOPPED, iterations=5, best=3, unit="rounds",
                            early_stopping_metric=metric, **extra)


class ReportsAnotherIterationsScore(_ReportsAKeptIteration):
    """The kept iteration's score, but the model of another (as returning the last epoch's weights would)."""

    offset = 0.01


class KeepsAnIterationWithoutItsScore(_ReportsAKeptIteration):
    offset = None


class ScoresTrialsOnOtherPredictions(_ReportsAKeptIteration):
    """validation_predictions (what the trial is scored on) are not the returned model's."""

    def fit(self, X_train, y_train, X_val, y_val):
        super().fit(X_train, y_train, X_val, y_val)
        self.kept_val_predictions = 0.9 * self.predictions(X_val)


class PredictsWithEveryRound(LightGBMAdapter):
    """A real iterative adapter broken in one place: it reports the best round but predicts with every
    round trained."""

    def _keep_rounds(self, kept, monitor, X_val):
        self.kept_rounds, self.kept_val_predictions = monitor.iterations, None
        return {}


BROKEN = [
    (ProbaNotSummingToOne, "binary", "rows do not sum to 1"),
    (MissingClassColumn, "multiclass", "shape (60, 3), expected (60, 4)"),
    (OneRowShort, "binary", "shape (59, 2), expected (60, 2)"),
    (UnseededNoise, "binary", "determinism"),
    (TunedKeyWithoutDefault, "binary", "['temperature'] are tuned but have no default"),
    (DefaultOutsideSpace, "binary", "shrink=2.0 outside"),
    (CrashOnUnseenCategory, "binary", "unseen in training): raised KeyError"),
    (ClaimsMulticlassButCrashes, "multiclass", "raised ValueError: only binary classification"),
    (UnsupportedButNotRefused, "binary", "unsupported task type refused"),
    (IgnoresItsRowLimit, None, "max_rows=10000 declared, but"),
    (PredictNotArgmax, "multiclass", "not the most probable classes"),
    (MutatesItsInput, "binary", "fit modified the transformed train part"),
    (SwallowsPruning, "binary", "fit returned normally"),
    (SampledConfigsFail, "binary", "only the default configuration works"),
    (UnknownFamily, None, "'transformer' is not one of"),
    (ImportNameAsLibrary, None, "'sklearn' is not an installed distribution"),
    (SmokeParamTypo, None, "['shrinkk'] are not keys of defaults"),
    (NanAdapter, "binary", "NaN"),
    (ForgetsHowItEnded, "binary", "ctx.info['stopped_by'] is None: fit must call ctx.record_end"),
    (EndsInAWordOfItsOwn, "binary", "ctx.info['stopped_by'] is 'finished'"),
    (IgnoresTheDeadline, "binary", "ended 'max_iterations' after 10 of 10 iterations"),
    (SaysDeadlineButRunsOn, "binary", "still ran 10 of the 10 iterations"),
    (ReportsAnotherIterationsScore, "binary", "kept iteration: the returned model's validation log_loss"),
    (KeepsAnIterationWithoutItsScore, "binary", "reports best_val_score=None"),
    (ScoresTrialsOnOtherPredictions, "binary", "validation_predictions: differ from predictions()"),
]


@pytest.mark.parametrize("cls, task_type, expected", BROKEN, ids=[b[0].__name__ for b in BROKEN])
def test_broken_adapter_is_caught(cls, task_type, expected):
    with pytest.raises(AdapterCheckError) as err:
        check_adapter(cls)
    message = str(err.value)
    assert expected in message
    assert f"'{cls.name}' (" in message and cls.__qualname__ in message  # names the adapter
    if task_type:
        assert f"task type '{task_type}'" in message


class CannotBeInterrupted(IgnoresTheDeadline):
    """Like a library with no callback: says so, and is then not held to the deadline."""

    def fit(self, X_train, y_train, X_val, y_val):
        super().fit(X_train, y_train, X_val, y_val)
        self.ctx.info["interruptible"] = False


def test_adapters_that_cannot_be_interrupted_are_not_held_to_the_deadline():
    report = check_adapter(CannotBeInterrupted)
    assert "fit records how it ended" in report.passed["binary"]
    assert "stops at the tuning deadline" not in report.passed["binary"]
    assert "stops at the tuning deadline" in check_adapter(load_adapters()["random_forest"],
                                                           task_types=["binary"]).passed["binary"]


def test_an_iterative_adapter_that_returns_another_iteration_is_caught():
    """check_adapter fits every iterative adapter and compares its best_val_score with what the returned
    model scores on the validation part: a LightGBM that predicts with all rounds instead of the kept
    ones fails it (a high learning rate makes the best round an early one)."""
    with pytest.raises(AdapterCheckError, match="kept iteration: the returned model's validation log_loss"):
        check_adapter(PredictsWithEveryRound, task_types=["binary"], params={"learning_rate": 0.9})
    check_adapter(LightGBMAdapter, task_types=["binary"], params={"learning_rate": 0.9})  # unbroken: passes


ITERATIVE = {"xgboost", "lightgbm", "catboost", "mlp", "resnet", "ft_transformer", "mlp_plr", "tabm", "modern_nca",
             "excelformer", "grownet", "tabnet", "tabr", "realmlp", "hopular", "mlp_tjepa"}


@pytest.mark.parametrize("name", sorted(ITERATIVE))
def test_every_iterative_builtin_returns_the_model_of_its_best_val_score(name):
    """The check of the test above holds for every built-in iterative adapter (fit on each task type's
    check data): it is not skipped because an adapter leaves best_val_score out."""
    cls = load_adapters()[name]
    if cls.unavailable_reason():
        pytest.skip(cls.unavailable_reason())
    from bench.testing import _with_defaults
    from bench.testing.contract import Checker
    from bench.testing.data import make_check_data

    configured = _with_defaults(cls, cls.smoke_params, {})
    for task_type in cls.capabilities.task_types:
        checker = Checker(configured)
        checker.task_type = task_type
        checker._fit(configured, make_check_data(task_type, 0), 0, "cpu", None)
        assert "returned model scores best_val_score on validation" in checker.passed, task_type


def test_unknown_task_type_is_a_caller_error():
    with pytest.raises(ValueError, match="unknown task type"):
        check_adapter(PriorAdapter, task_types=["ranking"])


def test_an_adapter_written_for_the_old_name_predict_raw_still_passes_with_a_deprecation_warning():
    """`_predict_raw` was renamed `predict_raw`; an adapter that still defines the old name keeps working for
    one release (the base class uses it as predict_raw) and says so when its class is defined."""
    from bench.adapters import Adapter

    with pytest.warns(DeprecationWarning, match="defines _predict_raw, which is now called predict_raw"):
        class OldStylePrior(Adapter):
            name = "old_style_prior"
            family = "baseline"
            capabilities = Capabilities(task_types=("binary", "multiclass"))

            def make_preprocessor(self):
                return MatrixPreprocessor()

            def fit(self, X_train, y_train, X_val, y_val):
                counts = np.bincount(y_train, minlength=self.task.n_classes) + 1.0
                self.prior = counts / counts.sum()
                self.ctx.record_end(TrialEnd.CONVERGED)

            def _predict_raw(self, X):
                return np.tile(self.prior, (len(X), 1))

    assert set(check_adapter(OldStylePrior, trials=1).passed) == {"binary", "multiclass"}


def test_the_readme_example_adapter_passes(monkeypatch):
    """The one-file adapter in README.md ("Add your model in one file") is complete and correct."""
    import re
    from pathlib import Path

    import bench.adapters.framework.registry as registry

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(# my_models/knn.py\n.*?)```", readme, re.S).group(1)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # keep "my_knn" local
    namespace = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)
    report = check_adapter(namespace["KNNAdapter"])
    assert set(report.passed) == set(TASK_TYPES)
