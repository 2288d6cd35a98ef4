"""ExcelFormer (Chen et al. 2024).

adapter.py: metadata, typed defaults, search space and fit (imports no torch); the rest is loaded when a
fit needs it."""

from bench.adapters.models.excelformer.adapter import ExcelFormerAdapter

__all__ = ["ExcelFormerAdapter"]
