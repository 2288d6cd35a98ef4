"""GrowNet (Badirli et al. 2020).

adapter.py: metadata, typed defaults, search space and fit (imports no torch); the rest is loaded when a
fit needs it."""

from bench.adapters.models.grownet.adapter import GrowNetAdapter

__all__ = ["GrowNetAdapter"]
