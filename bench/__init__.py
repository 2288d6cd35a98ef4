"""tabular-bench: GBDTs vs neural tabular models, measured honestly."""

__version__ = "0.1.0"
