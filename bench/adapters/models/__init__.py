"""The model zoo: one module per model, named as `--models` names it; a folder for a larger one.

A folder holds `adapter.py` (the Adapter subclass: metadata, typed defaults and the search space with their
sources, fit / predict glue; imports no torch, so listing models stays fast) and `network.py` (the torch
modules, torch imported at the top; loaded only when a network is built). `baselines.py` holds the
scikit-learn reference points (dummy, linear, random_forest). Every module here is listed in
bench.adapters.framework.registry.BUILTIN_MODULES.
"""
