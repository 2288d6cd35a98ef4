"""ModernNCA (Ye et al. 2025).

adapter.py: metadata, typed defaults, search space and fit (imports no torch); the rest is loaded when a
fit needs it."""

from bench.adapters.models.modern_nca.adapter import ModernNCAAdapter

__all__ = ["ModernNCAAdapter"]
