"""mlp_tjepa: the MLP on a T-JEPA-pretrained encoder (pretrain, then fit).

adapter.py: metadata, typed defaults, search space and fit (imports no torch); network.py (the downstream
network on the pretrained encoder) and bench.adapters.framework.tjepa (the pretraining) load with a fit."""

from bench.adapters.models.mlp_tjepa.adapter import MLPTJEPAAdapter

__all__ = ["MLPTJEPAAdapter"]
