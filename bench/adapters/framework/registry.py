"""Adapter registry: built-ins and models from other packages through the `bench.adapters` entry points.

To add a model: write one file with an `Adapter` subclass decorated with `@register_adapter` (a built-in
goes to bench/adapters/models/, named after the model), then either add its module to BUILTIN_MODULES
(in this repo) or, in your own package, declare
    [project.entry-points."bench.adapters"]
    my_model = "my_package.my_adapter"
The entry point may name a module (imported, its decorators register) or an Adapter class.
For quick experiments without packaging, BENCH_ADAPTER_MODULES="mod_a:mod_b" imports extra modules
(worker processes inherit the variable, so the models run in sweeps too).
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from bench import settings
from bench.adapters.framework.contract import Adapter
from bench.errors import BenchError, did_you_mean

ENTRY_POINT_GROUP = "bench.adapters"
BUILTIN_MODULES = (
    "bench.adapters.models.baselines",
    "bench.adapters.models.xgboost",
    "bench.adapters.models.lightgbm",
    "bench.adapters.models.catboost",
    "bench.adapters.models.mlp",
    "bench.adapters.models.mlp_tjepa",
    "bench.adapters.models.resnet",
    "bench.adapters.models.ft_transformer",
    "bench.adapters.models.mlp_plr",
    "bench.adapters.models.tabm",
    "bench.adapters.models.knn",
    "bench.adapters.models.extra_trees",
    "bench.adapters.models.modern_nca",
    "bench.adapters.models.excelformer",
    "bench.adapters.models.grownet",
    "bench.adapters.models.hopular",
    # Optional extras: these modules import without their libraries; the models then report unavailable.
    "bench.adapters.models.realmlp",
    "bench.adapters.models.tabpfn",
    "bench.adapters.models.tabr",
    "bench.adapters.models.tabnet",
    "bench.adapters.models.ebm",
    "bench.adapters.models.tabicl",
    "bench.adapters.models.tabdpt",
)

_REGISTRY: dict[str, type[Adapter]] = {}
_loaded = False
log = logging.getLogger(__name__)


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    name = getattr(cls, "name", None)
    if not name or not isinstance(name, str):
        raise TypeError(f"{cls.__qualname__} needs a class attribute `name`")
    existing = _REGISTRY.get(name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise BenchError(f"two adapters are named '{name}': {existing.__module__} and {cls.__module__}")
    _REGISTRY[name] = cls
    return cls


def load_adapters() -> dict[str, type[Adapter]]:
    global _loaded
    if not _loaded:
        extra = settings.ADAPTER_MODULES.items()
        for module in (*BUILTIN_MODULES, *extra):
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if module in BUILTIN_MODULES:
                    raise
                raise BenchError(f"BENCH_ADAPTER_MODULES names '{module}', which cannot be imported: {exc}")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plug-in must not take the built-ins down
                log.warning("adapter entry point '%s' failed to load: %s", ep.name, exc)
                continue
            if isinstance(obj, type) and issubclass(obj, Adapter):
                register_adapter(obj)
        _loaded = True  # only once everything imported: a failed import is retried, not hidden
    return dict(_REGISTRY)


def get_adapter(name: str) -> type[Adapter]:
    adapters = load_adapters()
    if name not in adapters:
        raise BenchError(f"unknown model '{name}'.{did_you_mean(name, adapters)} "
                         f"Valid models: {', '.join(sorted(adapters))}")
    return adapters[name]


def resolve_models(names: list[str]) -> list[type[Adapter]]:
    adapters = load_adapters()
    unknown = [n for n in names if n not in adapters]
    if unknown:
        hints = "".join(did_you_mean(n, adapters) for n in unknown)
        raise BenchError(f"unknown model(s) {', '.join(unknown)}.{hints} Valid models: {', '.join(sorted(adapters))}")
    return [adapters[n] for n in names]
