"""TabR (Gorishniy et al. 2024) through pytabkit.

adapter.py: metadata, typed defaults, search space and fit (imports no torch); the rest is loaded when a
fit needs it."""

from bench.adapters.models.tabr.adapter import TabRAdapter

__all__ = ["TabRAdapter"]
