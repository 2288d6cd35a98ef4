"""Adapters: one interface for every model family, the shared training machinery, and the model zoo.

    bench/adapters/__init__.py   what outside code and plug-in adapters import (this module)
    bench/adapters/space.py      search-space parameters (FloatParam, IntParam, CategoricalParam)
    bench/adapters/framework/    the contract (Adapter, FitContext, ...), the registry, the stopping
                                 protocol, and the loops and base classes models share
    bench/adapters/models/       one module per model (a folder for a large one), named as --models names it

A new model needs only the names below: see README.md, "Add your model in one file".
"""

from bench.adapters.framework.context import FitContext, TaskInfo
from bench.adapters.framework.contract import FAMILIES, Adapter, Capabilities, expand_proba, missing_extra
from bench.adapters.framework.registry import (
    BUILTIN_MODULES,
    ENTRY_POINT_GROUP,
    get_adapter,
    load_adapters,
    register_adapter,
    resolve_models,
)
from bench.adapters.space import CategoricalParam, FloatParam, IntParam, Param

__all__ = [
    "FAMILIES", "Adapter", "Capabilities", "FitContext", "TaskInfo", "expand_proba", "missing_extra",
    "BUILTIN_MODULES", "ENTRY_POINT_GROUP", "get_adapter", "load_adapters", "register_adapter", "resolve_models",
    "CategoricalParam", "FloatParam", "IntParam", "Param",
]
