"""MLP-PLR (Gorishniy et al. 2022).

adapter.py: metadata, typed defaults, search space and fit (imports no torch); the rest is loaded when a
fit needs it."""

from bench.adapters.models.mlp_plr.adapter import MLPPLRAdapter

__all__ = ["MLPPLRAdapter"]
