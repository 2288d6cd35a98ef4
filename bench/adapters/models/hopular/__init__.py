"""Hopular (Schäfl et al. 2022).

adapter.py: metadata, typed defaults, search space and fit (imports no torch); network.py (the network, its
masking and loss) and training.py (the fit on the shared loop) are loaded when a fit needs them."""

from bench.adapters.models.hopular.adapter import HopularAdapter

__all__ = ["HopularAdapter"]
